//! Block storage cases: a pattern written and flushed in one boot is read
//! back in the next boot on the same disk image (and by the host), and bad
//! requests are refused with a clear error.
use bareflow_kernel::dev::{self, virtio_blk::Disk};
use bareflow_sys::prelude::*;
use core::time::Duration;

/// The 8-byte word at byte `offset` of the pattern for `seed` (splitmix64;
/// the host side of the test computes the same).
pub fn pattern_word(seed: u64, offset: u64) -> u64 {
    let mut z = seed.wrapping_add(offset.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn fill(buf: &mut [u8], seed: u64, first_byte: u64) {
    for (i, w) in buf.chunks_exact_mut(8).enumerate() {
        w.copy_from_slice(&pattern_word(seed, first_byte + 8 * i as u64).to_le_bytes());
    }
}

/// Requests of this many blocks (64 KiB).
const CHUNK: u64 = 128;

/// `blk write|check SEED BLOCKS`.
pub fn run(args: &[String]) -> i32 {
    let (Some(op), Some(seed), Some(blocks)) = (
        args.get(2).map(String::as_str),
        args.get(3).and_then(|s| s.parse::<u64>().ok()),
        args.get(4).and_then(|s| s.parse::<u64>().ok()),
    ) else {
        println!("blk: usage: blk write|check SEED BLOCKS");
        return 2;
    };
    let disk = match dev::wait_for::<Disk>("blk0", Duration::from_secs(5)) {
        Ok(d) => d,
        Err(e) => {
            println!("blk: {e}");
            return 1;
        }
    };
    println!("blk: blk0 has {} blocks of {} bytes ({disk:?})", disk.capacity(), Disk::BLOCK_SIZE);
    // A request past the end is refused, not truncated.
    let mut one = [0u8; 512];
    match disk.read(disk.capacity(), &mut one) {
        Err(e) => println!("blk: past the end refused: {e}"),
        Ok(()) => {
            println!("blk: a read past the end succeeded");
            return 1;
        }
    }
    match disk.read(0, &mut one[..100]) {
        Err(e) => println!("blk: partial block refused: {e}"),
        Ok(()) => {
            println!("blk: a partial-block read succeeded");
            return 1;
        }
    }
    if blocks > disk.capacity() {
        println!("blk: {blocks} blocks asked, the disk has {}", disk.capacity());
        return 1;
    }
    let t = bareflow_sys::time::Instant::now();
    let mut buf = vec![0u8; (CHUNK as usize) * Disk::BLOCK_SIZE];
    let mut want = buf.clone();
    let mut block = 0;
    while block < blocks {
        let n = CHUNK.min(blocks - block) as usize * Disk::BLOCK_SIZE;
        let first = block * Disk::BLOCK_SIZE as u64;
        let r = match op {
            "write" => {
                fill(&mut buf[..n], seed, first);
                disk.write(block, &buf[..n])
            }
            "check" => disk.read(block, &mut buf[..n]).map(|()| fill(&mut want[..n], seed, first)),
            _ => {
                println!("blk: unknown operation `{op}` (write or check)");
                return 2;
            }
        };
        if let Err(e) = r {
            println!("blk: {op} at block {block}: {e}");
            return 1;
        }
        if op == "check" {
            if let Some(i) = (0..n).find(|&i| buf[i] != want[i]) {
                println!("blk: mismatch at byte {} (block {}): {:#04x}, want {:#04x}", first as usize + i, block + (i / 512) as u64, buf[i], want[i]);
                return 1;
            }
        }
        block += CHUNK;
    }
    if op == "write" {
        if let Err(e) = disk.flush() {
            println!("blk: flush: {e}");
            return 1;
        }
    }
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let kib = blocks as f64 / 2.0;
    let st = disk.stats();
    println!(
        "blk: {op} of {blocks} blocks with seed {seed} ok in {ms:.1} ms ({:.1} MiB/s); read {} written {} flushes {}",
        kib / 1024.0 / (ms / 1e3),
        st.blocks_read,
        st.blocks_written,
        st.flushes
    );
    0
}

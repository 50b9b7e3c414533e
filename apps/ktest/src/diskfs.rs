//! The FAT file system on `blk0` through `bareflow_sys::fs` (paths under
//! `/disk/`): a file the host put there is read, files and a directory are
//! made, appended, listed, removed, and bad requests get clear errors. The
//! host then reads what the guest wrote with mtools.
use bareflow_sys::fs;
use bareflow_sys::prelude::*;

/// What the guest writes to `/disk/BIG.BIN`: more blocks than the adapter
/// keeps before writing back on its own (the host checks the same bytes).
pub fn big_bytes() -> Vec<u8> {
    (0..1536u32 << 10).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect()
}

/// What the guest writes to `/disk/GUEST.TXT` (the host checks the same).
pub fn guest_text() -> String {
    (0..3000).map(|i| format!("line {i} written by the BareFlow guest\n")).collect()
}

fn step(what: &str, r: Result<(), fs::Error>) -> bool {
    match r {
        Ok(()) => true,
        Err(e) => {
            println!("fs: {what}: {e}");
            false
        }
    }
}

pub fn run() -> i32 {
    let host = match fs::read("/disk/HOST.TXT") {
        Ok(b) => b,
        Err(e) => {
            println!("fs: {e}");
            return 1;
        }
    };
    println!("fs: host file says {:?}", String::from_utf8_lossy(&host).trim_end());
    let text = guest_text();
    let t = bareflow_sys::time::Instant::now();
    let ok = step("write", fs::write("/disk/GUEST.TXT", text.as_bytes()))
        && step("append", fs::append("/disk/GUEST.TXT", b"the end\n"))
        && step("write a big file", fs::write("/disk/BIG.BIN", &big_bytes()))
        && step("mkdir", fs::create_dir("/disk/SUB"))
        && step("write in a directory", fs::write("/disk/SUB/A.TXT", b"in a subdirectory\n"))
        && step("write a file to remove", fs::write("/disk/SUB/GONE.TXT", b"x"))
        && step("remove", fs::remove_file("/disk/SUB/GONE.TXT"));
    if !ok {
        return 1;
    }
    let back = match fs::read("/disk/GUEST.TXT") {
        Ok(b) => b,
        Err(e) => {
            println!("fs: read back: {e}");
            return 1;
        }
    };
    let want = format!("{text}the end\n");
    if back != want.as_bytes() {
        let at = back.iter().zip(want.as_bytes()).position(|(a, b)| a != b).unwrap_or(back.len().min(want.len()));
        println!("fs: read back {} bytes, want {}; first difference at byte {at}: {:?}", back.len(), want.len(), String::from_utf8_lossy(&back[at.min(back.len())..(at + 40).min(back.len())]));
        return 1;
    }
    match fs::read("/disk/BIG.BIN") {
        Ok(b) if b == big_bytes() => println!("fs: big file of {} bytes reads back", b.len()),
        Ok(b) => {
            println!("fs: the big file reads back {} bytes that differ", b.len());
            return 1;
        }
        Err(e) => {
            println!("fs: read back the big file: {e}");
            return 1;
        }
    }
    println!("fs: wrote and read back {} bytes in {:.1} ms", back.len(), t.elapsed().as_secs_f64() * 1e3);
    match fs::metadata("/disk/GUEST.TXT") {
        Ok(m) => println!("fs: metadata len {} dir {}", m.len, m.is_dir),
        Err(e) => println!("fs: metadata: {e}"),
    }
    match fs::metadata("/disk/SUB") {
        Ok(m) => println!("fs: SUB is a directory: {}", m.is_dir),
        Err(e) => println!("fs: metadata SUB: {e}"),
    }
    for dir in ["/disk", "/disk/SUB"] {
        match fs::read_dir(dir) {
            Ok(v) => {
                let names: Vec<String> = v.iter().map(|e| format!("{}{}", e.name, if e.metadata.is_dir { "/" } else { "" })).collect();
                println!("fs: {dir} holds {}", names.join(" "));
            }
            Err(e) => println!("fs: read_dir {dir}: {e}"),
        }
    }
    match fs::metadata("/disk/SUB/GONE.TXT") {
        Err(e) => println!("fs: removed file: {e}"),
        Ok(_) => println!("fs: the removed file is still there"),
    }
    match fs::write("/disk/averyverylongname.text", b"x") {
        Err(e) => println!("fs: long name refused: {e}"),
        Ok(()) => println!("fs: a long name was accepted"),
    }
    match fs::write("data.txt", b"x") {
        Err(e) => println!("fs: boot file write refused: {e}"),
        Ok(()) => println!("fs: a boot-time file was written"),
    }
    match fs::read("/disk/NOPE/X.TXT") {
        Err(e) => println!("fs: missing directory: {e}"),
        Ok(_) => println!("fs: read a file in a missing directory"),
    }
    println!("fs: done");
    0
}

/// `bench-fs RAW_FIRST_BLOCK [KIB]`: throughput figures for `cargo bareflow bench fs`,
/// one `fsbench: NAME VALUE UNIT` line each. Needs the boot-time file
/// `big.bin` and a FAT disk whose blocks from RAW_FIRST_BLOCK on lie past the
/// file system (the raw baseline writes there).
pub fn bench(args: &[String]) -> i32 {
    use bareflow_kernel::dev::{self, virtio_blk::Disk};
    use bareflow_sys::time::Instant;
    let Some(raw_first) = args.get(2).and_then(|s| s.parse::<u64>().ok()) else {
        println!("fsbench: usage: bench-fs RAW_FIRST_BLOCK");
        return 2;
    };
    let touch = |b: &[u8]| b.iter().step_by(64).fold(0u64, |a, &x| a.wrapping_add(u64::from(x)));
    // The signed initfs: the first read hashes the file (SHA-256 against the
    // signed table), the second finds it verified and only borrows it.
    let t = Instant::now();
    let first = match fs::File::open("big.bin") {
        Ok(f) => f,
        Err(e) => {
            println!("fsbench: {e}");
            return 1;
        }
    };
    let mb = first.len() as f64 / (1 << 20) as f64;
    let mut buf = vec![0u8; 1 << 20];
    let mut f = first;
    let mut sum = 0u64;
    loop {
        let n = f.read(&mut buf);
        if n == 0 {
            break;
        }
        sum = sum.wrapping_add(touch(&buf[..n]));
    }
    let verified_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut f = match fs::File::open("big.bin") {
        Ok(f) => f,
        Err(e) => {
            println!("fsbench: {e}");
            return 1;
        }
    };
    let mut sum2 = 0u64;
    loop {
        let n = f.read(&mut buf);
        if n == 0 {
            break;
        }
        sum2 = sum2.wrapping_add(touch(&buf[..n]));
    }
    let plain_s = t.elapsed().as_secs_f64();
    if sum != sum2 {
        println!("fsbench: the two reads of big.bin differ");
        return 1;
    }
    println!("fsbench: initfs_verified_read {:.1} MB/s", mb / verified_s);
    println!("fsbench: initfs_plain_read {:.1} MB/s", mb / plain_s);
    println!("fsbench: initfs_verify_cost {:.2} ms/MB", (verified_s - plain_s).max(0.0) * 1e3 / mb);

    // FAT against the raw disk, the same bytes.
    let kib: u32 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let data: Vec<u8> = (0..kib << 10).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let dmb = data.len() as f64 / (1 << 20) as f64;
    let t = Instant::now();
    if let Err(e) = fs::write("/disk/BENCH.BIN", &data) {
        println!("fsbench: {e}");
        return 1;
    }
    let fat_w = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let back = match fs::read("/disk/BENCH.BIN") {
        Ok(b) => b,
        Err(e) => {
            println!("fsbench: {e}");
            return 1;
        }
    };
    let fat_r = t.elapsed().as_secs_f64();
    if back != data {
        println!("fsbench: FAT read back differs");
        return 1;
    }
    let disk = match dev::wait_for::<Disk>("blk0", core::time::Duration::from_secs(5)) {
        Ok(d) => d,
        Err(e) => {
            println!("fsbench: {e}");
            return 1;
        }
    };
    let blocks = (data.len() / Disk::BLOCK_SIZE) as u64;
    if raw_first + blocks > disk.capacity() {
        println!("fsbench: the disk has no raw area of {blocks} blocks from {raw_first}");
        return 1;
    }
    const CHUNK: usize = 64 << 10;
    let t = Instant::now();
    for (i, c) in data.chunks(CHUNK).enumerate() {
        if let Err(e) = disk.write(raw_first + (i * CHUNK / 512) as u64, c) {
            println!("fsbench: raw write: {e}");
            return 1;
        }
    }
    if let Err(e) = disk.flush() {
        println!("fsbench: flush: {e}");
        return 1;
    }
    let raw_w = t.elapsed().as_secs_f64();
    let mut raw = vec![0u8; data.len()];
    let t = Instant::now();
    for (i, c) in raw.chunks_mut(CHUNK).enumerate() {
        if let Err(e) = disk.read(raw_first + (i * CHUNK / 512) as u64, c) {
            println!("fsbench: raw read: {e}");
            return 1;
        }
    }
    let raw_r = t.elapsed().as_secs_f64();
    if raw != data {
        println!("fsbench: raw read back differs");
        return 1;
    }
    println!("fsbench: fat_write {:.2} MB/s", dmb / fat_w);
    println!("fsbench: fat_read {:.2} MB/s", dmb / fat_r);
    println!("fsbench: raw_write {:.2} MB/s", dmb / raw_w);
    println!("fsbench: raw_read {:.2} MB/s", dmb / raw_r);
    // A signed payload, when the bench packed one: check (signature, hash,
    // ELF, relocations, imports) and map, then the same bytes only read.
    if let Ok(bytes) = bareflow_kernel::fs::read_static("hello.bfp") {
        match bareflow_kernel::payload::run(bytes, 1) {
            Ok(r) => {
                let t = Instant::now();
                core::hint::black_box(touch(bytes));
                let plain = t.elapsed().as_secs_f64() * 1e3;
                println!("fsbench: payload_load {:.3} ms", r.load_ns as f64 / 1e6);
                println!("fsbench: payload_plain_read {:.3} ms", plain.max(0.001));
            }
            Err(e) => {
                println!("fsbench: payload: {e}");
                return 1;
            }
        }
    }
    println!("fsbench: done");
    0
}

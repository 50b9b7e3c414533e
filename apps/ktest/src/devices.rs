//! virtio-rng and virtio-console: entropy from the host through
//! `bareflow_sys::random`, and a line written to the console port (the host
//! test reads it from the file QEMU writes).
use bareflow_kernel::dev::{self, virtio_misc::{Console, Rng}};
use bareflow_kernel::random::{self, Source};
use bareflow_sys::prelude::*;
use core::time::Duration;

pub fn run() -> i32 {
    let rng = match dev::wait_for::<Rng>("rng0", Duration::from_secs(5)) {
        Ok(r) => r,
        Err(e) => {
            println!("devices: {e}");
            return 1;
        }
    };
    let mut a = vec![0u8; 4096];
    let mut b = vec![0u8; 4096];
    let (sa, sb) = (random::fill(&mut a), random::fill(&mut b));
    if sa != Ok(Source::VirtioRng) || sb != Ok(Source::VirtioRng) {
        println!("devices: random bytes came from {sa:?}/{sb:?}, not the virtio-rng");
        return 1;
    }
    let mut seen = [false; 256];
    a.iter().for_each(|&x| seen[usize::from(x)] = true);
    let distinct = seen.iter().filter(|&&s| s).count();
    println!("devices: rng0 gave {} bytes; {distinct} distinct values in 4096; two draws equal: {}", rng.bytes_delivered(), a == b);
    if distinct < 200 || a == b {
        return 1;
    }
    let mut via_sys = [0u8; 32];
    if let Err(e) = bareflow_sys::random::fill(&mut via_sys) {
        println!("devices: bareflow_sys::random: {e}");
        return 1;
    }
    let con = match dev::wait_for::<Console>("console0", Duration::from_secs(5)) {
        Ok(c) => c,
        Err(e) => {
            println!("devices: {e}");
            return 1;
        }
    };
    let line = format!("hello over virtio-console, random {:02x}{:02x}{:02x}{:02x}\n", via_sys[0], via_sys[1], via_sys[2], via_sys[3]);
    if let Err(e) = con.write(line.as_bytes()) {
        println!("devices: console0: {e}");
        return 1;
    }
    print!("devices: wrote to console0: {line}");
    println!("devices: ok");
    0
}

//! The test kernel of the in-QEMU suite (`cli/tests/qemu.rs`): its first
//! argument names a case; each case prints what the suite checks and exits.
//! Image-only: hosted it only says so.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

#[cfg(target_os = "none")]
extern crate alloc;

#[allow(unused_imports)] // hosted, std's prelude already has these
use bareflow_sys::prelude::*;

bareflow_sys::main!(app);

#[cfg(not(target_os = "none"))]
fn app() -> i32 {
    eprintln!("ktest is a test kernel: boot it with `cargo bareflow run ktest -- <case>`");
    2
}

#[cfg(target_os = "none")]
fn app() -> i32 {
    use bareflow_kernel::hal;
    use bareflow_sys::{env, fs, time::Instant};
    let args = env::args();
    let case = args.get(1).map(String::as_str).unwrap_or("");
    match case {
        "bss" => {
            match hal::selftest::check_bss_zero() {
                Ok(()) => {
                    println!("bss: zero");
                    0
                }
                Err(e) => {
                    println!("bss: {e:?}");
                    1
                }
            }
        }
        "text-write" => hal::selftest::write_to_text(),
        "heap-exec" => hal::selftest::jump_to_heap(),
        "stack-exec" => hal::selftest::jump_to_stack(),
        "null" => hal::selftest::read_null(),
        "stack-overflow" => {
            println!("recursing until the stack runs out...");
            recurse(0) as i32
        }
        "panic" => panic!("deliberate panic (case {case})"),
        "cat" => {
            let path = args.get(2).map(String::as_str).unwrap_or("");
            // Opened twice: a boot-time file is the boot module's memory, so both
            // opens see the same bytes at the same address (nothing was copied).
            match (fs::File::open(path), fs::File::open(path)) {
                (Ok(a), Ok(b)) => {
                    print!("{}", String::from_utf8_lossy(a.as_bytes()));
                    let shared = a.as_bytes().as_ptr() == b.as_bytes().as_ptr();
                    println!("cat: {} bytes, {}", a.len(), if shared { "borrowed in place" } else { "copied" });
                    0
                }
                (Err(e), _) | (_, Err(e)) => {
                    println!("{e}");
                    1
                }
            }
        }
        "cpu" => {
            let f = hal::cpu::features();
            let yn = |b: bool| if b { "yes" } else { "no" };
            println!("sse2: {}", yn(f.sse2));
            println!("sse4.2: {}", yn(f.sse42));
            println!("avx: {}", yn(f.avx));
            println!("avx2: {}", yn(f.avx2));
            println!("fma: {}", yn(f.fma));
            println!("avx512f: {}", yn(f.avx512f));
            println!("rdrand: {} rdseed: {}", yn(f.rdrand), yn(f.rdseed));
            // Real SSE math through the FPU state the kernel set up.
            let v: f32 = (1..=100).map(|i| 1.0 / (i as f32)).sum();
            println!("harmonic(100) = {v:.4}");
            0
        }
        "timer" => {
            // LAPIC timer interrupts arrive (at least every 10 ms on a CPU),
            // and the TSC clock agrees with the PIT-calibrated rate.
            let t0 = Instant::now();
            let k0 = hal::time::ticks();
            while t0.elapsed().as_millis() < 200 {
                hal::trap::wait_for_interrupt();
            }
            let dt = t0.elapsed();
            let dk = hal::time::ticks() - k0;
            let floor = dt.as_millis() as u64 * hal::time::TICK_HZ / 1000;
            println!(
                "timer: {dk} interrupts in {} ms (at least ~{floor}); tsc {} MHz, lapic {} MHz",
                dt.as_millis(),
                hal::time::tsc_hz() / 1_000_000,
                hal::time::lapic_hz() / 1_000_000
            );
            if dk * 10 >= floor * 7 && dt.as_millis() < 260 {
                println!("timer: ok");
                0
            } else {
                println!("timer: too few interrupts");
                1
            }
        }
        "threads" => tasks::threads(),
        "channels" => tasks::channels(),
        "preempt" => tasks::preempt(),
        "deadlines" => tasks::deadlines(),
        "deadlock" => tasks::deadlock(),
        "ids" => tasks::ids(),
        "rwlock" => tasks::rwlock(),
        "semaphore" => tasks::semaphore(),
        "once" => tasks::once(),
        "timeouts" => tasks::timeouts(),
        "rwlock-misuse" => tasks::rwlock_misuse(args.get(2).map(String::as_str).unwrap_or("")),
        "migrate" => tasks::migrate(),
        "tlb" => tasks::tlb(),
        "fpu" => tasks::fpu(),
        "ring" => tasks::ring(),
        "bench-tasks" => tasks::bench(),
        "net" => net::serve(args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1)),
        "registry-missing" => net::missing(),
        "net6" => net::v6(args.get(2).map(String::as_str).unwrap_or("0")),
        "blk" => blk::run(&args),
        "fs" => diskfs::run(),
        "bench-fs" => diskfs::bench(&args),
        "devices" => devices::run(),
        "payload" => {
            let path = args.get(2).map(String::as_str).unwrap_or("hello.bfp");
            let arg: u64 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(0);
            let bytes = match bareflow_kernel::fs::read_static(path) {
                Ok(b) => b,
                Err(e) => {
                    println!("payload: {e}");
                    return 1;
                }
            };
            match bareflow_kernel::payload::run(bytes, arg) {
                Ok(r) => {
                    println!(
                        "payload: `{}` signed by {} ran: result {} ({} KiB mapped, checked and mapped in {} us)",
                        r.name,
                        &r.signer[..16],
                        r.result,
                        r.mapped / 1024,
                        r.load_ns / 1000
                    );
                    0
                }
                Err(e) => {
                    println!("payload: {e}");
                    // The kernel goes on: prove it by doing some work after the refusal.
                    let v: Vec<u64> = (0..1000).collect();
                    println!("payload: still running after the refusal (sum {})", v.iter().sum::<u64>());
                    3
                }
            }
        }
        "hang" => loop {
            hal::trap::wait_for_interrupt();
        },
        "mem" => {
            let m = hal::mm::stats();
            println!("memory: total {} KiB, free {} KiB, heap {} KiB", m.total / 1024, m.free / 1024, m.heap_claimed / 1024);
            // Allocate and free a lot, check contents survive.
            let v: Vec<u64> = (0..1_000_000u64).collect();
            let s: u64 = v.iter().sum();
            println!("heap sum: {s}");
            if s == 499_999_500_000 { 0 } else { 1 }
        }
        other => {
            println!("ktest: unknown case `{other}`");
            2
        }
    }
}

#[cfg(target_os = "none")]
mod blk;
#[cfg(target_os = "none")]
mod devices;
#[cfg(target_os = "none")]
mod diskfs;
#[cfg(target_os = "none")]
mod net;
#[cfg(target_os = "none")]
mod tasks;

#[cfg(target_os = "none")]
#[allow(unconditional_recursion)] // deliberate: the stack-overflow case
fn recurse(n: u64) -> u64 {
    let a = core::hint::black_box([n; 64]);
    recurse(n + 1).wrapping_add(a[7])
}

//! The `bareflow` command as a library: build an app into a bootable image, pack
//! its boot-time files, boot it under QEMU (choosing KVM or TCG by probing),
//! symbolize its backtraces, run the test suites and the benchmarks.
//!
//! Principles: every step says what it does and, when it fails, what was wrong
//! and what to do; missing host tools are installed (or the exact command to do
//! so is printed); a guest this process started is always stopped by it.
//! `main.rs` is a thin shell over [`main_with_args`] so that tests drive the
//! same code.
#![forbid(unsafe_code)]

pub mod accel;
pub mod baseline;
pub mod bench;
pub mod bench_fs;
pub mod bench_http;
pub mod bench_suite;
pub mod bench_tasks;
pub mod build;
pub mod iso;
pub mod jit;
pub mod qemu;
pub mod root;
pub mod run;
pub mod setup;
pub mod symbolize;
pub mod trust;

mod llm;

use anyhow::{Result, bail};

const USAGE: &str = "\
usage: cargo bareflow <command> ...
  build <app> [--debug]                 build an app crate into a bootable image
  run <app> [options] [-- APP ARGS]     build and boot an app under QEMU
      --file HOST[:GUEST]   add a file to the boot-time archive (repeatable)
      --env KEY=VALUE       add a configuration option (repeatable)
      --cpus N  --mem M  --machine microvm|q35|pc  --accel auto|kvm|tcg
      --timeout S  --iso  --image PATH  --debug  --initfs PATH (a signed initfs, instead of --file)
      --net user [--port HOST:GUEST]  --disk IMG (a raw disk image as virtio-blk; FAT on it is /disk/ in the app)
      --rng (virtio-rng from the host)  --console-out FILE (a virtio console port written to FILE)
      --no-debug-exit (no isa-debug-exit device: the guest powers off through ACPI, as under other VMMs)
  test                                  cargo test at the repo root (host + in-QEMU suites)
  bench [--runs N] [--http-secs S] [--http-conns N]
                                        the suite: BareFlow beside a Linux guest (boot, footprint, http, llm;
                                        tasks and jit from their last records); table, bench/history/suite/, bench/charts/
  bench suite ROW...                    only these rows of the suite (boot footprint http llm tasks jit)
  bench footprint                       one suite row (`bench suite http`: HTTP vs the Linux guest)
  bench http                            httpd image (governor adaptive/polling/interrupts) vs hosted
  bench fs                              initfs verify cost, FAT vs raw blocks, payload load
  bench charts                          redraw bench/charts/*.svg from bench/history/suite/
  bench boot|llm|tasks|jit              the BareFlow-only benches (hello boot; engine vs C; ring; JIT)
  bench jit-backends                    the JIT's encoder (iced-x86) against Cranelift on one kernel
  baseline linux [--run APP [--machine M] [--mem M] [--net] [-- ARGS]]
                                        build (and cache) the Linux microVM the benches compare against
  llm ...                               the inference engine's commands
  key gen [--name N] | key list         Ed25519 signing keys (images trust every key listed)
  sign FILE [--key N] | verify FILE     detached signatures; verify also checks a signed initfs
  pack DIR -o OUT [--key N]             pack a folder into a signed initfs
  payload build CRATE [--key N] [-o OUT] [--caps LIST]   a signed code payload (payloads/hello)";

/// Runs one `bareflow` command line (without the program name); returns the process exit code.
pub fn main_with_args(args: &[String]) -> Result<i32> {
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return Ok(2);
    };
    match cmd.as_str() {
        "build" => build::cli_main(rest),
        "run" => run::cli_main(rest),
        "test" => cli_test(rest),
        "bench" => match rest.split_first() {
            None => bench_suite::main(rest),
            Some((name, rest)) if name == "suite" => bench_suite::main(rest),
            Some((name, _)) if name == "charts" => bench_suite::write_charts().map(|()| 0),
            Some((name, _)) if name == "footprint" || name.starts_with("--") => bench_suite::main(rest),
            Some((name, rest)) if name == "http" => bench_http::main(rest),
            Some((name, rest)) if name == "boot" => bench::boot_main(rest),
            Some((name, rest)) if name == "llm" => llm::bench(rest),
            Some((name, rest)) if name == "tasks" => bench_tasks::main(rest),
            Some((name, rest)) if name == "jit" => jit::bench(rest),
            Some((name, rest)) if name == "jit-backends" => jit::backends(rest),
            Some((name, rest)) if name == "fs" => bench_fs::main(rest),
            Some((name, _)) => bail!("unknown benchmark `{name}`: available are `suite` (the default), `footprint`, `http`, `boot`, `llm`, `tasks`, `jit`, `jit-backends` and `fs`"),
        },
        "baseline" => baseline::cli_main(rest),
        "llm" => llm::main(rest),
        "key" => trust::key_main(rest),
        "sign" => trust::sign_main(rest),
        "verify" => trust::verify_main(rest),
        "pack" => trust::pack_main(rest),
        "payload" => trust::payload_main(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(0)
        }
        other => bail!("unknown command `{other}`\n{USAGE}"),
    }
}

/// `bareflow test`: `cargo test` at the repo root, passing its exit code through.
fn cli_test(rest: &[String]) -> Result<i32> {
    let root = root::repo_root();
    let status = std::process::Command::new(root::cargo())
        .arg("test")
        .args(rest)
        .current_dir(&root)
        .status()
        .map_err(|e| anyhow::anyhow!("could not start cargo ({e}): is Rust installed and on PATH?"))?;
    Ok(status.code().unwrap_or(1))
}

//! The in-QEMU test suite: builds the `hello` and `ktest` images once, boots them
//! for real and checks what they print and how they exit. Runs under `cargo test`
//! (harness = false), two guests at a time (the machine has two cores), one line
//! per case, and a closing `N passed, N failed` line. QEMU missing and not
//! installable is a failure, never a silent skip.
//!
//! Cases are data: add a row to `cases()`.

use bareflow_cli::accel::AccelChoice;
use bareflow_cli::build::{self, Profile};
use bareflow_cli::qemu::{Ending, Machine};
use bareflow_cli::run::{self, RunOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How a case is run.
#[derive(Clone)]
enum Via {
    /// Through the library (`run::run`), checking the guest's exit code.
    Lib,
    /// Through the `bareflow` binary, checking the process's exit code and stderr.
    Cli,
    /// Through the binary, sending it SIGINT (Ctrl-C) after this long.
    CliInterrupt(Duration),
    /// Through the library with a NIC on QEMU's user network (TCP forward to
    /// guest port 80, UDP to guest port 7, from 127.0.0.1); while the guest
    /// runs, the peer function talks to it from the host with the two host ports.
    Peer(fn(u16, u16) -> Result<(), String>),
    /// Through the library, twice, on one fresh raw disk image: the case's
    /// own boot first, then the second boot of the plan; then the host reads
    /// the image file.
    Reboot(&'static Reboot),
    /// Through the library with one disk image that `prepare` makes on the
    /// host before the boot and `after` inspects on the host after it.
    Disk(fn(&Path) -> Result<(), String>, fn(&Path) -> Result<(), String>),
    /// Through the library with a virtio-rng and a virtio console port whose
    /// output file the function checks after the boot.
    RngConsole(fn(&Path, &str) -> Result<(), String>),
    /// Through the library with a NIC: the host listens on `[::1]:PORT` and
    /// echoes one connection's bytes; PORT is appended to the guest's args.
    EchoV6,
}

/// A step on the host around a boot (make or check a disk image).
type HostStep = fn(&Path) -> Result<(), String>;

/// The second boot of a [`Via::Reboot`] case.
struct Reboot {
    /// Size of the fresh disk image (all zero).
    disk_mib: u64,
    /// Then made ready on the host like this (e.g. formatted), if set.
    prepare: Option<HostStep>,
    machine: Option<Machine>,
    args: &'static [&'static str],
    expect: &'static [&'static str],
    /// Checks the disk image file after both boots.
    host: fn(&Path) -> Result<(), String>,
}

/// One test case: what to boot, and what must come out.
#[derive(Clone)]
struct Case {
    name: &'static str,
    app: &'static str,
    via: Via,
    machine: Option<Machine>,
    /// vCPUs (`-smp`).
    cpus: u32,
    /// Guest memory (`-m`).
    mem: &'static str,
    iso: bool,
    env: Vec<(&'static str, &'static str)>,
    /// Files: (guest path, contents); written to a temp dir first.
    files: Vec<(&'static str, &'static str)>,
    /// Files from the repository: (path relative to the repo root, guest path).
    repo_files: Vec<(&'static str, &'static str)>,
    args: Vec<&'static str>,
    timeout: Duration,
    /// Exit code of the guest (Lib) or of the process (Cli).
    exit: i32,
    /// Substrings the output must contain (serial output for Lib, stdout+stderr for Cli).
    expect: Vec<&'static str>,
    /// Extra CLI arguments (Cli only), inserted after the app name.
    cli_args: Vec<String>,
    /// Optional extra check on (output, exit) returning an error message.
    check: Option<Check>,
    /// Skip (with this reason) unless the predicate says the case can run.
    needs_grub: bool,
    /// Pack `files` into an initfs here and boot it with `--initfs`, altered like this.
    initfs: Option<Initfs>,
    /// Add the example payload (payloads/hello) as `hello.bfp`, signed or altered like this.
    payload: Option<PayloadVariant>,
}

/// How a case's payload is made from the built payloads/hello.
#[derive(Clone, Copy)]
enum PayloadVariant {
    /// Signed with the `default` key (which images trust).
    Signed,
    /// Signed with a key the image does not trust.
    UntrustedKey,
    /// Signed, then one byte of its code flipped.
    FlippedCode,
    /// Signed for a kernel ABI version that was retired.
    RetiredAbi,
    /// payloads/handler, signed, as `handler.bfp` (httpd's `/handler`).
    Handler,
}

/// Packs the built payload ELF as `variant` says into `tmp/NAME-hello.bfp`.
fn make_payload(variant: PayloadVariant, elf: &Path, tmp: &Path, name: &str) -> Result<PathBuf, String> {
    use bareflow_abi::payload::{self, Manifest, caps};
    use bareflow_abi::signature::SecretKey;
    let elf = std::fs::read(elf).map_err(|e| format!("cannot read {}: {e}", elf.display()))?;
    let key = match variant {
        PayloadVariant::UntrustedKey => SecretKey::from_seed([0x77; 32]),
        _ => bareflow_cli::trust::keys::KeyStore::from_env()
            .and_then(|s| s.secret(bareflow_cli::trust::keys::DEFAULT_KEY))
            .map_err(|e| format!("{e:#}"))?,
    };
    let abi_version = if matches!(variant, PayloadVariant::RetiredAbi) { 0 } else { payload::ABI_VERSION };
    let name_of = if matches!(variant, PayloadVariant::Handler) { "handler-payload" } else { "hello-payload" };
    let m = Manifest { name: name_of.into(), abi_version, entry: "run".into(), capabilities: caps::CONSOLE | caps::FS_READ | caps::TIME };
    let mut bytes = payload::build(&m, &elf, &key);
    if matches!(variant, PayloadVariant::FlippedCode) {
        let at = bytes.len() - elf.len() + 0x100;
        bytes[at] ^= 0x40;
    }
    let out = tmp.join(format!("{name}-hello.bfp"));
    std::fs::write(&out, &bytes).map_err(|e| e.to_string())?;
    Ok(out)
}

/// How a case's own initfs is made (issue 6: only signed files are read).
#[derive(Clone, Copy)]
enum Initfs {
    /// Signed with the `default` key, untouched.
    Good,
    /// One byte of the last file's data flipped after signing.
    FlipData,
    /// One byte of the signed entry table flipped.
    FlipTable,
    /// Signed with a key the image does not trust.
    UntrustedKey,
}

/// Packs `files` into `tmp/NAME-initfs.img` as `how` says.
fn make_initfs(how: Initfs, files: &[(PathBuf, String)], tmp: &Path, name: &str) -> Result<PathBuf, String> {
    use bareflow_abi::signature::SecretKey;
    let path = tmp.join(format!("{name}-initfs.img"));
    let key = match how {
        Initfs::UntrustedKey => SecretKey::from_seed([0x5a; 32]),
        _ => bareflow_cli::trust::keys::KeyStore::from_env()
            .and_then(|s| s.secret(bareflow_cli::trust::keys::DEFAULT_KEY))
            .map_err(|e| format!("{e:#}"))?,
    };
    bareflow_cli::trust::pack_files(files, &key, &path).map_err(|e| format!("{e:#}"))?;
    let mut bytes = std::fs::read(&path).map_err(|e| e.to_string())?;
    match how {
        Initfs::FlipData => *bytes.last_mut().ok_or("empty initfs")? ^= 0x01,
        Initfs::FlipTable => bytes[bareflow_abi::initfs::HEADER_LEN + 40] ^= 0x01,
        Initfs::Good | Initfs::UntrustedKey => {}
    }
    std::fs::write(&path, &bytes).map_err(|e| e.to_string())?;
    Ok(path)
}

/// An extra check on a case's output; `Err` says what is wrong.
type Check = fn(&str) -> Result<(), String>;

fn case(name: &'static str, app: &'static str, args: &[&'static str], exit: i32, expect: &[&'static str]) -> Case {
    Case {
        name,
        app,
        via: Via::Lib,
        machine: None,
        cpus: 1,
        mem: "128M",
        iso: false,
        env: Vec::new(),
        files: Vec::new(),
        repo_files: Vec::new(),
        args: args.to_vec(),
        timeout: Duration::from_secs(60),
        exit,
        expect: expect.to_vec(),
        cli_args: Vec::new(),
        check: None,
        needs_grub: false,
        initfs: None,
        payload: None,
    }
}

const HELLO: &str = "Hello from BareFlow!";

/// `hello` run with `--no-debug-exit` on `machine`: QEMU must end by itself
/// (the kernel's ACPI power-off) and `run` exit with the guest's `code`.
fn acpi_poweroff(name: &'static str, machine: Machine, args: &[&'static str], code: i32) -> Case {
    // (Cases hold 'static strings; a test process may leak this one.)
    let line: &'static str = Box::leak(format!("exit code {code}; no isa-debug-exit device: powering off through ACPI").into_boxed_str());
    Case {
        via: Via::Cli,
        machine: Some(machine),
        timeout: Duration::from_secs(30),
        cli_args: vec!["--no-debug-exit".into()],
        ..case(name, "hello", args, code, &[HELLO, line])
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case { machine: Some(Machine::Microvm), ..case("boot-microvm", "hello", &[], 0, &[HELLO]) },
        Case { machine: Some(Machine::Q35), ..case("boot-q35", "hello", &[], 0, &[HELLO]) },
        Case { machine: Some(Machine::Pc), ..case("boot-pc", "hello", &[], 0, &[HELLO]) },
        Case { iso: true, machine: Some(Machine::Q35), needs_grub: true, ..case("boot-grub", "hello", &[], 0, &[HELLO]) },
        case("exit-code", "hello", &["--exit", "7"], 7, &[HELLO]),
        case("args", "hello", &["a", "b c"], 0, &[r#"args: ["a", "b c"]"#]),
        Case { env: vec![("GREET", "tester")], ..case("env", "hello", &[], 0, &["greetings, tester"]) },
        case("bss", "ktest", &["bss"], 0, &["bss: zero"]),
        case("text-write", "ktest", &["text-write"], 102, &["PAGE FAULT", "write", "protection violation"]),
        case("heap-exec", "ktest", &["heap-exec"], 102, &["PAGE FAULT", "instruction fetch"]),
        case("stack-exec", "ktest", &["stack-exec"], 102, &["PAGE FAULT", "instruction fetch", "protection violation"]),
        case("stack-overflow", "ktest", &["stack-overflow"], 102, &["stack overflow"]),
        case("null-deref", "ktest", &["null"], 102, &["PAGE FAULT", "cr2=0x0000000000000000"]),
        Case {
            check: Some(has_symbolized_frame),
            ..case("panic", "ktest", &["panic"], 101, &["panicked at apps/ktest/src/main.rs", "deliberate panic"])
        },
        Case {
            files: vec![("data.txt", "file content from the host\n")],
            ..case("files", "ktest", &["cat", "data.txt"], 0, &["file content from the host", "cat: 27 bytes, borrowed in place"])
        },
        case("files-missing", "ktest", &["cat", "missing"], 1, &["missing: no such file"]),
        // Issue 6: the boot module is a signed initfs; tampering is refused.
        Case {
            files: vec![("data.txt", "signed content\n"), ("dir/b.txt", "second file\n")],
            initfs: Some(Initfs::Good),
            ..case("initfs-good", "ktest", &["cat", "dir/b.txt"], 0, &["second file"])
        },
        Case {
            files: vec![("data.txt", "signed content\n"), ("dir/b.txt", "second file\n")],
            initfs: Some(Initfs::FlipData),
            ..case(
                "initfs-tampered-file",
                "ktest",
                &["cat", "dir/b.txt"],
                1,
                &["initfs entry `dir/b.txt` does not match its signed SHA-256", "dir/b.txt: refused"],
            )
        },
        Case {
            files: vec![("data.txt", "signed content\n"), ("dir/b.txt", "second file\n")],
            initfs: Some(Initfs::FlipData),
            ..case("initfs-tampered-others-intact", "ktest", &["cat", "data.txt"], 0, &["signed content"])
        },
        Case {
            files: vec![("data.txt", "signed content\n")],
            initfs: Some(Initfs::FlipTable),
            ..case("initfs-bad-signature", "ktest", &["cat", "data.txt"], 103, &["refusing to boot", "signature does not match"])
        },
        Case {
            files: vec![("data.txt", "signed content\n")],
            initfs: Some(Initfs::UntrustedKey),
            ..case("initfs-untrusted-key", "ktest", &["cat", "data.txt"], 103, &["refusing to boot", "which is not trusted"])
        },
        Case { check: Some(avx2_under_tcg), ..case("sse-avx", "ktest", &["cpu"], 0, &["sse2: yes"]) },
        // Issue 6: signed code payloads (payloads/hello), loaded W^X and run in a fiber.
        Case {
            payload: Some(PayloadVariant::Signed),
            files: vec![("payload-input.txt", "input from the host\n")],
            ..case(
                "payload-signed-runs",
                "ktest",
                &["payload", "hello.bfp", "14"],
                0,
                &[
                    "hello from a signed payload",
                    "payload: payload-input.txt has 20 bytes: \"input from the host\"",
                    "payload: the clock reads",
                    "payload: `hello-payload` signed by",
                    "ran: result 43",
                ],
            )
        },
        Case {
            payload: Some(PayloadVariant::UntrustedKey),
            ..case("payload-untrusted-refused", "ktest", &["payload", "hello.bfp", "1"], 3, &["payload refused", "not trusted", "still running after the refusal"])
        },
        Case {
            payload: Some(PayloadVariant::FlippedCode),
            ..case("payload-tampered-refused", "ktest", &["payload", "hello.bfp", "1"], 3, &["payload refused", "does not match its signed SHA-256", "still running after the refusal"])
        },
        Case {
            payload: Some(PayloadVariant::RetiredAbi),
            ..case("payload-retired-abi-refused", "ktest", &["payload", "hello.bfp", "1"], 3, &["payload refused", "kernel ABI version 0, which is retired", "still running after the refusal"])
        },

        case("timer", "ktest", &["timer"], 0, &["timer: ok"]),
        // Issue 4: threads, scheduling, timers, sync, task IDs, on 1, 2 and 4 vCPUs.
        Case { cpus: 1, ..case("threads-smp1", "ktest", &["threads"], 0, &["threads: ok", "work ran on cpus [0]"]) },
        Case { cpus: 2, ..case("threads-smp2", "ktest", &["threads"], 0, &["threads: ok", "work ran on cpus [0, 1]"]) },
        Case { cpus: 4, ..case("threads-smp4", "ktest", &["threads"], 0, &["threads: ok", "work ran on cpus [0, 1, 2, 3]"]) },
        Case {
            cpus: 4,
            machine: Some(Machine::Q35),
            ..case("threads-smp4-q35", "ktest", &["threads"], 0, &["threads: ok", "work ran on cpus [0, 1, 2, 3]"])
        },
        Case {
            cpus: 2,
            machine: Some(Machine::Pc),
            ..case("threads-smp2-pc", "ktest", &["threads"], 0, &["threads: ok", "work ran on cpus [0, 1]"])
        },
        Case { cpus: 1, ..case("channels-smp1", "ktest", &["channels"], 0, &["channels: ok"]) },
        Case { cpus: 4, ..case("channels-smp4", "ktest", &["channels"], 0, &["channels: ok"]) },
        Case { cpus: 1, ..case("ring-smp1", "ktest", &["ring"], 0, &["ring: ok"]) },
        Case { cpus: 2, ..case("ring-smp2", "ktest", &["ring"], 0, &["ring: ok"]) },
        Case { cpus: 4, ..case("ring-smp4", "ktest", &["ring"], 0, &["ring: ok"]) },
        Case { cpus: 1, ..case("preempt-smp1", "ktest", &["preempt"], 0, &["preempt: ok"]) },
        Case { cpus: 2, ..case("preempt-smp2", "ktest", &["preempt"], 0, &["preempt: ok"]) },
        Case { cpus: 2, ..case("deadlines", "ktest", &["deadlines"], 0, &["deadlines: ok"]) },
        Case {
            cpus: 2,
            ..case("deadlock-detected", "ktest", &["deadlock"], 101, &["deadlock: thread", "locks a Mutex it already holds"])
        },
        Case { check: Some(ids_differ_between_boots), ..case("ids-boot-a", "ktest", &["ids"], 0, &["0 duplicates"]) },
        Case { check: Some(ids_differ_between_boots), ..case("ids-boot-b", "ktest", &["ids"], 0, &["0 duplicates"]) },
        // Issue 4, the audit's gaps: RwLock/Semaphore/Once under contention, a timeout on every
        // blocking call, RwLock misuse, migrate_to, TLB shootdown, FP/SSE/AVX state across switches.
        Case { cpus: 2, ..case("rwlock-smp2", "ktest", &["rwlock"], 0, &["rwlock: ok", "on 2 cpus"]) },
        Case { cpus: 4, ..case("rwlock-smp4", "ktest", &["rwlock"], 0, &["rwlock: ok", "on 4 cpus"]) },
        Case { cpus: 2, ..case("semaphore-smp2", "ktest", &["semaphore"], 0, &["semaphore: ok", "on 2 cpus"]) },
        Case { cpus: 4, ..case("semaphore-smp4", "ktest", &["semaphore"], 0, &["semaphore: ok", "on 4 cpus"]) },
        Case { cpus: 2, ..case("once-smp2", "ktest", &["once"], 0, &["once: ok", "on 2 cpus"]) },
        Case { cpus: 4, ..case("once-smp4", "ktest", &["once"], 0, &["once: ok", "on 4 cpus"]) },
        Case { cpus: 1, ..case("timeouts-smp1", "ktest", &["timeouts"], 0, &["timeouts: ok"]) },
        Case { cpus: 2, ..case("timeouts-smp2", "ktest", &["timeouts"], 0, &["timeouts: ok"]) },
        Case {
            cpus: 2,
            ..case(
                "rwlock-misuse-write-after-read",
                "ktest",
                &["rwlock-misuse", "write-after-read"],
                101,
                &["two reads by one thread share the lock", "deadlock: thread", "write-locks an RwLock it already holds for reading"],
            )
        },
        Case {
            cpus: 2,
            ..case(
                "rwlock-misuse-read-after-write",
                "ktest",
                &["rwlock-misuse", "read-after-write"],
                101,
                &["deadlock: thread", "read-locks an RwLock it already holds for writing"],
            )
        },
        Case {
            cpus: 2,
            ..case(
                "rwlock-misuse-write-after-write",
                "ktest",
                &["rwlock-misuse", "write-after-write"],
                101,
                &["deadlock: thread", "write-locks an RwLock it already holds for writing"],
            )
        },
        Case { cpus: 2, ..case("migrate-smp2", "ktest", &["migrate"], 0, &["migrate: ok", "ran on cpus [0, 1, 0]"]) },
        Case { cpus: 4, ..case("migrate-smp4", "ktest", &["migrate"], 0, &["migrate: ok", "ran on cpus [0, 1, 2, 3, 0]"]) },
        Case {
            cpus: 2,
            check: Some(tlb_fault_at_probe),
            ..case("tlb-shootdown-smp2", "ktest", &["tlb"], 102, &["PAGE FAULT", "write", "protection violation"])
        },
        Case {
            cpus: 4,
            check: Some(tlb_fault_at_probe),
            ..case("tlb-shootdown-smp4", "ktest", &["tlb"], 102, &["PAGE FAULT", "write", "protection violation"])
        },
        Case { cpus: 1, ..case("fpu-switch-smp1", "ktest", &["fpu"], 0, &["fpu: ok", "ymm0-15 registers held"]) },
        Case { cpus: 2, ..case("fpu-switch-smp2", "ktest", &["fpu"], 0, &["fpu: ok", "ymm0-15 registers held"]) },
        // Issue 3: the inference engine in the image, byte for byte against run.c's transcripts,
        // with the model and tokenizer handed over as files.
        Case {
            repo_files: vec![("models/stories260K.bin", "stories260K.bin"), ("models/tok512.bin", "tok512.bin")],
            mem: "256M",
            check: Some(llm_matches_greedy_reference),
            ..case("llm-greedy-image", "llm", &["stories260K.bin", "-z", "tok512.bin", "-t", "0.0", "-n", "256"], 0, &["Once upon a time"])
        },
        Case {
            cpus: 2,
            repo_files: vec![("models/stories260K.bin", "stories260K.bin"), ("models/tok512.bin", "tok512.bin")],
            mem: "256M",
            check: Some(llm_matches_sample_reference),
            ..case(
                "llm-sample-image-smp2",
                "llm",
                &["stories260K.bin", "-z", "tok512.bin", "-t", "1.0", "-p", "0.9", "-s", "133742", "-n", "256"],
                0,
                &["achieved tok/s"],
            )
        },
        // The default run samples at temperature 1 with a clock seed, so the
        // words differ per boot: check that a story of several sentences came out.
        Case { mem: "256M", check: Some(a_story_came_out), ..case("llm-default-story", "llm", &[], 0, &["achieved tok/s"]) },
        // The greedy transcript's first 40 pieces as the prompt: they run as the
        // batched prefill (16 + 16 + 8), and the story is still run.c's.
        Case {
            repo_files: vec![("models/stories260K.bin", "stories260K.bin"), ("models/tok512.bin", "tok512.bin")],
            mem: "256M",
            check: Some(llm_matches_greedy_reference),
            ..case(
                "llm-prompt-prefill-image",
                "llm",
                &["stories260K.bin", "-z", "tok512.bin", "-t", "0.0", "-n", "256", "-i", PREFILL_PROMPT],
                0,
                &["prompt: 40 tokens in", "(batches of 16)"],
            )
        },
        // The same with the JIT: generated matrix-matrix kernels for the batches.
        Case {
            repo_files: vec![("models/stories260K.bin", "stories260K.bin"), ("models/tok512.bin", "tok512.bin")],
            mem: "256M",
            check: Some(llm_matches_greedy_reference),
            ..case(
                "llm-prompt-prefill-jit-image",
                "llm",
                &["stories260K.bin", "-z", "tok512.bin", "-t", "0.0", "-n", "256", "-i", PREFILL_PROMPT, "--jit", "only"],
                0,
                &["prompt: 40 tokens in"],
            )
        },
        // Issue 7: generated kernels in the image's W^X pages for every shape (`only` fails if one is missing).
        Case {
            repo_files: vec![("models/stories260K.bin", "stories260K.bin"), ("models/tok512.bin", "tok512.bin")],
            mem: "256M",
            check: Some(llm_matches_greedy_reference),
            ..case("llm-jit-image", "llm", &["stories260K.bin", "-z", "tok512.bin", "-t", "0.0", "-n", "256", "--jit", "only"], 0, &["Once upon a time"])
        },
        // `--jit on` in the image: warm-up, generated kernels, the in-place
        // trial against the AOT ones; the story stays the reference's.
        Case {
            repo_files: vec![("models/stories260K.bin", "stories260K.bin"), ("models/tok512.bin", "tok512.bin")],
            mem: "256M",
            check: Some(llm_jit_trial_keeps_the_greedy_reference),
            ..case(
                "llm-jit-trial-image",
                "llm",
                &["stories260K.bin", "-z", "tok512.bin", "-t", "0.0", "-n", "256", "--jit", "on", "--jit-stats"],
                0,
                &["in-place trial after the swap: 8 tokens"],
            )
        },
        // int8 with `--jit on` in the image: the trial races the int8
        // variants op by op; the story stays the AOT int8 one (AVX2 set).
        Case {
            repo_files: vec![("models/stories260K.bin", "stories260K.bin"), ("models/tok512.bin", "tok512.bin")],
            mem: "256M",
            check: Some(llm_int8_race_keeps_the_aot_story),
            ..case(
                "llm-int8-jit-race-image",
                "llm",
                &["stories260K.bin", "-z", "tok512.bin", "-t", "0.0", "-n", "256", "--int8", "--kernels", "avx2", "--jit", "on", "--jit-stats"],
                0,
                &["(2 variants)"],
            )
        },
        // Issue 5: a real peer on the host over QEMU's user network.
        Case {
            via: Via::Peer(net_peer),
            cpus: 2,
            mem: "512M",
            timeout: Duration::from_secs(120),
            ..case("net-tcp-udp-64mib", "ktest", &["net", "3"], 0, &["net: done", "DHCP address 10.0.2.15"])
        },
        // The same peer, the NIC found by PCI enumeration and interrupting by MSI-X.
        Case {
            via: Via::Peer(net_peer_then_reset),
            cpus: 2,
            mem: "512M",
            machine: Some(Machine::Q35),
            timeout: Duration::from_secs(120),
            check: Some(interrupts_were_taken),
            ..case(
                "net-pci-msix-q35-reset",
                "ktest",
                &["net", "4"],
                0,
                &["net: done", "DHCP address 10.0.2.15", "(MSI-X)", "net: read: connection reset", "net: connection 4 from 10.0.2.2"],
            )
        },
        Case {
            via: Via::Peer(httpd_peer),
            cpus: 2,
            mem: "512M",
            timeout: Duration::from_secs(150),
            files: vec![("index.html", "served from the image\n")],
            // 1 probe at least + 100 x 5 + /status: exits after the last one.
            ..case("httpd-image-100-clients", "httpd", &["--port", "80", "--max-conns", "256", "--exit-after", "502"], 0, &["httpd: serving"])
        },
        // Issue 5: virtio-blk. A pattern written and flushed in one boot is read
        // back in a second boot on the same disk image (virtio-mmio on microvm,
        // then virtio-pci with MSI-X on q35; port-I/O PCI on pc), and by the host.
        Case {
            via: Via::Reboot(&Reboot {
                disk_mib: 8,
                prepare: None,
                machine: Some(Machine::Q35),
                args: &["blk", "check", "7", "8192"],
                expect: &["irq MSI-X", "blk: check of 8192 blocks with seed 7 ok"],
                host: |p| disk_holds_pattern(p, 7, 8192),
            }),
            ..case(
                "blk-durable-across-reboot",
                "ktest",
                &["blk", "write", "7", "8192"],
                0,
                &["blk0 has 16384 blocks", "irq GSI", "past the end refused", "partial block refused", "blk: write of 8192 blocks with seed 7 ok", "flushes 1"],
            )
        },
        Case {
            via: Via::Reboot(&Reboot {
                disk_mib: 4,
                prepare: None,
                machine: Some(Machine::Pc),
                args: &["blk", "check", "99", "2048"],
                expect: &["blk: check of 2048 blocks with seed 99 ok"],
                host: |p| disk_holds_pattern(p, 99, 2048),
            }),
            machine: Some(Machine::Pc),
            ..case("blk-pc-port-io-pci", "ktest", &["blk", "write", "99", "2048"], 0, &["blk0 has 8192 blocks", "blk: write of 2048 blocks with seed 99 ok"])
        },
        // Issue 6: a FAT file system on virtio-blk, prepared on the host with
        // mkfs.fat + mcopy, used through bareflow_sys::fs, read back with mtools.
        Case {
            via: Via::Disk(|p| make_fat(p, "16", 16384), fat_after_guest),
            files: vec![("data.txt", "a boot-time file\n")],
            ..case(
                "fs-fat16-on-virtio-blk",
                "ktest",
                &["fs"],
                0,
                &[
                    "fs: host file says \"hello from the host\"",
                    "fs: wrote and read back 118898 bytes",
                    "fs: big file of 1572864 bytes reads back",
                    "fs: /disk holds BIG.BIN GUEST.TXT HOST.TXT SUB/",
                    "fs: metadata len 118898 dir false",
                    "fs: SUB is a directory: true",
                    "fs: /disk/SUB holds A.TXT",
                    "fs: removed file: /disk/SUB/GONE.TXT: no such file",
                    "long name refused",
                    "fs: boot file write refused: data.txt: read-only",
                    "fs: missing directory: /disk/NOPE/X.TXT: no such file",
                    "fs: done",
                ],
            )
        },
        // FAT32 over virtio-pci: what one boot wrote, the next boot reads back.
        Case {
            via: Via::Reboot(&Reboot {
                disk_mib: 32,
                prepare: Some(|p| make_fat(p, "32", 65536)),
                machine: Some(Machine::Q35),
                args: &["cat", "/disk/GUEST.TXT"],
                expect: &["line 0 written by the BareFlow guest", "line 2999 written by the BareFlow guest\nthe end"],
                host: fat_after_guest,
            }),
            machine: Some(Machine::Q35),
            ..case("fs-fat32-pci-q35-reboot", "ktest", &["fs"], 0, &["fs: wrote and read back 118898 bytes", "fs: done"])
        },
        // Issue 5: virtio-rng and virtio-console, over virtio-mmio and over PCI.
        Case {
            via: Via::RngConsole(console_line_arrived),
            ..case("rng-console-microvm", "ktest", &["devices"], 0, &["distinct values", "two draws equal: false", "devices: ok"])
        },
        Case {
            via: Via::RngConsole(console_line_arrived),
            machine: Some(Machine::Q35),
            ..case("rng-console-pci-q35", "ktest", &["devices"], 0, &["distinct values", "two draws equal: false", "devices: ok"])
        },
        // Issue 6: httpd loads a signed handler payload from the initfs at start.
        Case {
            via: Via::Peer(httpd_handler_peer),
            payload: Some(PayloadVariant::Handler),
            mem: "256M",
            files: vec![("index.html", "served from the image\n")],
            ..case("httpd-signed-handler", "httpd", &["--port", "80", "--exit-after", "3"], 0, &["/handler is served by the signed payload `handler-payload`"])
        },
        // Issue 5: the governor under a scripted load, and bad input, against the image.
        Case {
            via: Via::Peer(httpd_governor_peer),
            cpus: 2,
            mem: "256M",
            timeout: Duration::from_secs(150),
            files: vec![("index.html", "served from the image\n")],
            // Thresholds this TCG guest can cross (httpd serves ~150 requests/s
            // here, ~550 events/s; the defaults, 2000/200, are for real hardware).
            env: vec![("bareflow.net.high", "300"), ("bareflow.net.low", "60")],
            // probe + /status + 8 x 250 + /status
            ..case("httpd-governor-scripted-load", "httpd", &["--port", "80", "--exit-after", "2003"], 0, &["httpd: serving"])
        },
        Case {
            via: Via::Peer(httpd_bad_input_peer),
            cpus: 2,
            mem: "256M",
            timeout: Duration::from_secs(120),
            files: vec![("index.html", "served from the image\n")],
            ..case(
                "httpd-bad-input",
                "httpd",
                &["--port", "80", "--max-conns", "4", "--idle-ms", "1000", "--max-header-bytes", "1024", "--exit-after", "7"],
                0,
                &["httpd: serving"],
            )
        },
        // Issue 5: IPv6 beyond link-local and ICMP echo, v4 and v6, to QEMU's gateway.
        Case {
            via: Via::EchoV6,
            cpus: 2,
            env: vec![("net.ip6", "fec0::15/64"), ("net.gw6", "fec0::2")],
            ..case(
                "net-ipv6-icmp",
                "ktest",
                &["net6"],
                0,
                &["net6: ping 10.0.2.2: reply in", "net6: ping fec0::2: reply in", "echoed \"hello over IPv6\\n\"", "net6: ok"],
            )
        },
        case("registry-missing", "ktest", &["registry-missing"], 0, &["registry: no device `blk7`", "attached: none"]),
        Case {
            via: Via::Cli,
            timeout: Duration::from_secs(3),
            check: Some(qemu_pid_is_gone),
            ..case("timeout", "ktest", &["hang"], 124, &["timeout", "killed the guest (QEMU pid"])
        },
        Case {
            via: Via::CliInterrupt(Duration::from_millis(1500)),
            check: Some(qemu_pid_is_gone),
            ..case("ctrl-c", "ktest", &["hang"], 130, &["interrupted: stopped the guest (QEMU pid"])
        },
        // Without QEMU's isa-debug-exit (as under Firecracker or cloud-hypervisor), the
        // kernel switches the machine off through ACPI: QEMU ends by itself (hardware-reduced
        // sleep control on microvm, PM1 control with \_S5's type on q35 and pc), and the
        // runner takes the code from the kernel's last line.
        acpi_poweroff("acpi-poweroff-microvm", Machine::Microvm, &["--exit", "3"], 3),
        acpi_poweroff("acpi-poweroff-q35", Machine::Q35, &["--exit", "4"], 4),
        acpi_poweroff("acpi-poweroff-pc", Machine::Pc, &[], 0),
        Case {
            // An ELF without a PVH note: QEMU refuses it with status 1, which must not read as "exit 0".
            via: Via::Cli,
            cli_args: vec!["--image".into(), "/bin/true".into()],
            ..case("not-an-image", "hello", &[], 2, &["QEMU failed with status 1", "PVH"])
        },
        Case {
            via: Via::Cli,
            cli_args: vec!["--image".into(), "/nonexistent".into()],
            ..case("bad-image", "hello", &[], 2, &["image /nonexistent does not exist"])
        },
    ]
}

/// A backtrace line the runner symbolized: `  #N 0x... <name+0x..>`.
fn has_symbolized_frame(out: &str) -> Result<(), String> {
    let ok = out.lines().any(|l| {
        bareflow_cli::symbolize::parse_frame(l.split(" <").next().unwrap_or("")).is_some()
            && l.contains(" <")
            && l.trim_end().ends_with('>')
    });
    if ok { Ok(()) } else { Err("no symbolized backtrace line (`  #N 0x... <symbol+0xoff>`)".into()) }
}

/// The first 40 pieces of run.c's greedy stories260K transcript (they encode
/// back to its first 40 ids: see crates/llm/tests/reference.rs).
const PREFILL_PROMPT: &str = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, r";

/// The guest's output, less the `achieved tok/s` line, equals reference transcript `name` (less its command line).
fn llm_matches_reference(out: &str, name: &str) -> Result<(), String> {
    let path = bareflow_cli::root::repo_root().join("models/reference").join(name);
    let reference = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let want: String = reference.lines().skip(1).map(|l| format!("{l}\n")).collect();
    // (Less the `prompt: N tokens in ...` line too, when a prompt was given.)
    let got: String = out
        .lines()
        .filter(|l| !l.starts_with("achieved tok/s") && !(l.starts_with("prompt: ") && l.ends_with(')')))
        .map(|l| format!("{l}\n"))
        .collect();
    if got == want {
        Ok(())
    } else {
        let at = got.chars().zip(want.chars()).take_while(|(a, b)| a == b).count();
        Err(format!("output differs from {name} at character {at}"))
    }
}

fn llm_matches_greedy_reference(out: &str) -> Result<(), String> {
    llm_matches_reference(out, "greedy_no_prompt_n256.txt")
}

/// The story before the `--jit-stats` dump is the greedy reference, and every
/// generated kernel that passed its check has a trial verdict.
fn llm_jit_trial_keeps_the_greedy_reference(out: &str) -> Result<(), String> {
    let at = out.find("jit_profile:").ok_or("no jit_profile dump")?;
    llm_matches_greedy_reference(&out[..at])?;
    let kernels: Vec<&str> = out[at..].lines().filter(|l| l.contains(" bytes, warm-up cycles ")).collect();
    if kernels.is_empty() {
        return Err("no generated kernel listed".into());
    }
    match kernels.iter().find(|l| !l.contains("after the trial") && !l.trim_end().ends_with("refused")) {
        Some(l) => Err(format!("a kernel without a trial verdict: {l}")),
        None => Ok(()),
    }
}

/// The int8 story before the `--jit-stats` dump is the recorded AOT int8 one,
/// and the trial made a choice for each of stories260K's five int8 shapes.
fn llm_int8_race_keeps_the_aot_story(out: &str) -> Result<(), String> {
    let at = out.find("jit_profile:").ok_or("no jit_profile dump")?;
    llm_matches_reference(&out[..at], "bareflow_int8_avx2_greedy_no_prompt_n256.txt")?;
    let choices = out[at..].lines().filter(|l| l.contains("note: q8 matmul") && l.contains("(in place, AOT/JIT:")).count();
    if choices == 5 { Ok(()) } else { Err(format!("{choices} int8 choices listed, want 5")) }
}

fn llm_matches_sample_reference(out: &str) -> Result<(), String> {
    llm_matches_reference(out, "sample_t1.0_p0.9_s133742_no_prompt_n256.txt")
}

/// A port on 127.0.0.1 that is free now.
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// The checksum the guest computes: h = h * 31 + byte, wrapping.
fn guest_sum(data: &[u8], mut h: u64) -> u64 {
    for &b in data {
        h = h.wrapping_mul(31).wrapping_add(b as u64);
    }
    h
}

/// One TCP exchange with the guest's server, retried until it listens (up to 30 s).
fn tcp_exchange(port: u16, send: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::{Read, Write};
    let start = Instant::now();
    loop {
        let attempt = (|| -> std::io::Result<Vec<u8>> {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            s.write_all(send)?;
            let mut out = Vec::new();
            s.read_to_end(&mut out)?;
            Ok(out)
        })();
        match attempt {
            Ok(out) if out.starts_with(b"HTTP/1.0 200") => return Ok(out),
            Ok(_) | Err(_) if start.elapsed() < Duration::from_secs(30) => std::thread::sleep(Duration::from_millis(200)),
            Ok(out) => return Err(format!("bad reply: {:?}", String::from_utf8_lossy(&out[..out.len().min(200)]))),
            Err(e) => return Err(format!("cannot talk to the guest on 127.0.0.1:{port}: {e}")),
        }
    }
}

/// The host peer of `ktest net 3`: a request, a 64 MiB upload and a 64 MiB
/// download, each checksummed; UDP echo.
fn net_peer(tcp: u16, udp: u16) -> Result<(), String> {
    let req = b"GET / HTTP/1.0\r\n\r\n";
    let r = tcp_exchange(tcp, req)?;
    let want = format!("bytes={} sum={}", req.len(), guest_sum(req, 0));
    if !String::from_utf8_lossy(&r).contains(&want) {
        return Err(format!("reply lacks `{want}`: {}", String::from_utf8_lossy(&r)));
    }
    // UDP echo (the guest's echo thread is up once TCP answers).
    let u = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    u.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    let mut echoed = false;
    for _ in 0..5 {
        let _ = u.send_to(b"ping bareflow", ("127.0.0.1", udp));
        let mut b = [0u8; 64];
        if let Ok((n, _)) = u.recv_from(&mut b) {
            echoed = &b[..n] == b"ping bareflow";
            break;
        }
    }
    if !echoed {
        return Err("no UDP echo".into());
    }
    // 64 MiB up.
    let big: Vec<u8> = (0..64usize << 20).map(|i| (i * 7 % 251) as u8).chain(req.iter().copied()).collect();
    let r = tcp_exchange(tcp, &big)?;
    let want = format!("bytes={} sum={}", big.len(), guest_sum(&big, 0));
    if !String::from_utf8_lossy(&r).contains(&want) {
        return Err(format!("upload: reply lacks `{want}`: {}", String::from_utf8_lossy(&r)));
    }
    // 64 MiB down.
    let n = 64usize << 20;
    let r = tcp_exchange(tcp, format!("DOWNLOAD {n}\r\n\r\n").as_bytes())?;
    let body_at = r.windows(4).position(|w| w == b"\r\n\r\n").ok_or("download: no header end")? + 4;
    let body = &r[body_at..];
    let ok = body.len() == n && body.iter().enumerate().all(|(i, &b)| b == (i % 65536 % 251) as u8);
    if !ok {
        return Err(format!("download: got {} bytes, want {n} of the pattern", body.len()));
    }
    Ok(())
}

/// `net_peer`, then a fourth connection that sends a few bytes and resets
/// (RST, not FIN): the guest must read a reset, not end of stream.
fn net_peer_then_reset(tcp: u16, udp: u16) -> Result<(), String> {
    net_peer(tcp, udp)?;
    let s = std::net::TcpStream::connect(("127.0.0.1", tcp)).map_err(|e| format!("reset connection: {e}"))?;
    let mut s = socket2::Socket::from(s);
    std::io::Write::write_all(&mut s, b"partial request").map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_millis(500));
    s.set_linger(Some(Duration::ZERO)).map_err(|e| e.to_string())?;
    drop(s);
    Ok(())
}

/// A keep-alive HTTP/1.1 client connection.
struct KeepAlive {
    w: std::net::TcpStream,
    r: std::io::BufReader<std::net::TcpStream>,
}

impl KeepAlive {
    fn connect(port: u16) -> Result<KeepAlive, String> {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(60))).map_err(|e| e.to_string())?;
        let w = s.try_clone().map_err(|e| e.to_string())?;
        Ok(KeepAlive { w, r: std::io::BufReader::new(s) })
    }

    /// One GET of `path` on this connection: the body of its 200 response.
    fn get(&mut self, path: &str) -> Result<String, String> {
        use std::io::{BufRead, Read, Write};
        write!(self.w, "GET {path} HTTP/1.1\r\nHost: bareflow\r\n\r\n").map_err(|e| e.to_string())?;
        let mut status = String::new();
        self.r.read_line(&mut status).map_err(|e| e.to_string())?;
        if !status.starts_with("HTTP/1.1 200") {
            return Err(format!("GET {path}: {}", status.trim()));
        }
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            self.r.read_line(&mut h).map_err(|e| e.to_string())?;
            if h.trim().is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().map_err(|_| "bad content-length")?;
            }
        }
        let mut body = vec![0u8; len];
        self.r.read_exact(&mut body).map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

/// One GET of `path` on a new connection.
fn http_get(port: u16, path: &str) -> Result<String, String> {
    KeepAlive::connect(port)?.get(path)
}

/// The host peer of `httpd` in the image: waits for it, opens 100 keep-alive
/// connections that all stay open, then sends 4 more GETs on each from 100
/// concurrent threads, then `/status`.
///
/// The connections are opened one after the other (each answers its first
/// GET before the next connects) because QEMU's user network listens for the
/// host forward with a backlog of 1 (`ss -ltn` shows it): a burst of 100
/// connects overflows that host-side queue and Linux retransmits the lost
/// handshakes for up to a minute, before the guest ever sees a SYN.
fn httpd_peer(tcp: u16, _udp: u16) -> Result<(), String> {
    const BODY: &str = "served from the image\n";
    let start = Instant::now();
    // Exactly one probe succeeds (the server exits after a fixed count).
    while http_get(tcp, "/index.html").is_err() {
        if start.elapsed() > Duration::from_secs(60) {
            return Err("httpd did not answer within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut conns = Vec::new();
    for i in 0..100 {
        let mut c = KeepAlive::connect(tcp).map_err(|e| format!("connection {i}: {e}"))?;
        let body = c.get("/index.html").map_err(|e| format!("connection {i}: {e}"))?;
        if body != BODY {
            return Err(format!("connection {i}: wrong body {body:?}"));
        }
        conns.push(c);
    }
    let all_open = std::sync::Arc::new(std::sync::Barrier::new(conns.len()));
    let clients: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            let all_open = all_open.clone();
            std::thread::spawn(move || {
                all_open.wait();
                (0..4).map(|_| c.get("/index.html")).collect::<Result<Vec<_>, _>>()
            })
        })
        .collect();
    for c in clients {
        let bodies = c.join().map_err(|_| "client panicked")??;
        if bodies.iter().any(|b| b != BODY) {
            return Err(format!("wrong body: {bodies:?}"));
        }
    }
    // The probe, 100 first GETs, 400 more and this one: 502 served, none bad.
    let status = http_get(tcp, "/status")?;
    if !status.contains("\"requests\":{\"served\":502,\"bad\":0}") {
        return Err(format!("/status does not count 502 requests served and none bad: {status}"));
    }
    // The kernel's governor of net0, not a placeholder.
    if !(status.contains("\"governor\":\"polling\",\"io\":{") || status.contains("\"governor\":\"interrupts\",\"io\":{")) {
        return Err(format!("/status lacks the network device's governor mode and counters: {status}"));
    }
    Ok(())
}

/// At least 200 bytes of text with three sentence ends before the speed line.
fn a_story_came_out(out: &str) -> Result<(), String> {
    let story = out.split("achieved tok/s").next().unwrap_or("");
    let ends = story.matches(['.', '!', '?']).count();
    if story.trim().len() < 200 || ends < 3 {
        return Err(format!("no story before the speed line ({} bytes, {ends} sentence ends)", story.trim().len()));
    }
    Ok(())
}

/// The number after `"key":` in a JSON text.
fn json_u64(json: &str, key: &str) -> Result<u64, String> {
    let pat = format!("\"{key}\":");
    let at = json.find(&pat).ok_or_else(|| format!("no {key} in {json}"))? + pat.len();
    json[at..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().map_err(|_| format!("{key} is not a number in {json}"))
}

/// Waits for httpd: exactly one probe GET succeeds.
fn wait_for_httpd(tcp: u16) -> Result<(), String> {
    let start = Instant::now();
    while http_get(tcp, "/index.html").is_err() {
        if start.elapsed() > Duration::from_secs(60) {
            return Err("httpd did not answer within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    Ok(())
}

/// Requests of the governor peer: 8 connections x 250 GETs.
const GOV_CLIENTS: usize = 8;
const GOV_GETS: usize = 250;

/// A scripted load against httpd in the image: idle, then 8 keep-alive
/// clients as fast as they go, then idle again. The NIC's governor must have
/// gone to polling under the load and back to interrupts after it, with
/// events counted in both modes.
fn httpd_governor_peer(tcp: u16, _udp: u16) -> Result<(), String> {
    wait_for_httpd(tcp)?;
    std::thread::sleep(Duration::from_millis(600));
    let before = http_get(tcp, "/status")?;
    if !before.contains("\"governor\":\"interrupts\"") {
        return Err(format!("idle, the governor should sleep on interrupts: {before}"));
    }
    let mut conns = Vec::new();
    for i in 0..GOV_CLIENTS {
        conns.push(KeepAlive::connect(tcp).map_err(|e| format!("connection {i}: {e}"))?);
    }
    let clients: Vec<_> = conns
        .into_iter()
        .map(|mut c| std::thread::spawn(move || (0..GOV_GETS).try_for_each(|_| c.get("/index.html").map(drop))))
        .collect();
    for c in clients {
        c.join().map_err(|_| "client panicked")??;
    }
    std::thread::sleep(Duration::from_millis(1500));
    let after = http_get(tcp, "/status")?;
    let (to_war, to_peace) = (json_u64(&after, "to_polling")?, json_u64(&after, "to_interrupts")?);
    let (ev_war, ev_peace) = (json_u64(&after, "events_polling")?, json_u64(&after, "events_interrupts")?);
    if to_war < 1 || to_peace < 1 || ev_war == 0 || ev_peace == 0 {
        return Err(format!("under load then idle, the governor should switch both ways with events in both modes: {after}"));
    }
    if !after.contains("\"governor\":\"interrupts\"") {
        return Err(format!("idle again, the governor should be back on interrupts: {after}"));
    }
    println!("qemu: governor after the scripted load: to_polling={to_war} to_interrupts={to_peace} events_polling={ev_war} events_interrupts={ev_peace}");
    Ok(())
}

/// httpd in the image serves `/handler` from the signed handler payload it
/// loaded from the initfs: two calls, each naming the request count.
fn httpd_handler_peer(tcp: u16, _udp: u16) -> Result<(), String> {
    wait_for_httpd(tcp)?; // request 1
    for n in [2, 3] {
        let body = http_get(tcp, "/handler")?;
        let want = format!("hello from a signed handler payload: request {n}");
        if !body.starts_with(&want) {
            return Err(format!("/handler answered {body:?}, not {want:?}"));
        }
    }
    Ok(())
}

/// Sends `req` on a new connection and returns what comes back until the
/// server closes (or `wait` passes).
fn raw_exchange(tcp: u16, req: &[u8], wait: Duration) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", tcp)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(wait)).map_err(|e| e.to_string())?;
    s.write_all(req).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Bad input against httpd in the image (`--max-conns 4 --idle-ms 1000
/// --max-header-bytes 1024`): 400, 431, a slow client timed out with 408, the
/// fifth connection refused with 503, and the server serving throughout.
fn httpd_bad_input_peer(tcp: u16, _udp: u16) -> Result<(), String> {
    wait_for_httpd(tcp)?; // 1 served
    let r = raw_exchange(tcp, b"GARBAGE\r\n\r\n", Duration::from_secs(10))?;
    if !r.starts_with("HTTP/1.1 400") {
        return Err(format!("a malformed request got {r:?}, not 400"));
    }
    let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(2048));
    let r = raw_exchange(tcp, big.as_bytes(), Duration::from_secs(10))?;
    if !r.starts_with("HTTP/1.1 431") {
        return Err(format!("an oversized head got {:?}, not 431", &r[..r.len().min(80)]));
    }
    let t = Instant::now();
    let r = raw_exchange(tcp, b"GET /index.html HTTP/1.1\r\nHost: slow", Duration::from_secs(10))?;
    if !r.starts_with("HTTP/1.1 408") || t.elapsed() > Duration::from_secs(5) {
        return Err(format!("a client that stalls mid-head got {r:?} after {:?}, not 408 within the 1 s idle limit", t.elapsed()));
    }
    // Four keep-alive connections fill the cap (2..=5 served); a fifth is refused.
    let mut held = Vec::new();
    for i in 0..4 {
        let mut c = KeepAlive::connect(tcp)?;
        c.get("/index.html").map_err(|e| format!("held connection {i}: {e}"))?;
        held.push(c);
    }
    let r = raw_exchange(tcp, b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n", Duration::from_secs(10))?;
    if !r.starts_with("HTTP/1.1 503") {
        return Err(format!("a connection over the cap got {r:?}, not 503"));
    }
    // The held ones still work (6 served), then free the slots.
    held[0].get("/index.html").map_err(|e| format!("a held connection after the flood: {e}"))?;
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let status = http_get(tcp, "/status")?; // 7 served: the server exits after it
    let (bad, rejected, timed_out) = (json_u64(&status, "bad")?, json_u64(&status, "rejected")?, json_u64(&status, "timed_out")?);
    if bad < 2 || rejected < 1 || timed_out < 1 || json_u64(&status, "served")? != 7 {
        return Err(format!("/status should count 7 served, 2 bad, 1 rejected, 1 timed out: {status}"));
    }
    Ok(())
}

/// The first task IDs of two boots must differ (a fresh key each boot).
/// The governor line says the device interrupted at least once (the NIC
/// did not only get polled).
fn interrupts_were_taken(out: &str) -> Result<(), String> {
    let line = out.lines().find(|l| l.contains("net: governor")).ok_or("no governor line")?;
    let irqs: u64 = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("irqs="))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no irqs= in `{line}`"))?;
    if irqs == 0 { Err(format!("no interrupt was taken: `{line}`")) } else { Ok(()) }
}

/// The word at byte `offset` of ktest's block pattern for `seed` (the same
/// splitmix64 as `apps/ktest/src/blk.rs`).
fn blk_pattern_word(seed: u64, offset: u64) -> u64 {
    let mut z = seed.wrapping_add(offset.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The host reads the disk image: the first `blocks` blocks hold the pattern
/// of `seed`, the rest is still zero.
fn disk_holds_pattern(path: &Path, seed: u64, blocks: u64) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let n = (blocks * 512) as usize;
    if bytes.len() < n {
        return Err(format!("the disk image has {} bytes, fewer than {n}", bytes.len()));
    }
    for (i, w) in bytes[..n].chunks_exact(8).enumerate() {
        let want = blk_pattern_word(seed, 8 * i as u64);
        if u64::from_le_bytes(w.try_into().map_err(|_| "short word")?) != want {
            return Err(format!("the host sees byte {} of the disk differ from the pattern", 8 * i));
        }
    }
    if let Some(i) = bytes[n..].iter().position(|&b| b != 0) {
        return Err(format!("byte {} past the written range is not zero", n + i));
    }
    Ok(())
}

/// Runs a host tool, failing with its output when it fails.
fn host_tool(cmd: &mut Command) -> Result<Vec<u8>, String> {
    let out = cmd.output().map_err(|e| format!("cannot run {:?}: {e} (install dosfstools and mtools)", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!("{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(out.stdout)
}

/// A dosfstools program, from /usr/sbin when that is not on PATH.
fn sbin(name: &str) -> Command {
    let p = Path::new("/usr/sbin").join(name);
    Command::new(if p.exists() { p } else { PathBuf::from(name) })
}

/// A FAT image as a user makes one: `mkfs.fat` (no partition table), a
/// file copied in with `mcopy`.
fn make_fat(path: &Path, fat: &str, kib: u32) -> Result<(), String> {
    host_tool(sbin("mkfs.fat").args(["-F", fat, "-C"]).arg(path).arg(kib.to_string()))?;
    let host = path.with_extension("host.txt");
    std::fs::write(&host, "hello from the host\n").map_err(|e| e.to_string())?;
    host_tool(Command::new("mcopy").arg("-i").arg(path).arg(&host).arg("::HOST.TXT")).map(|_| ())
}

/// The guest's files as the host's mtools see them, and a file system that
/// `fsck.fat` finds consistent but for the one cluster that the removed
/// file leaks (a known limit of embedded-sdmmc's delete).
fn fat_after_guest(path: &Path) -> Result<(), String> {
    let got = host_tool(Command::new("mtype").arg("-i").arg(path).arg("::GUEST.TXT"))?;
    let want: String = (0..3000).map(|i| format!("line {i} written by the BareFlow guest\n")).collect::<String>() + "the end\n";
    if got != want.as_bytes() {
        return Err(format!("the host reads {} bytes of GUEST.TXT, want {}", got.len(), want.len()));
    }
    let big = host_tool(Command::new("mtype").arg("-i").arg(path).arg("::BIG.BIN"))?;
    let want_big: Vec<u8> = (0..1536u32 << 10).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    if big != want_big {
        return Err(format!("the host reads {} bytes of BIG.BIN that differ from the {} the guest wrote", big.len(), want_big.len()));
    }
    let sub = host_tool(Command::new("mtype").arg("-i").arg(path).arg("::SUB/A.TXT"))?;
    if sub != b"in a subdirectory\n" {
        return Err(format!("SUB/A.TXT reads {:?}", String::from_utf8_lossy(&sub)));
    }
    let out = sbin("fsck.fat").arg("-n").arg(path).output().map_err(|e| format!("cannot run fsck.fat: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let bad: Vec<&str> = text
        .lines()
        .skip(1)
        .filter(|l| {
            !(l.trim().is_empty()
                || l.starts_with("Reclaimed 1 unused cluster")
                || l.starts_with("Free cluster summary wrong")
                || l.contains("Auto-correcting")
                || l.starts_with("Leaving filesystem unchanged")
                || l.contains(" files, "))
        })
        .collect();
    if !bad.is_empty() {
        return Err(format!("fsck.fat finds problems:\n{text}"));
    }
    Ok(())
}

/// The console port's file holds the line the guest says it wrote.
fn console_line_arrived(path: &Path, out: &str) -> Result<(), String> {
    let said = out
        .lines()
        .find_map(|l| l.strip_prefix("devices: wrote to console0: "))
        .ok_or("the guest did not say what it wrote")?;
    let got = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if got.lines().any(|l| l == said) { Ok(()) } else { Err(format!("the console file holds {got:?}, not {said:?}")) }
}

fn ids_differ_between_boots(out: &str) -> Result<(), String> {
    static SEEN: Mutex<Option<String>> = Mutex::new(None);
    let line = out.lines().find(|l| l.starts_with("ids: first")).ok_or("no `ids: first` line")?.to_string();
    let mut seen = SEEN.lock().map_err(|_| "poisoned")?;
    match seen.as_ref() {
        Some(other) if *other == line => Err(format!("two boots gave the same IDs: {line}")),
        _ => {
            *seen = Some(line);
            Ok(())
        }
    }
}

/// The TLB case's fault is the probe page's (CR2 = the address it printed),
/// hit by the writer thread on the other CPU, not by anything else.
fn tlb_fault_at_probe(out: &str) -> Result<(), String> {
    let addr = out
        .lines()
        .find_map(|l| l.strip_prefix("tlb: probe page at "))
        .map(str::trim)
        .ok_or("no `tlb: probe page at` line")?;
    if !out.contains(&format!("cr2={addr}")) {
        return Err(format!("the fault is not at the probe page {addr}"));
    }
    if !out.contains("tlb::{closure") {
        return Err("the faulting code is not the tlb writer thread".into());
    }
    if out.contains("the write went through") {
        return Err("a write to the read-only page went through".into());
    }
    Ok(())
}

/// Under TCG `-cpu max` the guest must see AVX2.
fn avx2_under_tcg(out: &str) -> Result<(), String> {
    if *ACCEL.lock().unwrap() == Some(bareflow_cli::qemu::Accel::Kvm) {
        return Ok(());
    }
    if out.contains("avx2: yes") { Ok(()) } else { Err("TCG with -cpu max should report `avx2: yes`".into()) }
}

/// The runner's timeout message names the QEMU pid; that process must be gone.
fn qemu_pid_is_gone(out: &str) -> Result<(), String> {
    let pid = out
        .split("QEMU pid ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse::<u32>().ok())
        .ok_or("the message does not name the QEMU pid")?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    if status.contains("qemu-system") { Err(format!("QEMU pid {pid} is still running")) } else { Ok(()) }
}

/// The accelerator chosen for the run (for checks that depend on it).
static ACCEL: Mutex<Option<bareflow_cli::qemu::Accel>> = Mutex::new(None);

struct Images {
    hello: PathBuf,
    ktest: PathBuf,
    llm: PathBuf,
    httpd: PathBuf,
    /// The shared object of payloads/hello (built only when a case needs it).
    payload_elf: Option<PathBuf>,
    /// The shared object of payloads/handler (likewise).
    handler_elf: Option<PathBuf>,
}

/// The checks every case shares: exit code, expected substrings, the extra check.
fn verify(c: &Case, exit_ok: bool, got: &str, text: &str) -> Result<(), String> {
    if !exit_ok {
        return Err(format!("expected exit code {}, got {got}", c.exit));
    }
    if let Some(missing) = c.expect.iter().find(|e| !text.contains(*e)) {
        return Err(format!("output lacks `{missing}`"));
    }
    c.check.map_or(Ok(()), |check| check(text))
}

fn run_case(c: &Case, images: &Images, tmp: &Path) -> Result<(), String> {
    let image = match c.app {
        "hello" => &images.hello,
        "llm" => &images.llm,
        "httpd" => &images.httpd,
        _ => &images.ktest,
    };
    // Files for the archive.
    let mut files = Vec::new();
    for (guest, content) in &c.files {
        let host = tmp.join(format!("{}-{}", c.name, guest.replace('/', "_")));
        std::fs::write(&host, content).map_err(|e| format!("cannot write {}: {e}", host.display()))?;
        files.push((host, guest.to_string()));
    }
    for (path, guest) in &c.repo_files {
        files.push((bareflow_cli::root::repo_root().join(path), guest.to_string()));
    }
    if let Some(v) = c.payload {
        let (elf, guest) = match v {
            PayloadVariant::Handler => (images.handler_elf.as_ref(), "handler.bfp"),
            _ => (images.payload_elf.as_ref(), "hello.bfp"),
        };
        let elf = elf.ok_or("the payload was not built")?;
        files.push((make_payload(v, elf, tmp, c.name)?, guest.to_string()));
    }
    if let Via::Peer(peer) = c.via {
        let tcp = free_port()?;
        let udp = free_port()?;
        let mut o = RunOptions::new(c.app);
        o.image = Some(image.clone());
        o.machine = c.machine;
        o.cpus = c.cpus;
        o.mem = c.mem.to_string();
        o.args = c.args.iter().map(|s| s.to_string()).collect();
        o.timeout = c.timeout;
        o.echo = false;
        o.tag = Some(c.name.to_string());
        o.net = Some(vec![(tcp, 80), (udp, 7)]);
        o.env = c.env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        o.files = files;
        let guest = std::thread::spawn(move || run::run(&o).map_err(|e| format!("{e:#}")));
        let peer_result = peer(tcp, udp);
        let out = guest.join().map_err(|_| "the runner thread panicked".to_string())??;
        let text = out.output();
        peer_result.map_err(|e| format!("{e}\n--- guest output ---\n{text}"))?;
        let exit_ok = out.ending == Ending::Code(c.exit);
        let got = format!("{:?}", out.ending);
        return verify(c, exit_ok, &got, &text).map_err(|e| format!("{e}\n--- guest output ---\n{text}"));
    }
    // One boot through the library with these args, machine and disks.
    let boot = |args: &[&str], machine: Option<Machine>, disks: Vec<PathBuf>, files: Vec<(PathBuf, String)>| {
        let mut o = RunOptions::new(c.app);
        o.image = Some(image.clone());
        o.machine = machine;
        o.cpus = c.cpus;
        o.mem = c.mem.to_string();
        o.env = c.env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        o.files = files;
        o.disks = disks;
        o.args = args.iter().map(|s| s.to_string()).collect();
        o.timeout = c.timeout;
        o.echo = false;
        o.tag = Some(c.name.to_string());
        run::run(&o).map_err(|e| format!("{e:#}"))
    };
    match c.via {
        Via::Peer(_) => unreachable!("handled above"),
        Via::Reboot(plan) => {
            let disk = tmp.join(format!("{}-disk.img", c.name));
            let f = std::fs::File::create(&disk).map_err(|e| format!("cannot create {}: {e}", disk.display()))?;
            f.set_len(plan.disk_mib << 20).map_err(|e| format!("cannot size {}: {e}", disk.display()))?;
            drop(f);
            if let Some(prepare) = plan.prepare {
                std::fs::remove_file(&disk).map_err(|e| e.to_string())?;
                prepare(&disk)?;
            }
            let first = boot(&c.args, c.machine, vec![disk.clone()], files.clone())?;
            let text = first.output();
            verify(c, first.ending == Ending::Code(c.exit), &format!("{:?}", first.ending), &text)
                .map_err(|why| format!("first boot: {why}\n--- guest output ---\n{text}"))?;
            let second = boot(plan.args, plan.machine, vec![disk.clone()], files)?;
            let text2 = second.output();
            let c2 = Case { expect: plan.expect.to_vec(), check: None, ..c.clone() };
            verify(&c2, second.ending == Ending::Code(0), &format!("{:?}", second.ending), &text2)
                .map_err(|why| format!("second boot: {why}\n--- guest output ---\n{text2}"))?;
            (plan.host)(&disk)
        }
        Via::EchoV6 => {
            use std::io::{Read, Write};
            let l = std::net::TcpListener::bind("[::1]:0").map_err(|e| format!("cannot listen on [::1]: {e}"))?;
            let port = l.local_addr().map_err(|e| e.to_string())?.port();
            let echo = std::thread::spawn(move || -> Result<String, String> {
                let (mut s, from) = l.accept().map_err(|e| e.to_string())?;
                s.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
                let mut b = [0u8; 16];
                s.read_exact(&mut b).map_err(|e| e.to_string())?;
                s.write_all(&b).map_err(|e| e.to_string())?;
                Ok(format!("{from}: {}", String::from_utf8_lossy(&b)))
            });
            let mut o = RunOptions::new(c.app);
            o.image = Some(image.clone());
            o.machine = c.machine;
            o.cpus = c.cpus;
            o.mem = c.mem.to_string();
            o.env = c.env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            o.args = c.args.iter().map(|s| s.to_string()).chain([port.to_string()]).collect();
            o.timeout = c.timeout;
            o.echo = false;
            o.tag = Some(c.name.to_string());
            o.net = Some(Vec::new());
            let out = run::run(&o).map_err(|e| format!("{e:#}"))?;
            let text = out.output();
            verify(c, out.ending == Ending::Code(c.exit), &format!("{:?}", out.ending), &text)
                .map_err(|why| format!("{why}\n--- guest output ---\n{text}"))?;
            if !echo.is_finished() {
                return Err(format!("the host's IPv6 listener got no connection\n--- guest output ---\n{text}"));
            }
            echo.join().map_err(|_| "the echo thread panicked")?.map(drop)
        }
        Via::RngConsole(after) => {
            let con = tmp.join(format!("{}-console.out", c.name));
            let mut o = RunOptions::new(c.app);
            o.image = Some(image.clone());
            o.machine = c.machine;
            o.cpus = c.cpus;
            o.mem = c.mem.to_string();
            o.args = c.args.iter().map(|s| s.to_string()).collect();
            o.timeout = c.timeout;
            o.echo = false;
            o.tag = Some(c.name.to_string());
            o.extra = vec![bareflow_cli::qemu::Extra::Rng, bareflow_cli::qemu::Extra::Console(con.clone())];
            let out = run::run(&o).map_err(|e| format!("{e:#}"))?;
            let text = out.output();
            verify(c, out.ending == Ending::Code(c.exit), &format!("{:?}", out.ending), &text)
                .map_err(|why| format!("{why}\n--- guest output ---\n{text}"))?;
            after(&con, &text).map_err(|why| format!("{why}\n--- guest output ---\n{text}"))
        }
        Via::Disk(prepare, after) => {
            let disk = tmp.join(format!("{}-disk.img", c.name));
            prepare(&disk)?;
            let out = boot(&c.args, c.machine, vec![disk.clone()], files)?;
            let text = out.output();
            verify(c, out.ending == Ending::Code(c.exit), &format!("{:?}", out.ending), &text)
                .map_err(|why| format!("{why}\n--- guest output ---\n{text}"))?;
            after(&disk).map_err(|why| format!("{why}\n--- guest output ---\n{text}"))
        }
        Via::Lib => {
            let mut o = RunOptions::new(c.app);
            o.image = Some(image.clone());
            o.machine = c.machine;
            o.cpus = c.cpus;
            o.mem = c.mem.to_string();
            o.iso = c.iso;
            o.env = c.env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            match c.initfs {
                Some(how) => o.initfs = Some(make_initfs(how, &files, tmp, c.name)?),
                None => o.files = files,
            }
            o.args = c.args.iter().map(|s| s.to_string()).collect();
            o.timeout = c.timeout;
            o.echo = false;
            o.tag = Some(c.name.to_string());
            let out = run::run(&o).map_err(|e| format!("{e:#}"))?;
            let text = out.output();
            let exit_ok = out.ending == Ending::Code(c.exit);
            verify(c, exit_ok, &format!("{:?}", out.ending), &text)
                .map_err(|why| format!("{why}\n--- guest output ---\n{text}--- QEMU stderr ---\n{}", out.stderr))
        }
        Via::Cli | Via::CliInterrupt(_) => {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_bareflow"));
            cmd.arg("run").arg(c.app);
            if !c.cli_args.iter().any(|a| a == "--image") {
                cmd.arg("--image").arg(image);
            }
            cmd.args(&c.cli_args);
            cmd.arg("--timeout").arg(c.timeout.as_secs_f64().to_string());
            for (host, guest) in &files {
                cmd.arg("--file").arg(format!("{}:{guest}", host.display()));
            }
            for (k, v) in &c.env {
                cmd.arg("--env").arg(format!("{k}={v}"));
            }
            if let Some(m) = c.machine {
                cmd.arg("--machine").arg(m.name());
            }
            cmd.arg("--").args(&c.args);
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            let child = cmd.spawn().map_err(|e| format!("cannot run the bareflow binary: {e}"))?;
            if let Via::CliInterrupt(after) = c.via {
                std::thread::sleep(after);
                let sent = Command::new("kill").arg("-INT").arg(child.id().to_string()).status();
                if !sent.is_ok_and(|s| s.success()) {
                    return Err("could not send SIGINT with kill(1)".into());
                }
            }
            let out = child.wait_with_output().map_err(|e| format!("waiting for the bareflow binary: {e}"))?;
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            let exit_ok = out.status.code() == Some(c.exit);
            verify(c, exit_ok, &format!("process exit {:?}", out.status.code()), &text)
                .map_err(|why| format!("{why}\n--- output ---\n{text}"))
        }
    }
}

fn main() {
    // `cargo test -- <filter>`: run only cases whose name contains a filter word.
    let filters: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let all = cases();
    let selected: Vec<Case> =
        all.into_iter().filter(|c| filters.is_empty() || filters.iter().any(|f| c.name.contains(f.as_str()))).collect();
    println!("qemu: {} cases", selected.len());
    if selected.is_empty() {
        println!("0 passed, 0 failed");
        return;
    }
    let fatal = |why: String| -> ! {
        println!("qemu: FAILED before any case: {why}");
        println!("0 passed, {} failed", selected.len());
        std::process::exit(1)
    };
    if let Err(e) = bareflow_cli::setup::ensure_qemu() {
        fatal(format!("{e:#}"));
    }
    let t = Instant::now();
    let hello = build::build_image("hello", Profile::Release).unwrap_or_else(|e| fatal(format!("{e:#}")));
    let ktest = build::build_image("ktest", Profile::Release).unwrap_or_else(|e| fatal(format!("{e:#}")));
    let llm = build::build_image("llm", Profile::Release).unwrap_or_else(|e| fatal(format!("{e:#}")));
    println!("qemu: images built in {:.1} s", t.elapsed().as_secs_f64());
    match bareflow_cli::accel::resolve(AccelChoice::Auto, &hello) {
        Ok(a) => *ACCEL.lock().unwrap() = Some(a),
        Err(e) => fatal(format!("{e:#}")),
    }
    let grub = if selected.iter().any(|c| c.needs_grub) { bareflow_cli::setup::ensure_grub().err() } else { None };
    let tmp = std::env::temp_dir().join(format!("bareflow-qemu-tests-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&tmp) {
        fatal(format!("cannot create {}: {e}", tmp.display()));
    }
    let httpd = build::build_image("httpd", Profile::Release).unwrap_or_else(|e| fatal(format!("{e:#}")));
    let build_payload = |name: &str| {
        let dir = bareflow_cli::root::repo_root().join("payloads").join(name);
        bareflow_cli::trust::payload::build_elf(&dir).map(|(_, so)| so).unwrap_or_else(|e| fatal(format!("{e:#}")))
    };
    let payload_elf = selected.iter().any(|c| c.payload.is_some_and(|v| !matches!(v, PayloadVariant::Handler))).then(|| build_payload("hello"));
    let handler_elf = selected.iter().any(|c| matches!(c.payload, Some(PayloadVariant::Handler))).then(|| build_payload("handler"));
    let images = Images { hello, ktest, llm, httpd, payload_elf, handler_elf };
    let queue = Mutex::new(selected.iter().collect::<Vec<_>>().into_iter());
    let results = Mutex::new((0usize, 0usize, 0usize)); // passed, failed, skipped
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let Some(c) = queue.lock().unwrap().next() else { return };
                    if let (true, Some(e)) = (c.needs_grub, &grub) {
                        println!("qemu: {} ... skipped: GRUB tools cannot be installed: {e:#}", c.name);
                        results.lock().unwrap().2 += 1;
                        continue;
                    }
                    let t = Instant::now();
                    let r = run_case(c, &images, &tmp);
                    let secs = t.elapsed().as_secs_f64();
                    let mut res = results.lock().unwrap();
                    match r {
                        Ok(()) => {
                            res.0 += 1;
                            println!("qemu: {} ... ok ({secs:.2} s)", c.name);
                        }
                        Err(why) => {
                            res.1 += 1;
                            println!("qemu: {} ... FAILED ({secs:.2} s): {why}", c.name);
                        }
                    }
                }
            });
        }
    });
    let _ = std::fs::remove_dir_all(&tmp);
    let (passed, failed, skipped) = *results.lock().unwrap();
    if skipped > 0 {
        println!("{passed} passed, {failed} failed, {skipped} skipped");
    } else {
        println!("{passed} passed, {failed} failed");
    }
    if failed > 0 {
        std::process::exit(1);
    }
}

//! `bareflow run`: build (or take) an image, pack its files, boot it, stream its
//! serial output with symbolized backtraces, and end with the app's exit code.

use crate::accel::{self, AccelChoice};
use crate::build::{self, Profile};
use crate::qemu::{self, Boot, Ending, Guest, Machine, Outcome};
use crate::symbolize::Symbolizer;
use anyhow::{Context, Result, bail};
use bareflow_abi::cmdline::Cmdline;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

/// Exit code of `run` when the guest was killed at the timeout (like `timeout(1)`).
pub const TIMEOUT_EXIT: i32 = 124;
/// Exit code of `run` after Ctrl-C (128 + SIGINT, as shells report it).
pub const INTERRUPTED_EXIT: i32 = 130;

/// Everything `run` can be told.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub app: String,
    /// `(host path, guest path)` pairs for the archive.
    pub files: Vec<(PathBuf, String)>,
    /// `--env KEY=VALUE` options, in order.
    pub env: Vec<(String, String)>,
    pub cpus: u32,
    pub mem: String,
    /// `None`: microvm, or q35 with `--iso`.
    pub machine: Option<Machine>,
    pub accel: AccelChoice,
    pub timeout: Duration,
    pub iso: bool,
    /// Boot this ELF instead of building `app`.
    pub image: Option<PathBuf>,
    pub profile: Profile,
    pub args: Vec<String>,
    /// Print serial lines to stdout as they arrive.
    pub echo: bool,
    /// Distinguishes the archive/ISO files of runs of one app in parallel.
    pub tag: Option<String>,
    /// `--initfs PATH`: boot this initfs as it is instead of packing `files`.
    pub initfs: Option<PathBuf>,
    /// `--net user [--port HOST:GUEST]...`: a NIC on QEMU's user network with
    /// forwards from 127.0.0.1:HOST to the guest's port GUEST.
    pub net: Option<Vec<(u16, u16)>>,
    /// `--disk PATH`: raw disk images, attached as virtio-blk devices.
    pub disks: Vec<PathBuf>,
    /// `--rng`, `--console-out PATH`: other virtio devices.
    pub extra: Vec<crate::qemu::Extra>,
    /// False with `--no-debug-exit`: no isa-debug-exit device, so the guest
    /// ends as under other VMMs (ACPI power-off) and its exit code is not seen.
    pub debug_exit: bool,
}

impl RunOptions {
    /// Defaults: microvm, 1 cpu, 128M, auto accel, 60 s, release build, echo on.
    pub fn new(app: &str) -> RunOptions {
        RunOptions {
            app: app.to_string(),
            files: Vec::new(),
            env: Vec::new(),
            cpus: 1,
            mem: "128M".into(),
            machine: None,
            accel: AccelChoice::Auto,
            timeout: Duration::from_secs(60),
            iso: false,
            image: None,
            profile: Profile::Release,
            args: Vec::new(),
            echo: true,
            tag: None,
            net: None,
            disks: Vec::new(),
            extra: Vec::new(),
            initfs: None,
            debug_exit: true,
        }
    }

    /// The kernel command line for this run.
    pub fn cmdline(&self) -> Cmdline {
        let mut c = Cmdline::default().with_option("bareflow.app", self.app.clone());
        c.options.extend(self.env.iter().cloned());
        c.args = self.args.clone();
        c
    }

    /// Parses `run`'s command line (after `run`).
    pub fn parse(args: &[String]) -> Result<RunOptions> {
        let mut it = args.iter();
        let mut app = None;
        let mut o = RunOptions::new("");
        fn value<'a>(it: &mut std::slice::Iter<'a, String>, flag: &str) -> Result<&'a str> {
            it.next().map(String::as_str).with_context(|| format!("`{flag}` needs a value"))
        }
        while let Some(a) = it.next() {
            match a.as_str() {
                "--" => {
                    o.args = it.by_ref().cloned().collect();
                }
                "--file" => {
                    let v = value(&mut it, "--file")?;
                    o.files.push(parse_file_spec(v)?);
                }
                "--env" => {
                    let v = value(&mut it, "--env")?;
                    let (k, val) = v.split_once('=').with_context(|| format!("`--env {v}`: expected KEY=VALUE"))?;
                    if k.is_empty() {
                        bail!("`--env {v}`: the key is empty");
                    }
                    o.env.push((k.to_string(), val.to_string()));
                }
                "--cpus" => {
                    let v = value(&mut it, "--cpus")?;
                    o.cpus = v.parse().ok().filter(|&n| (1..=255).contains(&n)).with_context(|| {
                        format!("`--cpus {v}`: expected a number of CPUs from 1 to 255")
                    })?;
                }
                "--mem" => {
                    let v = value(&mut it, "--mem")?;
                    let digits = v.trim_end_matches(['M', 'G', 'm', 'g']);
                    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                        bail!("`--mem {v}`: expected a size like 128M or 1G");
                    }
                    o.mem = v.to_string();
                }
                "--machine" => o.machine = Some(Machine::parse(value(&mut it, "--machine")?)?),
                "--accel" => o.accel = AccelChoice::parse(value(&mut it, "--accel")?)?,
                "--net" => {
                    let v = value(&mut it, "--net")?;
                    if v != "user" {
                        bail!("`--net {v}`: only `--net user` (QEMU user networking) is supported");
                    }
                    o.net.get_or_insert_with(Vec::new);
                }
                "--disk" => {
                    let v = value(&mut it, "--disk")?;
                    let p = PathBuf::from(v);
                    if !p.is_file() {
                        bail!("`--disk {v}`: no such file (make one, e.g. `truncate -s 64M {v}` or `mkfs.fat -C {v} 65536`)");
                    }
                    o.disks.push(p);
                }
                "--rng" => o.extra.push(crate::qemu::Extra::Rng),
                "--console-out" => o.extra.push(crate::qemu::Extra::Console(PathBuf::from(value(&mut it, "--console-out")?))),
                "--port" => {
                    let v = value(&mut it, "--port")?;
                    let fwd = v
                        .split_once(':')
                        .and_then(|(h, g)| Some((h.parse::<u16>().ok()?, g.parse::<u16>().ok()?)))
                        .with_context(|| format!("`--port {v}`: expected HOST:GUEST port numbers, e.g. 8080:80"))?;
                    o.net.get_or_insert_with(Vec::new).push(fwd);
                }
                "--timeout" => {
                    let v = value(&mut it, "--timeout")?;
                    let s: f64 = v
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s < 1e7)
                        .with_context(|| format!("`--timeout {v}`: expected a positive number of seconds"))?;
                    o.timeout = Duration::from_secs_f64(s);
                }
                "--initfs" => o.initfs = Some(PathBuf::from(value(&mut it, "--initfs")?)),
                "--iso" => o.iso = true,
                "--no-debug-exit" => o.debug_exit = false,
                "--debug" => o.profile = Profile::Debug,
                "--image" => o.image = Some(PathBuf::from(value(&mut it, "--image")?)),
                s if s.starts_with('-') => bail!("unknown option `{s}` for run (see `cargo bareflow help`)"),
                s if app.is_none() => app = Some(s.to_string()),
                s => bail!("unexpected argument `{s}`: app arguments go after `--`"),
            }
        }
        o.app = app.context("run needs an app name: `cargo bareflow run <app> [options] [-- args]`")?;
        Ok(o)
    }
}

/// `HOST[:GUEST]`; GUEST defaults to HOST's file name.
pub fn parse_file_spec(spec: &str) -> Result<(PathBuf, String)> {
    let (host, guest) = match spec.rsplit_once(':') {
        Some((h, g)) if !h.is_empty() && !g.is_empty() => (PathBuf::from(h), g.to_string()),
        _ => {
            let host = PathBuf::from(spec);
            let name = host
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("`--file {spec}`: cannot take a guest name from it; write HOST:GUEST"))?
                .to_string();
            (host, name)
        }
    };
    bareflow_abi::initfs::check_path(&guest).map_err(|e| anyhow::anyhow!("`--file {spec}`: guest path `{guest}`: {e}"))?;
    Ok((host, guest))
}

/// Writes the initfs of `files`, signed with the `default` key, to `path`.
pub fn pack_files(files: &[(PathBuf, String)], path: &std::path::Path) -> Result<()> {
    crate::trust::pack_files_default(files, path).context("cannot pack --file")
}

/// Builds if needed, packs, boots; returns how the guest ended. Does not exit the process.
pub fn run(o: &RunOptions) -> Result<Outcome> {
    let machine = match (o.machine, o.iso) {
        (Some(Machine::Microvm), true) => bail!("--iso boots from a CD-ROM, which microvm lacks: use --machine q35 or pc"),
        (Some(m), _) => m,
        (None, true) => Machine::Q35,
        (None, false) => Machine::Microvm,
    };
    let elf = match &o.image {
        Some(p) if p.is_file() => p.clone(),
        Some(p) => bail!(
            "image {} does not exist or is not a file: give the path of a built ELF (`cargo bareflow build {}` prints it)",
            p.display(),
            o.app
        ),
        None => build::build_image(&o.app, o.profile)?,
    };
    let symbols = match Symbolizer::from_file(&elf) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("bareflow: warning: backtraces will not be symbolized: {e:#}");
            Symbolizer::default()
        }
    };
    let work = crate::root::ensure_work_dir()?;
    let stem = match &o.tag {
        Some(t) => format!("{}-{t}", o.app),
        None => o.app.clone(),
    };
    // No files and no initfs: no module at all (the kernel then has an empty
    // file system and skips the signature check, which is most of a small
    // app's boot under TCG). A GRUB ISO always carries one.
    let archive = match &o.initfs {
        Some(p) if o.files.is_empty() => Some(p.clone()),
        Some(_) => bail!("--initfs boots a ready initfs: add files to it with `cargo bareflow pack`, not with --file"),
        None if o.files.is_empty() && !o.iso => None,
        None => {
            let archive = work.join(format!("{stem}-files.img"));
            pack_files(&o.files, &archive)?;
            Some(archive)
        }
    };
    let cmdline = o.cmdline().encode();
    let accel = accel::resolve(o.accel, &elf)?;
    let boot = if o.iso {
        let iso = work.join(format!("{stem}.iso"));
        let archive = archive.context("an ISO carries an initfs")?;
        crate::iso::build_iso(&elf, &archive, &cmdline, &iso)?;
        Boot::Cdrom { iso }
    } else {
        Boot::Kernel { elf, initrd: archive, cmdline }
    };
    let guest = Guest { machine, accel, cpus: o.cpus, mem: o.mem.clone(), boot, timeout: o.timeout, net: o.net.clone(), disks: o.disks.clone(), extra: o.extra.clone(), debug_exit: o.debug_exit };
    let echo = o.echo;
    qemu::boot(&guest, &mut |line| {
        let line = symbols.annotate(line).unwrap_or_else(|| line.to_string());
        if echo {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
        line
    })
}

/// `bareflow run ...`: exits with the app's code, 124 at the timeout.
pub fn cli_main(args: &[String]) -> Result<i32> {
    let o = RunOptions::parse(args)?;
    let out = run(&o)?;
    match out.ending {
        Ending::Code(c) => Ok(c),
        Ending::TimedOut => {
            eprintln!(
                "bareflow: timeout: the guest ran longer than {} s; killed the guest (QEMU pid {}). Raise it with --timeout S",
                o.timeout.as_secs_f64(),
                out.pid
            );
            Ok(TIMEOUT_EXIT)
        }
        Ending::Interrupted => {
            eprintln!("bareflow: interrupted: stopped the guest (QEMU pid {})", out.pid);
            Ok(INTERRUPTED_EXIT)
        }
        // Without isa-debug-exit the kernel prints its code before the ACPI power-off.
        Ending::NoCode if !o.debug_exit && let Some(c) = out.lines.iter().find_map(|l| bareflow_abi::exit::parse_powered_off_line(l)) => Ok(c),
        Ending::NoCode => bail!(
            "the guest stopped without reporting an exit code (QEMU exited with status 0: a reset, triple fault or power-off); its output is above{}",
            stderr_note(&out)
        ),
        Ending::QemuFailed(c) => bail!("QEMU failed with status {c}: {}", out.stderr.trim()),
        Ending::Signaled => bail!("QEMU was killed by a signal{}", stderr_note(&out)),
    }
}


fn stderr_note(out: &Outcome) -> String {
    let s = out.stderr.trim();
    if s.is_empty() { String::new() } else { format!("; QEMU said: {s}") }
}

#[cfg(test)]
mod tests {
    use super::*;


    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_options_and_app_args() {
        let o = RunOptions::parse(&args(&[
            "ktest", "--file", "/tmp/x.txt:data.txt", "--file", "/a/b.bin", "--cpus", "2", "--mem", "256M",
            "--machine", "q35", "--accel", "tcg", "--timeout", "3", "--env", "GREET=a b", "--", "cat", "--cpus",
        ]))
        .unwrap();
        assert_eq!(o.app, "ktest");
        assert_eq!(o.files, vec![(PathBuf::from("/tmp/x.txt"), "data.txt".into()), (PathBuf::from("/a/b.bin"), "b.bin".into())]);
        assert_eq!((o.cpus, o.mem.as_str(), o.machine, o.accel), (2, "256M", Some(Machine::Q35), AccelChoice::Tcg));
        assert_eq!(o.timeout, Duration::from_secs(3));
        assert_eq!(o.args, args(&["cat", "--cpus"]));
        let c = o.cmdline();
        assert_eq!(c.get("bareflow.app"), Some("ktest"));
        assert_eq!(c.get("GREET"), Some("a b"));
        assert_eq!(Cmdline::parse(&c.encode()), c);
    }

    #[test]
    fn rejects_bad_options_with_reasons() {
        for (bad, needle) in [
            (&["hello", "--cpus", "0"][..], "1 to 255"),
            (&["hello", "--machine", "virt"], "microvm, q35 or pc"),
            (&["hello", "--accel", "hvf"], "auto, kvm or tcg"),
            (&["hello", "--timeout", "-1"], "positive"),
            (&["hello", "--mem", "lots"], "128M"),
            (&["hello", "--env", "NOEQUALS"], "KEY=VALUE"),
            (&["hello", "--bogus"], "unknown option"),
            (&["hello", "extra"], "after `--`"),
            (&["--iso"], "needs an app name"),
            (&["hello", "--file", "x:/abs"], "relative"),
        ] {
            let e = RunOptions::parse(&args(bad)).unwrap_err();
            assert!(format!("{e:#}").contains(needle), "{bad:?}: {e:#}");
        }
    }

    #[test]
    fn packs_files_that_the_kernel_format_reads_back() {
        let dir = std::env::temp_dir().join(format!("bareflow-pack-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let host = dir.join("x.txt");
        std::fs::write(&host, b"content\n").unwrap();
        let img = dir.join("files.img");
        pack_files(&[(host.clone(), "data.txt".into())], &img).unwrap();
        let bytes = std::fs::read(&img).unwrap();
        let trusted = crate::trust::keys::KeyStore::from_env().unwrap().trusted().unwrap();
        let fs = bareflow_abi::initfs::Initfs::open(&bytes, &trusted).unwrap();
        assert_eq!(fs.read("data.txt"), Ok(&b"content\n"[..]));
        let e = pack_files(&[(dir.join("missing"), "m".into())], &img).unwrap_err();
        assert!(format!("{e:#}").contains("cannot pack --file"), "{e:#}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_image_is_a_clear_error() {
        let mut o = RunOptions::new("hello");
        o.image = Some(PathBuf::from("/nonexistent"));
        let e = run(&o).unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent does not exist"), "{e:#}");
    }
}

//! `cargo bareflow baseline linux`: the Linux microVM that the benchmarks
//! compare BareFlow against, built from Debian packages only and cached under
//! `target/bareflow/baseline/`.
//!
//! - The kernel: `apt-get download` of the package `linux-image-amd64` depends
//!   on (e.g. `linux-image-6.1.0-48-amd64`), unpacked with `dpkg-deb -x` (no
//!   system install). Its `vmlinuz` boots as is under QEMU's `-kernel`.
//! - The virtio drivers are modules in Debian's config (checked against the
//!   package's `boot/config-*`, not assumed): the ones needed for virtio-mmio
//!   (microvm), virtio-pci (q35) and virtio-net, with the modules they depend on
//!   (read from each `.ko`'s `.modinfo`), go into the initramfs in load order.
//! - The initramfs ([`initramfs`]): `busybox-static`, the modules, the hosted
//!   builds of our apps linked statically (musl), and an `/init` that runs one
//!   app with the arguments after `--` on the kernel command line and powers off.
//!
//! The guest runs under the same QEMU command line builder ([`crate::qemu::Guest`])
//! as the image: same machine, accelerator, CPU count and NIC.

pub mod initramfs;

use crate::qemu::{Accel, Boot, Guest, Machine};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The Debian metapackage whose dependency is the kernel package.
pub const KERNEL_META: &str = "linux-image-amd64";
/// The static busybox package.
pub const BUSYBOX_PACKAGE: &str = "busybox-static";
/// The hosted apps the initramfs carries.
pub const APPS: &[&str] = &["hello", "httpd", "llm"];
/// The Rust target of the hosted builds (static by default).
pub const MUSL: &str = "x86_64-unknown-linux-musl";
/// The file both guests' httpd serve in the benchmarks.
pub const INDEX_HTML: &[u8] = b"<!doctype html><title>BareFlow</title><p>Hello from the benchmark.</p>\n";

/// Drivers the guest needs: (config symbol, module file stem). A symbol that is
/// `=y` needs no module; `=m` needs the module and its dependencies.
pub const DRIVERS: &[(&str, &str)] = &[
    ("CONFIG_VIRTIO_MMIO", "virtio_mmio"),
    ("CONFIG_VIRTIO_PCI", "virtio_pci"),
    ("CONFIG_VIRTIO_NET", "virtio_net"),
];

/// A built baseline.
#[derive(Debug, Clone)]
pub struct Linux {
    /// The Debian kernel package, e.g. `linux-image-6.1.0-48-amd64`.
    pub package: String,
    pub vmlinuz: PathBuf,
    pub initramfs: PathBuf,
    /// Modules loaded by `/init`, in order.
    pub modules: Vec<String>,
}

impl Linux {
    /// vmlinuz + initramfs, in bytes.
    pub fn size(&self) -> Result<u64> {
        let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).with_context(|| format!("cannot stat {}", p.display()));
        Ok(len(&self.vmlinuz)? + len(&self.initramfs)?)
    }

    /// A guest running `app args` in this baseline.
    pub fn guest(&self, spec: &GuestSpec, app: &str, args: &[String]) -> Result<Guest> {
        let cmdline = kernel_cmdline(spec.machine, spec.tsc_khz, spec.net.is_some(), app, args)?;
        Ok(Guest {
            machine: spec.machine,
            accel: spec.accel,
            cpus: spec.cpus,
            mem: spec.mem.clone(),
            boot: Boot::Kernel { elf: self.vmlinuz.clone(), initrd: Some(self.initramfs.clone()), cmdline },
            timeout: spec.timeout,
            net: spec.net.clone(),
            // The baselines boot without disks (a field added for virtio-blk).
            disks: Vec::new(),
            extra: Vec::new(),
            debug_exit: true,
        })
    }
}

/// The QEMU side of a guest, shared by BareFlow and Linux runs of one benchmark.
#[derive(Debug, Clone)]
pub struct GuestSpec {
    pub machine: Machine,
    pub accel: Accel,
    pub cpus: u32,
    pub mem: String,
    pub timeout: Duration,
    pub net: Option<Vec<(u16, u16)>>,
    /// The host's TSC in kHz (Linux on microvm hangs calibrating it under TCG without it).
    pub tsc_khz: Option<u64>,
}

/// The Linux kernel command line: serial console, quiet, reboot (ends QEMU,
/// which runs with `-no-reboot`) on panic, and the app after `--` (the kernel
/// hands those words to `/init` as its arguments).
pub fn kernel_cmdline(machine: Machine, tsc_khz: Option<u64>, net: bool, app: &str, args: &[String]) -> Result<String> {
    let mut s = String::from("console=ttyS0 quiet panic=-1 reboot=t");
    if let (Machine::Microvm, Some(khz)) = (machine, tsc_khz) {
        s.push_str(&format!(" tsc_early_khz={khz}"));
    }
    if net {
        s.push_str(" bf_net=1");
    }
    s.push_str(" --");
    for w in std::iter::once(app).chain(args.iter().map(String::as_str)) {
        if w.is_empty() || w.contains(|c: char| c.is_whitespace() || c == '"') {
            bail!("`{w}`: the Linux baseline passes app arguments on the kernel command line, which cannot carry empty words, spaces or quotes");
        }
        s.push(' ');
        s.push_str(w);
    }
    Ok(s)
}

/// The MHz figure of a `tsc: Detected 2596.118 MHz processor`, `tsc: Refined
/// TSC clocksource calibration: 2596.1 MHz` (dmesg) or `cpu MHz : 2596.118`
/// (/proc/cpuinfo) line.
pub fn parse_tsc_mhz(line: &str) -> Option<f64> {
    let l = line.trim();
    let num = if let Some(i) = l.find("tsc: Refined TSC clocksource calibration:") {
        l[i..].split(':').nth(2)?.trim().strip_suffix("MHz")?.trim()
    } else if let Some(i) = l.find("tsc: Detected ") {
        l[i + "tsc: Detected ".len()..].split_whitespace().next()?
    } else if l.starts_with("cpu MHz") {
        l.split(':').nth(1)?.trim()
    } else {
        return None;
    };
    num.parse().ok().filter(|m: &f64| m.is_finite() && *m > 1.0)
}

/// The host TSC frequency in kHz: the kernel log's refined calibration, else
/// its detected frequency, else `/proc/cpuinfo` (TCG passes the host TSC through).
pub fn host_tsc_khz() -> Option<u64> {
    let dmesg = Command::new("dmesg").stderr(Stdio::null()).output().ok();
    let log = dmesg.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let refined = log.lines().filter(|l| l.contains("Refined TSC")).find_map(parse_tsc_mhz);
    let detected = || log.lines().filter(|l| l.contains("tsc: Detected")).find_map(parse_tsc_mhz);
    let cpuinfo = || std::fs::read_to_string("/proc/cpuinfo").ok()?.lines().find_map(parse_tsc_mhz);
    refined.or_else(detected).or_else(cpuinfo).map(|mhz| (mhz * 1000.0).round() as u64)
}

/// The kernel package named in `apt-cache depends linux-image-amd64`'s output.
pub fn parse_kernel_dependency(apt_cache_depends: &str) -> Option<String> {
    apt_cache_depends.lines().find_map(|l| {
        let p = l.trim().strip_prefix("Depends:")?.trim();
        (p.starts_with("linux-image-") && p != KERNEL_META).then(|| p.trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

/// The value of `symbol` (`y`, `m`) in a kernel `.config`; `None` when unset.
pub fn config_value<'a>(config: &'a str, symbol: &str) -> Option<&'a str> {
    config.lines().find_map(|l| l.strip_prefix(symbol)?.strip_prefix('=').map(str::trim))
}

/// The `depends=` list of a module's `.modinfo` section (NUL-separated `key=value`).
pub fn modinfo_depends(modinfo: &[u8]) -> Vec<String> {
    modinfo
        .split(|&b| b == 0)
        .filter_map(|kv| kv.strip_prefix(b"depends="))
        .flat_map(|v| String::from_utf8_lossy(v).split(',').filter(|s| !s.is_empty()).map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// The modules `roots` need, dependencies first (depth-first post-order, each
/// once). `deps` gives a module's direct dependencies; a cycle is an error.
pub fn load_order(roots: &[String], deps: &mut dyn FnMut(&str) -> Result<Vec<String>>) -> Result<Vec<String>> {
    fn visit(
        m: &str,
        deps: &mut dyn FnMut(&str) -> Result<Vec<String>>,
        path: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<()> {
        if out.iter().any(|x| x == m) {
            return Ok(());
        }
        if path.iter().any(|x| x == m) {
            bail!("module dependency cycle: {} -> {m}", path.join(" -> "));
        }
        path.push(m.to_string());
        for d in deps(m)? {
            visit(&d, deps, path, out)?;
        }
        path.pop();
        out.push(m.to_string());
        Ok(())
    }
    let mut out = Vec::new();
    for r in roots {
        visit(r, deps, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}

/// `target/bareflow/baseline`.
pub fn cache_dir() -> PathBuf {
    crate::root::work_dir().join("baseline")
}

fn have(program: &str, arg: &str) -> bool {
    Command::new(program).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().map(|s| s.success()).unwrap_or(false)
}

fn check_tools() -> Result<()> {
    for (prog, arg, pkg) in [("apt-get", "--version", "apt"), ("apt-cache", "--version", "apt"), ("dpkg-deb", "--version", "dpkg")] {
        if !have(prog, arg) {
            bail!("`{prog}` is missing: the Linux baseline is built from Debian packages; run this on Debian/Ubuntu with `{pkg}` installed (`apt-get install {pkg}`)");
        }
    }
    if !have("strip", "--version") {
        bail!("`strip` is missing: install binutils (`apt-get install binutils`)");
    }
    Ok(())
}

fn run_checked(cmd: &mut Command, what: &str, fix: &str) -> Result<String> {
    let out = cmd.output().with_context(|| format!("could not run {what}"))?;
    if !out.status.success() {
        bail!("{what} failed ({}): {}\n{fix}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Downloads `package`'s .deb into `debs` unless one is there; returns its path.
fn download(package: &str, debs: &Path) -> Result<PathBuf> {
    let find = || -> Result<Option<PathBuf>> {
        for e in std::fs::read_dir(debs).with_context(|| format!("cannot list {}", debs.display()))? {
            let p = e?.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with(&format!("{package}_")) && name.ends_with(".deb") {
                return Ok(Some(p));
            }
        }
        Ok(None)
    };
    if let Some(p) = find()? {
        return Ok(p);
    }
    eprintln!("baseline: downloading {package} with `apt-get download` (the kernel package is about 70 MB)...");
    run_checked(
        Command::new("apt-get").arg("download").arg(package).current_dir(debs).stdin(Stdio::null()),
        &format!("`apt-get download {package}`"),
        "If apt does not know the package, run `apt-get update` (as root) and retry.",
    )?;
    find()?.with_context(|| format!("`apt-get download {package}` succeeded but left no {package}_*.deb in {}", debs.display()))
}

/// Unpacks `deb` into `dir` (once: an existing `dir` is reused).
fn extract(deb: &Path, dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    eprintln!("baseline: unpacking {} with `dpkg-deb -x`...", deb.display());
    let tmp = dir.with_extension("partial");
    let _ = std::fs::remove_dir_all(&tmp);
    run_checked(
        Command::new("dpkg-deb").arg("-x").arg(deb).arg(&tmp),
        &format!("`dpkg-deb -x {}`", deb.display()),
        "The .deb may be truncated: delete it and retry.",
    )?;
    std::fs::rename(&tmp, dir).with_context(|| format!("cannot move {} to {}", tmp.display(), dir.display()))
}

/// Every `.ko` under `root`, by module name (file stem).
fn index_modules(root: &Path) -> Result<std::collections::HashMap<String, PathBuf>> {
    let mut out = std::collections::HashMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Some(stem) = p.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".ko")) {
                // modinfo names use `_`; file names sometimes `-`.
                out.insert(stem.replace('-', "_"), p);
            }
        }
    }
    Ok(out)
}

fn ko_depends(path: &Path) -> Result<Vec<String>> {
    use object::{Object, ObjectSection};
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file = object::File::parse(&*bytes).with_context(|| format!("{} is not an ELF module", path.display()))?;
    let section = file.section_by_name(".modinfo").with_context(|| format!("{} has no .modinfo", path.display()))?;
    Ok(modinfo_depends(section.data().with_context(|| format!("cannot read .modinfo of {}", path.display()))?))
}

fn find_one(dir: &Path, prefix: &str) -> Result<PathBuf> {
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let p = e?.path();
        if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix)) {
            return Ok(p);
        }
    }
    bail!("no {prefix}* in {}: is the kernel package complete?", dir.display())
}

/// The kernel's modules needed for [`DRIVERS`], in load order, with their paths.
fn needed_modules(kernel: &Path) -> Result<Vec<(String, PathBuf)>> {
    let boot = kernel.join("boot");
    let config_path = find_one(&boot, "config-")?;
    let config = std::fs::read_to_string(&config_path).with_context(|| format!("cannot read {}", config_path.display()))?;
    let mut roots = Vec::new();
    for (symbol, module) in DRIVERS {
        match config_value(&config, symbol) {
            Some("y") => {}
            Some("m") => roots.push(module.to_string()),
            other => bail!("{symbol} is {other:?} in {}: this kernel cannot drive QEMU's virtio devices", config_path.display()),
        }
    }
    let index = index_modules(&kernel.join("lib").join("modules"))?;
    let order = load_order(&roots, &mut |m| {
        let p = index.get(m).with_context(|| format!("module {m} not found in the kernel package"))?;
        ko_depends(p)
    })?;
    order
        .into_iter()
        .map(|m| {
            let p = index.get(&m).cloned().with_context(|| format!("module {m} not found in the kernel package"))?;
            Ok((m, p))
        })
        .collect()
}

/// Builds the hosted apps statically (musl); returns (name, path of the binary).
fn build_hosted_apps(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let root = crate::root::repo_root();
    let has_musl = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(&root)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == MUSL))
        .unwrap_or(false);
    if !has_musl {
        eprintln!("baseline: adding the {MUSL} target (`rustup target add {MUSL}`)...");
        run_checked(
            Command::new("rustup").args(["target", "add", MUSL]).current_dir(&root),
            &format!("`rustup target add {MUSL}`"),
            "The apps are linked statically against musl; without network access to rustup, install the target by hand.",
        )?;
    }
    let target_dir = dir.join("cargo");
    eprintln!("baseline: building the hosted apps ({}) for {MUSL}, statically linked...", APPS.join(", "));
    let mut cmd = Command::new(crate::root::cargo());
    cmd.args(["build", "--release", "--target", MUSL]);
    for a in APPS {
        cmd.args(["-p", a]);
    }
    let status = cmd
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .current_dir(&root)
        .status()
        .context("could not start cargo")?;
    if !status.success() {
        bail!("building the hosted apps for {MUSL} failed (cargo's messages are above)");
    }
    Ok(APPS.iter().map(|a| (a.to_string(), target_dir.join(MUSL).join("release").join(a))).collect())
}

/// A stripped copy of `elf` (symbols are not needed in the guest).
pub fn stripped(elf: &Path) -> Result<Vec<u8>> {
    let tmp = std::env::temp_dir().join(format!("bareflow-strip-{}-{}", std::process::id(), elf.file_name().and_then(|n| n.to_str()).unwrap_or("x")));
    let ok = Command::new("strip").arg("-o").arg(&tmp).arg(elf).status().map(|s| s.success()).unwrap_or(false);
    if !ok {
        bail!("`strip -o {} {}` failed: install binutils", tmp.display(), elf.display());
    }
    let bytes = std::fs::read(&tmp).with_context(|| format!("cannot read {}", tmp.display()));
    let _ = std::fs::remove_file(&tmp);
    bytes
}

/// Builds the baseline (downloads and unpacks once; rebuilds the apps and the
/// initramfs every time, which cargo keeps incremental) and returns it.
pub fn ensure() -> Result<Linux> {
    check_tools()?;
    let dir = cache_dir();
    let debs = dir.join("debs");
    std::fs::create_dir_all(&debs).with_context(|| format!("cannot create {}", debs.display()))?;
    let depends = run_checked(
        Command::new("apt-cache").args(["depends", KERNEL_META]),
        &format!("`apt-cache depends {KERNEL_META}`"),
        "Run `apt-get update` (as root) and retry.",
    )?;
    let package = parse_kernel_dependency(&depends).with_context(|| {
        format!("`apt-cache depends {KERNEL_META}` names no linux-image-* package: run `apt-get update` and retry")
    })?;
    let kernel_deb = download(&package, &debs)?;
    let busybox_deb = download(BUSYBOX_PACKAGE, &debs)?;
    let kernel = dir.join(&package);
    extract(&kernel_deb, &kernel)?;
    let busybox_dir = dir.join(BUSYBOX_PACKAGE);
    extract(&busybox_deb, &busybox_dir)?;
    let vmlinuz = find_one(&kernel.join("boot"), "vmlinuz-")?;
    let modules = needed_modules(&kernel)?;
    let apps = build_hosted_apps(&dir)?;
    eprintln!("baseline: writing the initramfs...");
    let busybox_path = busybox_dir.join("bin").join("busybox");
    let contents = initramfs::Contents {
        busybox: std::fs::read(&busybox_path).with_context(|| format!("cannot read {}", busybox_path.display()))?,
        modules: modules
            .iter()
            .map(|(m, p)| Ok((m.clone(), std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?)))
            .collect::<Result<_>>()?,
        apps: apps.iter().map(|(a, p)| Ok((a.clone(), stripped(p)?))).collect::<Result<_>>()?,
        www: vec![("index.html".into(), INDEX_HTML.to_vec())],
    };
    let bytes = initramfs::build(&contents)?;
    let initramfs = dir.join("initramfs.cpio.gz");
    let tmp = dir.join("initramfs.cpio.gz.partial");
    std::fs::write(&tmp, &bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &initramfs)?;
    Ok(Linux { package, vmlinuz, initramfs, modules: modules.into_iter().map(|(m, _)| m).collect() })
}

const USAGE: &str = "usage: cargo bareflow baseline linux [--run APP [--machine microvm|q35] [--mem M] [--net] [-- APP ARGS]]";

/// `cargo bareflow baseline linux [--run APP ...]`.
pub fn cli_main(args: &[String]) -> Result<i32> {
    let Some((what, rest)) = args.split_first() else { bail!("{USAGE}") };
    if what != "linux" {
        bail!("unknown baseline `{what}`: the only one is `linux`\n{USAGE}");
    }
    let mut run = None;
    let mut machine = Machine::Microvm;
    let mut mem = "256M".to_string();
    let mut net = None;
    let mut app_args = Vec::new();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--run" => run = Some(it.next().context("`--run` needs an app name")?.clone()),
            "--machine" => machine = Machine::parse(it.next().context("`--machine` needs a value")?)?,
            "--mem" => mem = it.next().context("`--mem` needs a value, e.g. 128M")?.clone(),
            "--net" => net = Some(vec![(8080, 80)]),
            "--" => app_args = it.by_ref().cloned().collect(),
            s => bail!("unknown option `{s}`\n{USAGE}"),
        }
    }
    let linux = ensure()?;
    let size = linux.size()?;
    println!("Linux baseline ({}):", linux.package);
    println!("  kernel    {}", linux.vmlinuz.display());
    println!("  initramfs {}", linux.initramfs.display());
    println!("  modules   {}", linux.modules.join(" "));
    println!("  size      {:.1} MiB (vmlinuz + initramfs)", size as f64 / (1024.0 * 1024.0));
    let Some(app) = run else { return Ok(0) };
    let spec = GuestSpec {
        machine,
        accel: Accel::Tcg,
        cpus: 1,
        mem,
        timeout: Duration::from_secs(120),
        net,
        tsc_khz: host_tsc_khz(),
    };
    let guest = linux.guest(&spec, &app, &app_args)?;
    let out = crate::qemu::boot(&guest, &mut |l| {
        println!("{l}");
        l.to_string()
    })?;
    let code = out.lines.iter().find_map(|l| initramfs::parse_exit(l));
    eprintln!("baseline: QEMU ended {:?} after {:.2} s; app exit code {code:?}", out.ending, out.elapsed.as_secs_f64());
    Ok(code.unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn cmdline_puts_the_app_after_the_separator() {
        let c = kernel_cmdline(Machine::Microvm, Some(2596118), true, "httpd", &words(&["--port", "80"])).unwrap();
        assert_eq!(c, "console=ttyS0 quiet panic=-1 reboot=t tsc_early_khz=2596118 bf_net=1 -- httpd --port 80");
        let c = kernel_cmdline(Machine::Q35, Some(2596118), false, "hello", &[]).unwrap();
        assert_eq!(c, "console=ttyS0 quiet panic=-1 reboot=t -- hello");
        let e = kernel_cmdline(Machine::Q35, None, false, "hello", &words(&["a b"])).unwrap_err();
        assert!(format!("{e}").contains("spaces"), "{e}");
        assert!(kernel_cmdline(Machine::Q35, None, false, "hello", &words(&[""])).is_err());
    }

    #[test]
    fn tsc_lines_from_dmesg_and_cpuinfo() {
        assert_eq!(parse_tsc_mhz("[    0.000049] tsc: Detected 2596.118 MHz processor"), Some(2596.118));
        assert_eq!(parse_tsc_mhz("[    1.2] tsc: Refined TSC clocksource calibration: 2445.432 MHz"), Some(2445.432));
        assert_eq!(parse_tsc_mhz("cpu MHz\t\t: 2596.118"), Some(2596.118));
        assert_eq!(parse_tsc_mhz("[    0.1] TSC deadline timer available"), None);
        assert_eq!(parse_tsc_mhz("cpu MHz : fast"), None);
    }

    #[test]
    fn kernel_dependency_of_the_metapackage() {
        let out = "linux-image-amd64\n  Depends: linux-image-6.1.0-48-amd64\n";
        assert_eq!(parse_kernel_dependency(out).as_deref(), Some("linux-image-6.1.0-48-amd64"));
        assert_eq!(parse_kernel_dependency("linux-image-amd64\n  Recommends: firmware\n"), None);
    }

    #[test]
    fn config_values_and_modinfo() {
        let cfg = "CONFIG_VIRTIO=m\nCONFIG_VIRTIO_MMIO=m\n# CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES is not set\nCONFIG_INET=y\n";
        assert_eq!(config_value(cfg, "CONFIG_VIRTIO_MMIO"), Some("m"));
        assert_eq!(config_value(cfg, "CONFIG_VIRTIO"), Some("m"));
        assert_eq!(config_value(cfg, "CONFIG_INET"), Some("y"));
        assert_eq!(config_value(cfg, "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES"), None);
        let info = b"license=GPL\0depends=virtio,virtio_ring\0intree=Y\0";
        assert_eq!(modinfo_depends(info), words(&["virtio", "virtio_ring"]));
        assert_eq!(modinfo_depends(b"depends=\0name=x\0"), Vec::<String>::new());
    }

    #[test]
    fn load_order_puts_dependencies_first_once() {
        let graph = |m: &str| -> Result<Vec<String>> {
            Ok(match m {
                "virtio_net" => words(&["net_failover", "virtio", "virtio_ring"]),
                "net_failover" => words(&["failover"]),
                "virtio_mmio" => words(&["virtio", "virtio_ring"]),
                _ => vec![],
            })
        };
        let order = load_order(&words(&["virtio_mmio", "virtio_net"]), &mut |m| graph(m)).unwrap();
        assert_eq!(order, words(&["virtio", "virtio_ring", "virtio_mmio", "failover", "net_failover", "virtio_net"]));
        let e = load_order(&words(&["a"]), &mut |m| Ok(if m == "a" { words(&["b"]) } else { words(&["a"]) })).unwrap_err();
        assert!(format!("{e}").contains("cycle"), "{e}");
    }
}

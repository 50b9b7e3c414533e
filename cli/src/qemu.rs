//! Booting a guest: one QEMU process, its serial console streamed line by line,
//! its exit status decoded, a deadline enforced by killing it by PID, and the
//! guarantee that the process is stopped when we stop (Ctrl-C or drop).
//!
//! Checked on QEMU 7.2: `-M microvm -nodefaults -serial stdio` keeps microvm's
//! ISA serial port (`isa-serial=on` is the machine's default) and accepts
//! `-device isa-debug-exit`, so one set of flags serves microvm, q35 and pc.
//! QEMU's own start-up failures also exit with status 1, which reads like a
//! guest's exit 0; its stderr tells them apart (see `qemu_reported_error`).

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// QEMU machine types the runner knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    Microvm,
    Q35,
    Pc,
}

impl Machine {
    pub fn name(self) -> &'static str {
        match self {
            Machine::Microvm => "microvm",
            Machine::Q35 => "q35",
            Machine::Pc => "pc",
        }
    }

    pub fn parse(s: &str) -> Result<Machine> {
        Ok(match s {
            "microvm" => Machine::Microvm,
            "q35" => Machine::Q35,
            "pc" => Machine::Pc,
            _ => bail!("unknown machine `{s}`: use microvm, q35 or pc"),
        })
    }
}

/// A resolved accelerator (see [`crate::accel`] for how `auto` is decided).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    /// QEMU arguments selecting this accelerator and its CPU model.
    pub fn args(self) -> [&'static str; 4] {
        match self {
            // Plain `-cpu host` aborts on this kind of host (a software PVM); see FACTS.
            Accel::Kvm => ["-accel", "kvm", "-cpu", "host,arch-capabilities=off"],
            // `max` gives AVX2 + FMA under TCG.
            Accel::Tcg => ["-accel", "tcg", "-cpu", "max"],
        }
    }
}

/// What to boot and how.
#[derive(Debug, Clone)]
pub struct Guest {
    pub machine: Machine,
    pub accel: Accel,
    pub cpus: u32,
    /// QEMU `-m` value, e.g. `128M`.
    pub mem: String,
    pub boot: Boot,
    pub timeout: Duration,
    /// A virtio-net NIC on QEMU's user network, with these TCP (host port, guest
    /// port) forwards from 127.0.0.1; `None`: no NIC.
    pub net: Option<Vec<(u16, u16)>>,
    /// Raw disk images, each a virtio-blk device (`blk0`, `blk1`, ... in the guest).
    pub disks: Vec<PathBuf>,
    /// Other virtio devices.
    pub extra: Vec<Extra>,
    /// QEMU's `isa-debug-exit` device, which carries the guest's exit code out
    /// (without it the guest powers off through ACPI, as under other VMMs).
    pub debug_exit: bool,
}

/// A virtio device beside the NIC and the disks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extra {
    /// virtio-rng fed by the host's /dev/urandom (`rng0` in the guest).
    Rng,
    /// A virtio console port whose output goes to this host file (`console0`).
    Console(PathBuf),
}

/// How the image reaches the guest.
#[derive(Debug, Clone)]
pub enum Boot {
    /// PVH: `-kernel ELF [-initrd ARCHIVE] -append CMDLINE`.
    Kernel { elf: PathBuf, initrd: Option<PathBuf>, cmdline: String },
    /// GRUB ISO (kernel, archive and command line inside), `-cdrom`.
    Cdrom { iso: PathBuf },
}

/// How a guest ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The guest reported an exit code through isa-debug-exit.
    Code(i32),
    /// QEMU exited with status 0: the guest reset or powered off without reporting.
    NoCode,
    /// QEMU itself failed (bad option, missing file...) with this status.
    QemuFailed(i32),
    /// QEMU was killed by a signal we did not send.
    Signaled,
    /// We killed it at the deadline.
    TimedOut,
    /// We killed it because the user pressed Ctrl-C (SIGINT).
    Interrupted,
}

/// The result of one boot.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub ending: Ending,
    /// Serial output lines (already symbolized where the caller asked).
    pub lines: Vec<String>,
    /// QEMU's own stderr.
    pub stderr: String,
    /// PID of the QEMU process (gone by the time this is returned).
    pub pid: u32,
    /// From spawning QEMU to reaping it.
    pub elapsed: Duration,
}

impl Outcome {
    /// All serial output as one string.
    pub fn output(&self) -> String {
        let mut s = self.lines.join("\n");
        s.push('\n');
        s
    }
}

impl Guest {
    /// The full QEMU command line.
    pub fn command(&self) -> Command {
        let mut c = Command::new(crate::setup::QEMU);
        c.arg("-M").arg(self.machine.name());
        c.arg("-m").arg(&self.mem);
        c.arg("-smp").arg(self.cpus.to_string());
        c.args(self.accel.args());
        match &self.boot {
            Boot::Kernel { elf, initrd, cmdline } => {
                c.arg("-kernel").arg(elf);
                if let Some(i) = initrd {
                    c.arg("-initrd").arg(i);
                }
                c.arg("-append").arg(cmdline);
            }
            Boot::Cdrom { iso } => {
                c.arg("-cdrom").arg(iso).args(["-boot", "d"]);
            }
        }
        c.args(["-nodefaults", "-no-reboot", "-display", "none", "-serial", "stdio"]);
        if self.debug_exit {
            c.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
        }
        if let Some(fwds) = &self.net {
            // Forwards listen on 127.0.0.1 only: no traffic leaves this machine.
            let mut netdev = String::from("user,id=n0");
            for (h, g) in fwds {
                netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{h}-:{g},hostfwd=udp:127.0.0.1:{h}-:{g}"));
            }
            let nic = match self.machine {
                Machine::Microvm => "virtio-net-device,netdev=n0",
                _ => "virtio-net-pci,netdev=n0",
            };
            c.args(["-netdev", &netdev, "-device", nic]);
        }
        for (i, d) in self.disks.iter().enumerate() {
            // `-drive` splits its value at commas; QEMU escapes a comma by doubling it.
            let path = d.to_string_lossy().replace(',', ",,");
            c.arg("-drive").arg(format!("file={path},if=none,format=raw,id=d{i}"));
            let dev = match self.machine {
                Machine::Microvm => "virtio-blk-device",
                _ => "virtio-blk-pci",
            };
            c.args(["-device", &format!("{dev},drive=d{i}")]);
        }
        let mmio = self.machine == Machine::Microvm;
        for (i, x) in self.extra.iter().enumerate() {
            match x {
                Extra::Rng => {
                    c.args(["-object", &format!("rng-random,id=rng{i},filename=/dev/urandom")]);
                    let dev = if mmio { "virtio-rng-device" } else { "virtio-rng-pci" };
                    c.args(["-device", &format!("{dev},rng=rng{i}")]);
                }
                Extra::Console(path) => {
                    let path = path.to_string_lossy().replace(',', ",,");
                    c.arg("-chardev").arg(format!("file,id=con{i},path={path}"));
                    let bus = if mmio { "virtio-serial-device" } else { "virtio-serial-pci" };
                    c.args(["-device", &format!("{bus},id=vser{i}"), "-device", &format!("virtconsole,chardev=con{i},bus=vser{i}.0")]);
                }
            }
        }
        c
    }
}

/// Set by the Ctrl-C handler; every running guest loop checks it and stops its QEMU.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn install_interrupt_handler() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // If another handler is already installed (a host program embedding us), keep it.
        let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
    });
}

/// Whether the user pressed Ctrl-C while a guest ran.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// A running QEMU that is killed and reaped when dropped.
struct Running {
    child: Child,
    reaped: bool,
}

impl Running {
    fn kill(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.reaped = true;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads `r` line by line (bytes, so a guest's bad UTF-8 cannot stop the stream) into `tx`.
fn pump(r: impl Read, tx: mpsc::Sender<String>) {
    let mut r = BufReader::new(r);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                while matches!(buf.last(), Some(b'\n' | b'\r')) {
                    buf.pop();
                }
                if tx.send(String::from_utf8_lossy(&buf).into_owned()).is_err() {
                    return;
                }
            }
        }
    }
}

/// Whether QEMU's stderr says QEMU itself failed (as opposed to warnings).
fn qemu_reported_error(stderr: &str) -> bool {
    stderr.lines().any(|l| {
        l.starts_with("qemu-system-x86_64:") && !l.contains("warning:")
    })
}

/// Boots `guest`, calling `on_line` with each serial line as it arrives, until it exits or times out.
pub fn boot(guest: &Guest, on_line: &mut dyn FnMut(&str) -> String) -> Result<Outcome> {
    boot_until(guest, on_line, &AtomicBool::new(false))
}

/// [`boot`], but the guest is also killed (by PID, within 100 ms) once `stop`
/// is set, e.g. by a thread that drove a server in the guest and is done. Such
/// a guest ends as [`Ending::Interrupted`]; [`interrupted`] tells it from Ctrl-C.
pub fn boot_until(guest: &Guest, on_line: &mut dyn FnMut(&str) -> String, stop: &AtomicBool) -> Result<Outcome> {
    boot_with_args(guest, &[], on_line, stop)
}

/// [`boot_until`] with more QEMU arguments after the guest's own (e.g. a
/// `-d` log for a measurement).
pub fn boot_with_args(
    guest: &Guest,
    qemu_args: &[&str],
    on_line: &mut dyn FnMut(&str) -> String,
    stop: &AtomicBool,
) -> Result<Outcome> {
    crate::setup::ensure_qemu()?;
    install_interrupt_handler();
    let mut cmd = guest.command();
    cmd.args(qemu_args);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let child = cmd.spawn().with_context(|| format!("could not start {}", crate::setup::QEMU))?;
    let pid = child.id();
    let mut running = Running { child, reaped: false };
    let (tx, rx) = mpsc::channel();
    let stdout = running.child.stdout.take().context("QEMU's stdout was not captured")?;
    let out_thread = std::thread::spawn(move || pump(stdout, tx));
    let mut stderr_pipe = running.child.stderr.take().context("QEMU's stderr was not captured")?;
    let err_thread = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr_pipe.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    let deadline = start + guest.timeout;
    let mut lines = Vec::new();
    let mut timed_out = false;
    let mut interrupted = false;
    loop {
        if INTERRUPTED.load(Ordering::SeqCst) || stop.load(Ordering::SeqCst) {
            running.kill();
            interrupted = true;
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            running.kill();
            timed_out = true;
            break;
        }
        match rx.recv_timeout((deadline - now).min(Duration::from_millis(100))) {
            Ok(line) => lines.push(on_line(&line)),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // stdout closed (or we killed it): reap, honouring the deadline while QEMU shuts down.
    let status = loop {
        if timed_out || interrupted {
            break None;
        }
        match running.child.try_wait().context("waiting for QEMU")? {
            Some(st) => {
                running.reaped = true;
                break Some(st);
            }
            None if Instant::now() >= deadline => {
                running.kill();
                timed_out = true;
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    let elapsed = start.elapsed();
    let _ = out_thread.join();
    for line in rx.try_iter() {
        lines.push(on_line(&line));
    }
    let stderr = err_thread.join().unwrap_or_default();
    let ending = match status {
        None if interrupted => Ending::Interrupted,
        None => Ending::TimedOut,
        Some(st) => match st.code() {
            None => Ending::Signaled,
            Some(0) => Ending::NoCode,
            Some(c) if qemu_reported_error(&stderr) => Ending::QemuFailed(c),
            Some(c) => match bareflow_abi::exit::from_qemu_status(c) {
                Some(code) => Ending::Code(code),
                None => Ending::QemuFailed(c),
            },
        },
    };
    Ok(Outcome { ending, lines, stderr, pid, elapsed })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_has_the_documented_devices() {
        let g = Guest {
            machine: Machine::Microvm,
            accel: Accel::Tcg,
            cpus: 2,
            mem: "64M".into(),
            boot: Boot::Kernel { elf: "/x/app".into(), initrd: Some("/x/f.img".into()), cmdline: "a=b -- c".into() },
            timeout: Duration::from_secs(1),
            net: None,
            disks: Vec::new(),
            extra: Vec::new(),
            debug_exit: true,
        };
        let c = g.command();
        let args: Vec<String> = c.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        let joined = args.join(" ");
        assert!(joined.starts_with("-M microvm -m 64M -smp 2 -accel tcg -cpu max -kernel /x/app -initrd /x/f.img"), "{joined}");
        assert!(joined.contains("-append a=b -- c"), "{joined}");
        assert!(joined.ends_with("-serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04"), "{joined}");
    }

    #[test]
    fn qemu_errors_are_told_from_warnings() {
        assert!(qemu_reported_error("qemu-system-x86_64: -kernel /x: No such file or directory\n"));
        assert!(!qemu_reported_error("qemu-system-x86_64: warning: host doesn't support requested feature\n"));
        assert!(!qemu_reported_error(""));
    }

    #[test]
    fn pump_splits_lines_and_survives_bad_utf8() {
        let (tx, rx) = mpsc::channel();
        pump(&b"one\r\ntwo\n\xffthree"[..], tx);
        let got: Vec<String> = rx.iter().collect();
        assert_eq!(got, vec!["one".to_string(), "two".to_string(), "\u{fffd}three".to_string()]);
    }
}

//! The Linux baseline's initramfs: its layout as plain data (so tests can check
//! it without a kernel), the `/init` script, and the newc archive writer.
//!
//! The archive is written with the `cpio` crate's newc builder (the format the
//! kernel's initramfs unpacker reads) and gzip-compressed with `flate2`: both
//! are well-kept crates, and the kernel needs a `/dev/console` character device
//! node, which the crate can write (a plain directory copy could not).

use anyhow::{Context, Result, bail};
use std::io::Write;

/// Where the init script finds the kernel modules it loads.
pub const MODULE_DIR: &str = "lib/modules";
/// Where the apps live in the guest.
pub const APP_DIR: &str = "bin";
/// Where the files httpd serves live in the guest.
pub const WWW_DIR: &str = "www";
/// The line the init script prints when the app has returned: `<MARK> <code>`.
pub const EXIT_MARK: &str = "bareflow-baseline: exit";

/// One thing in the archive. Paths are relative (`bin/busybox`), without a leading `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir { path: String },
    File { path: String, mode: u32, data: Vec<u8> },
    Symlink { path: String, target: String },
    CharDev { path: String, major: u32, minor: u32 },
}

impl Node {
    pub fn path(&self) -> &str {
        match self {
            Node::Dir { path } | Node::File { path, .. } | Node::Symlink { path, .. } | Node::CharDev { path, .. } => path,
        }
    }
}

/// What goes into the initramfs.
#[derive(Debug, Clone)]
pub struct Contents {
    /// The static busybox binary.
    pub busybox: Vec<u8>,
    /// Kernel modules in load order: (module name, `.ko` bytes).
    pub modules: Vec<(String, Vec<u8>)>,
    /// Statically linked hosted apps: (name, binary).
    pub apps: Vec<(String, Vec<u8>)>,
    /// Files under `/www` for httpd: (relative name, bytes).
    pub www: Vec<(String, Vec<u8>)>,
}

/// The busybox applets the init script uses, linked to `/bin/busybox`.
pub const APPLETS: &[&str] = &["sh", "mount", "insmod", "ip", "poweroff", "reboot", "echo", "cat", "sleep", "grep"];

/// The `/init` script: mounts the pseudo file systems, loads `modules` (in
/// order), brings up `eth0` with QEMU user networking's static address when the
/// command line has `bf_net=1`, runs the app named by its first argument (the
/// kernel hands init the words after `--` of its command line) with the rest,
/// prints `EXIT_MARK <code>` and powers off.
pub fn init_script(modules: &[String]) -> String {
    let mut s = String::from(
        "#!/bin/sh\n\
         # Written by `cargo bareflow baseline linux`: run one app, then power off.\n\
         export PATH=/bin\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev 2>/dev/null\n",
    );
    for m in modules {
        s.push_str(&format!("insmod /{MODULE_DIR}/{m}.ko || echo \"bareflow-baseline: insmod {m} failed\"\n"));
    }
    s.push_str(
        "if grep -q 'bf_net=1' /proc/cmdline; then\n\
         \x20 i=0\n\
         \x20 while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done\n\
         \x20 ip link set lo up\n\
         \x20 ip link set eth0 up\n\
         \x20 ip addr add 10.0.2.15/24 dev eth0\n\
         \x20 ip route add default via 10.0.2.2\n\
         fi\n\
         app=\"$1\"\n\
         [ -n \"$app\" ] && shift\n\
         if [ -x \"/bin/$app\" ]; then\n\
         \x20 cd /www\n\
         \x20 \"/bin/$app\" \"$@\"\n\
         \x20 code=$?\n\
         else\n\
         \x20 echo \"bareflow-baseline: no app '$app' in /bin (give it after -- on the kernel command line)\"\n\
         \x20 code=127\n\
         fi\n",
    );
    s.push_str(&format!("echo \"{EXIT_MARK} $code\"\n"));
    // `poweroff -f` ends QEMU on q35 and microvm (ACPI); `reboot -f` (QEMU runs
    // with -no-reboot) is the fallback should a machine lack ACPI power-off.
    s.push_str("poweroff -f\nsleep 1\nreboot -f\n");
    s
}

/// The exit code in an `EXIT_MARK <code>` line.
pub fn parse_exit(line: &str) -> Option<i32> {
    line.trim().strip_prefix(EXIT_MARK)?.trim().parse().ok()
}

/// The archive's nodes, parents before children, in a fixed order.
pub fn layout(c: &Contents) -> Result<Vec<Node>> {
    let dir = |p: &str| Node::Dir { path: p.to_string() };
    let mut nodes = vec![dir("bin"), dir("dev"), dir("proc"), dir("sys"), dir("lib"), dir(MODULE_DIR), dir(WWW_DIR)];
    nodes.push(Node::CharDev { path: "dev/console".into(), major: 5, minor: 1 });
    nodes.push(Node::CharDev { path: "dev/null".into(), major: 1, minor: 3 });
    nodes.push(Node::File { path: "bin/busybox".into(), mode: 0o755, data: c.busybox.clone() });
    for a in APPLETS {
        nodes.push(Node::Symlink { path: format!("bin/{a}"), target: "busybox".into() });
    }
    let names: Vec<String> = c.modules.iter().map(|(n, _)| n.clone()).collect();
    for (name, data) in &c.modules {
        check_name(name)?;
        nodes.push(Node::File { path: format!("{MODULE_DIR}/{name}.ko"), mode: 0o644, data: data.clone() });
    }
    for (name, data) in &c.apps {
        check_name(name)?;
        if APPLETS.contains(&name.as_str()) || name == "busybox" {
            bail!("app name `{name}` clashes with a busybox applet in /bin");
        }
        nodes.push(Node::File { path: format!("{APP_DIR}/{name}"), mode: 0o755, data: data.clone() });
    }
    for (name, data) in &c.www {
        check_name(name)?;
        nodes.push(Node::File { path: format!("{WWW_DIR}/{name}"), mode: 0o644, data: data.clone() });
    }
    nodes.push(Node::File { path: "init".into(), mode: 0o755, data: init_script(&names).into_bytes() });
    Ok(nodes)
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') || name.contains(char::is_whitespace) {
        bail!("`{name}` is not a plain file name for the initramfs");
    }
    Ok(())
}

/// Writes `nodes` as a newc cpio archive (with its trailer) to `w`.
pub fn write_newc<W: Write>(nodes: &[Node], mut w: W) -> Result<W> {
    use cpio::newc::{Builder, ModeFileType};
    for (i, n) in nodes.iter().enumerate() {
        let ino = u32::try_from(i + 1).context("too many initramfs entries")?;
        let b = Builder::new(n.path()).ino(ino).uid(0).gid(0);
        let (b, data): (Builder, &[u8]) = match n {
            Node::Dir { .. } => (b.mode(0o755).set_mode_file_type(ModeFileType::Directory).nlink(2), &[]),
            Node::File { mode, data, .. } => (b.mode(*mode).set_mode_file_type(ModeFileType::Regular).nlink(1), data),
            Node::Symlink { target, .. } => {
                (b.mode(0o777).set_mode_file_type(ModeFileType::Symlink).nlink(1), target.as_bytes())
            }
            Node::CharDev { major, minor, .. } => (
                b.mode(0o600).set_mode_file_type(ModeFileType::Char).nlink(1).rdev_major(*major).rdev_minor(*minor),
                &[],
            ),
        };
        let size = u32::try_from(data.len()).with_context(|| format!("{} is over 4 GiB", n.path()))?;
        let mut fw = b.write(w, size);
        fw.write_all(data).with_context(|| format!("writing {} into the initramfs", n.path()))?;
        w = fw.finish()?;
    }
    Ok(cpio::newc::trailer(w)?)
}

/// The gzip-compressed newc archive of `c`.
pub fn build(c: &Contents) -> Result<Vec<u8>> {
    let nodes = layout(c)?;
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let gz = write_newc(&nodes, gz)?;
    Ok(gz.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn contents() -> Contents {
        Contents {
            busybox: b"BUSYBOX".to_vec(),
            modules: vec![("virtio".into(), b"ko1".to_vec()), ("virtio_net".into(), b"ko2".to_vec())],
            apps: vec![("hello".into(), b"\x7fELFhello".to_vec())],
            www: vec![("index.html".into(), b"hi\n".to_vec())],
        }
    }

    /// One entry read back: name, mode, rdev major/minor, data.
    type Entry = (String, u32, (u32, u32), Vec<u8>);

    /// Reads a newc archive back, an [`Entry`] per entry.
    fn read_back(mut bytes: &[u8]) -> Vec<Entry> {
        let mut out = Vec::new();
        loop {
            let mut r = cpio::newc::Reader::new(bytes).unwrap();
            if r.entry().is_trailer() {
                return out;
            }
            let e = r.entry().clone();
            let mut data = Vec::new();
            r.read_to_end(&mut data).unwrap();
            out.push((e.name().to_string(), e.mode(), (e.rdev_major(), e.rdev_minor()), data));
            bytes = r.finish().unwrap();
        }
    }

    #[test]
    fn archive_has_console_busybox_links_modules_apps_and_init() {
        let gz = build(&contents()).unwrap();
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut raw).unwrap();
        let entries = read_back(&raw);
        let find = |p: &str| entries.iter().find(|e| e.0 == p).unwrap_or_else(|| panic!("no {p} in {entries:?}"));
        let console = find("dev/console");
        assert_eq!((console.1 & 0o170000, console.2), (0o020000, (5, 1)));
        assert_eq!(find("bin/busybox").3, b"BUSYBOX");
        let sh = find("bin/sh");
        assert_eq!((sh.1 & 0o170000, sh.3.as_slice()), (0o120000, &b"busybox"[..]));
        assert_eq!(find("lib/modules/virtio_net.ko").3, b"ko2");
        let hello = find("bin/hello");
        assert_eq!((hello.1 & 0o777, hello.3.as_slice()), (0o755, &b"\x7fELFhello"[..]));
        assert_eq!(find("www/index.html").3, b"hi\n");
        assert_eq!(find("bin").1 & 0o170000, 0o040000);
        let init = String::from_utf8(find("init").3.clone()).unwrap();
        assert!(init.starts_with("#!/bin/sh\n"), "{init}");
        // Parents come before their children (the kernel's unpacker needs it).
        let pos = |p: &str| entries.iter().position(|e| e.0 == p).unwrap();
        assert!(pos("lib") < pos("lib/modules") && pos("lib/modules") < pos("lib/modules/virtio.ko"));
    }

    #[test]
    fn init_loads_modules_in_order_then_runs_the_app_and_powers_off() {
        let s = init_script(&["virtio".into(), "virtio_ring".into(), "virtio_net".into()]);
        let a = s.find("insmod /lib/modules/virtio.ko").unwrap();
        let b = s.find("insmod /lib/modules/virtio_ring.ko").unwrap();
        let c = s.find("insmod /lib/modules/virtio_net.ko").unwrap();
        assert!(a < b && b < c);
        let run = s.find("\"/bin/$app\" \"$@\"").unwrap();
        let mark = s.find("echo \"bareflow-baseline: exit $code\"").unwrap();
        let off = s.find("poweroff -f").unwrap();
        assert!(c < run && run < mark && mark < off, "{s}");
        assert!(s.contains("ip addr add 10.0.2.15/24 dev eth0") && s.contains("ip route add default via 10.0.2.2"));
        // Every command the script runs is a linked applet.
        for cmd in ["mount", "insmod", "ip", "poweroff", "reboot", "echo", "grep", "sleep"] {
            assert!(APPLETS.contains(&cmd), "{cmd}");
        }
    }

    #[test]
    fn exit_mark_round_trips() {
        assert_eq!(parse_exit("bareflow-baseline: exit 0"), Some(0));
        assert_eq!(parse_exit("bareflow-baseline: exit 127\r"), Some(127));
        assert_eq!(parse_exit("bareflow-baseline: exit x"), None);
        assert_eq!(parse_exit("Hello"), None);
    }

    #[test]
    fn bad_names_are_refused() {
        let mut c = contents();
        c.apps.push(("../x".into(), vec![]));
        assert!(format!("{:#}", layout(&c).unwrap_err()).contains("plain file name"));
        let mut c = contents();
        c.apps.push(("sh".into(), vec![]));
        assert!(format!("{:#}", layout(&c).unwrap_err()).contains("clashes"));
    }
}

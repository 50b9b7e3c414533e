//! Writes the seed inputs of the `initfs`, `payload_manifest`, `payload_elf` and
//! `cmdline` fuzz targets with the repo's own encoders, and checks that each one
//! parses, so a seed is a valid input and not a hand-written guess.
//!
//! Usage: `cargo run --manifest-path fuzz/seedgen/Cargo.toml -- fuzz/seeds`
//!
//! Every signed seed is signed with [`FUZZ_KEY_SEED`], the key the targets trust
//! (they re-sign mutated inputs with it, see `fuzz/fuzz_targets/initfs.rs`).
use bareflow_abi::cmdline::Cmdline;
use bareflow_abi::initfs::{Initfs, InitfsBuilder};
use bareflow_abi::payload::{self, Manifest, Payload, caps};
use bareflow_abi::signature::{SecretKey, TrustedKeys};
use std::path::{Path, PathBuf};

/// Must match `FUZZ_KEY_SEED` in the fuzz targets.
const FUZZ_KEY_SEED: [u8; 32] = [0x5a; 32];

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
    println!("{} ({} bytes)", dir.join(name).display(), bytes.len());
}

fn initfs(files: &[(&str, u32, &[u8])], key: &SecretKey) -> Vec<u8> {
    let mut b = InitfsBuilder::new();
    for (path, mode, bytes) in files {
        b.add(path, *mode, bytes).unwrap();
    }
    b.finish(key)
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

/// A compact ET_DYN x86-64 ELF in the loader's subset (file offsets equal addresses):
/// text at 0x100 (`run`, a `ret`), a RW segment at 0x180..0x300 holding the dynamic
/// section, four symbols (null, `run`, and the imports `bf_write`, `bf_exit`), the
/// strings, RELA (RELATIVE, GLOB_DAT, 64) and JMPREL (JUMP_SLOT) relocations, and
/// four 8-byte slots they write.
fn elf() -> Vec<u8> {
    let mut b = vec![0u8; 0x300];
    put(&mut b, 0, b"\x7fELF\x02\x01\x01");
    put(&mut b, 16, &3u16.to_le_bytes()); // ET_DYN
    put(&mut b, 18, &62u16.to_le_bytes()); // EM_X86_64
    put(&mut b, 32, &64u64.to_le_bytes()); // e_phoff
    put(&mut b, 54, &56u16.to_le_bytes()); // e_phentsize
    put(&mut b, 56, &3u16.to_le_bytes()); // e_phnum
    let phdrs: [(u32, u32, u64, u64); 3] = [(1, 5, 0x100, 0x10), (1, 6, 0x180, 0x180), (2, 6, 0x180, 0x80)];
    for (i, (ty, flags, at, size)) in phdrs.into_iter().enumerate() {
        let p = 64 + i * 56;
        put(&mut b, p, &ty.to_le_bytes());
        put(&mut b, p + 4, &flags.to_le_bytes());
        put(&mut b, p + 8, &at.to_le_bytes()); // p_offset
        put(&mut b, p + 16, &at.to_le_bytes()); // p_vaddr
        put(&mut b, p + 24, &at.to_le_bytes()); // p_paddr
        put(&mut b, p + 32, &size.to_le_bytes()); // p_filesz
        put(&mut b, p + 40, &size.to_le_bytes()); // p_memsz
    }
    b[0x100] = 0xc3;
    let dynamic: [(u64, u64); 8] = [(6, 0x200), (5, 0x260), (10, 0x18), (7, 0x280), (8, 72), (23, 0x2c8), (2, 24), (0, 0)];
    for (i, (tag, val)) in dynamic.into_iter().enumerate() {
        put(&mut b, 0x180 + 16 * i, &tag.to_le_bytes());
        put(&mut b, 0x188 + 16 * i, &val.to_le_bytes());
    }
    let strs = b"\0run\0bf_write\0bf_exit\0";
    put(&mut b, 0x260, strs);
    // (name offset, shndx, value) of symbols 1..=3.
    let syms: [(u32, u16, u64); 3] = [(1, 1, 0x100), (5, 0, 0), (14, 0, 0)];
    for (i, (name, shndx, value)) in syms.into_iter().enumerate() {
        let s = 0x200 + 24 * (i + 1);
        put(&mut b, s, &name.to_le_bytes());
        put(&mut b, s + 6, &shndx.to_le_bytes());
        put(&mut b, s + 8, &value.to_le_bytes());
    }
    // (offset, kind, symbol, addend): RELA then JMPREL.
    let relocs: [(u64, u32, u32, u64); 4] = [(0x2e0, 8, 0, 0x100), (0x2e8, 6, 2, 0), (0x2f0, 1, 1, 4), (0x2f8, 7, 3, 0)];
    for (i, (off, kind, sym, add)) in relocs.into_iter().enumerate() {
        let r = 0x280 + 24 * i;
        put(&mut b, r, &off.to_le_bytes());
        put(&mut b, r + 8, &((u64::from(sym) << 32) | u64::from(kind)).to_le_bytes());
        put(&mut b, r + 16, &add.to_le_bytes());
    }
    b
}

const EXPORTS: &[(&str, u64)] = &[("bf_write", 0xffff_8000_0000_1000), ("bf_exit", 0xffff_8000_0000_2000)];

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "fuzz/seeds".into()));
    let key = SecretKey::from_seed(FUZZ_KEY_SEED);
    let trusted = TrustedKeys::new([key.public()]);

    // initfs: built by InitfsBuilder, each one opened and fully verified here.
    let dir = out.join("initfs");
    let sets: [(&str, &[(&str, u32, &[u8])]); 4] = [
        ("empty.initfs", &[]),
        ("one_file.initfs", &[("hello.txt", 0o644, b"hello, initfs\n")]),
        ("tree.initfs", &[
            ("a/b/c.txt", 0o644, b"c"),
            ("a/d", 0o755, b"#!/bin/run\n"),
            ("a/empty", 0o600, b""),
            ("a-b", 0o644, b"sorts before a/ by path, after it by name"),
            ("models/tiny.bin", 0o444, &[7u8; 100]),
            ("z", 0o7777, b"last"),
        ]),
        ("unicode_paths.initfs", &[("d\u{e9}j\u{e0}/vu.txt", 0o644, b"x"), ("\u{1f980}", 0o644, b"crab")]),
    ];
    for (name, files) in sets {
        let img = initfs(files, &key);
        let fs = Initfs::open(&img, &trusted).unwrap();
        assert_eq!(fs.len(), files.len());
        fs.verify_all().unwrap();
        write(&dir, name, &img);
    }

    // payload_elf: the bare ELF; payload_manifest: it packed and signed by payload::build.
    let code = elf();
    let img = payload::load_elf(&code, 0x4000_0000, payload::ABI_VERSION, EXPORTS, "run").unwrap();
    assert_eq!(img.entry, 0x100);
    write(&out.join("payload_elf"), "handler.elf", &code);
    let dir = out.join("payload_manifest");
    for (name, abi_version, capabilities) in [("v2_console.bfp", 2, caps::CONSOLE), ("v1_none.bfp", 1, 0), ("v2_all.bfp", 2, caps::ALL)] {
        let m = Manifest { name: "handler".into(), abi_version, entry: "run".into(), capabilities };
        let bytes = payload::build(&m, &code, &key);
        let p = Payload::open(&bytes, &trusted, caps::ALL).unwrap();
        assert_eq!(p.manifest, m);
        p.load(0x4000_0000, EXPORTS).unwrap();
        write(&dir, name, &bytes);
    }

    // cmdline: the line (as the CLI encodes one), then 0xFF-separated strings that
    // the target packs into a Cmdline of its own (see fuzz/fuzz_targets/cmdline.rs).
    let dir = out.join("cmdline");
    let cli_like = Cmdline::default()
        .with_option("bareflow.smp", "2")
        .with_option("bareflow.log", "debug")
        .with_option("GREET", "hello there")
        .with_option("EMPTY", "")
        .with_arg("a")
        .with_arg("")
        .with_arg("--exit")
        .with_arg("3")
        .with_arg("x=y %20 \u{e9}");
    let lines = [
        ("cli.txt", cli_like.encode()),
        ("loader_tokens.txt", String::from("console=ttyS0 noapic  \t bareflow.net.high=64 -- --")),
        ("escapes.txt", String::from("%zz=%4 %FF=%C3%A9 \"\"=\"\" -- %25 %E2%82 \"\"")),
    ];
    for (name, line) in &lines {
        assert_eq!(&Cmdline::parse(&Cmdline::parse(line).encode()), &Cmdline::parse(line));
        let mut bytes = line.clone().into_bytes();
        for s in ["bareflow.app", "hello", "K=V", " two words ", "", "--", "\u{e9}\0%"] {
            bytes.push(0xff);
            bytes.extend_from_slice(s.as_bytes());
        }
        write(&dir, name, &bytes);
    }
}

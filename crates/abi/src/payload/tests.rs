//! Payload container, ELF checks, relocations, imports and the ABI table, on
//! synthetic ELFs laid out here (file offsets equal addresses).
extern crate std;

use super::*;
use crate::signature::SEED_LEN;
use alloc::string::ToString;

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed([n; SEED_LEN])
}

/// One relocation: (offset, kind, symbol index, addend).
type Rela = (u64, u32, u32, u64);

struct Spec {
    text_flags: u32,
    import: &'static str,
    relocs: Vec<Rela>,
    data_vaddr: u64,
}

const SLOT_REL: u64 = 0x21c0;
const SLOT_GOT: u64 = 0x21c8;
const SLOT_ABS: u64 = 0x21d0;

fn spec() -> Spec {
    Spec {
        text_flags: 5, // R+X
        import: "bf_write",
        relocs: vec![(SLOT_REL, 8, 0, 0x1010), (SLOT_GOT, 6, 2, 0), (SLOT_ABS, 1, 1, 4)],
        data_vaddr: 0x2000,
    }
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

/// A small ET_DYN x86-64 ELF: text at 0x1000 (symbol `run`), data at 0x2000 holding
/// the dynamic section, symbols, strings, relocations and three 8-byte slots.
fn elf(s: &Spec) -> Vec<u8> {
    let mut b = vec![0u8; 0x2200];
    put(&mut b, 0, b"\x7fELF\x02\x01\x01");
    put(&mut b, 16, &3u16.to_le_bytes());
    put(&mut b, 18, &62u16.to_le_bytes());
    put(&mut b, 32, &64u64.to_le_bytes());
    put(&mut b, 54, &56u16.to_le_bytes());
    put(&mut b, 56, &3u16.to_le_bytes());
    let ph = |b: &mut Vec<u8>, i: usize, ty: u32, flags: u32, off: u64, vaddr: u64, size: u64| {
        let at = 64 + i * 56;
        put(b, at, &ty.to_le_bytes());
        put(b, at + 4, &flags.to_le_bytes());
        put(b, at + 8, &off.to_le_bytes());
        put(b, at + 16, &vaddr.to_le_bytes());
        put(b, at + 32, &size.to_le_bytes());
        put(b, at + 40, &size.to_le_bytes());
    };
    ph(&mut b, 0, PT_LOAD, s.text_flags, 0x1000, 0x1000, 0x100);
    ph(&mut b, 1, PT_LOAD, 6, 0x2000, s.data_vaddr, 0x200);
    ph(&mut b, 2, PT_DYNAMIC, 6, 0x2000, 0x2000, 0x80);
    b[0x1000] = 0xc3; // ret
    let dynamic: [(u64, u64); 6] =
        [(DT_SYMTAB, 0x2100), (DT_STRTAB, 0x2150), (DT_STRSZ, 0x18), (DT_RELA, 0x2170), (DT_RELASZ, 24 * s.relocs.len() as u64), (DT_NULL, 0)];
    for (i, (t, v)) in dynamic.iter().enumerate() {
        put(&mut b, 0x2000 + 16 * i, &t.to_le_bytes());
        put(&mut b, 0x2008 + 16 * i, &v.to_le_bytes());
    }
    // Strings: "\0run\0<import>\0".
    let mut strs = b"\0run\0".to_vec();
    strs.extend_from_slice(s.import.as_bytes());
    strs.push(0);
    put(&mut b, 0x2150, &strs);
    // Symbols: null; `run` defined at 0x1000 (shndx 1); the import, undefined.
    put(&mut b, 0x2118, &1u32.to_le_bytes());
    put(&mut b, 0x2118 + 6, &1u16.to_le_bytes());
    put(&mut b, 0x2118 + 8, &0x1000u64.to_le_bytes());
    put(&mut b, 0x2130, &5u32.to_le_bytes());
    for (i, &(off, kind, sym, add)) in s.relocs.iter().enumerate() {
        let at = 0x2170 + 24 * i;
        put(&mut b, at, &off.to_le_bytes());
        put(&mut b, at + 8, &((u64::from(sym) << 32) | u64::from(kind)).to_le_bytes());
        put(&mut b, at + 16, &add.to_le_bytes());
    }
    b
}

fn manifest(abi_version: u32, caps: u64) -> Manifest {
    Manifest { name: "handler".into(), abi_version, entry: "run".into(), capabilities: caps }
}

const EXPORTS: &[(&str, u64)] = &[("bf_write", 0xffff_8000_0000_1234), ("bf_exit", 0xffff_8000_0000_5678)];

fn slot(img: &LoadedImage, at: u64) -> u64 {
    u64::from_le_bytes(img.bytes[at as usize..at as usize + 8].try_into().unwrap())
}

#[test]
fn signed_payload_loads_relocates_and_resolves() {
    let trusted = TrustedKeys::new([key(1).public()]);
    let bytes = build(&manifest(ABI_VERSION, caps::CONSOLE), &elf(&spec()), &key(1));
    let p = Payload::open(&bytes, &trusted, caps::ALL).unwrap();
    assert_eq!(p.manifest, manifest(ABI_VERSION, caps::CONSOLE));
    assert_eq!(p.signer, key(1).public());
    let base = 0x4000_0000;
    let img = p.load(base, EXPORTS).unwrap();
    assert_eq!(img.entry, 0x1000);
    assert_eq!(img.bytes[0x1000], 0xc3);
    assert_eq!(slot(&img, SLOT_REL), base + 0x1010);
    assert_eq!(slot(&img, SLOT_GOT), 0xffff_8000_0000_1234);
    assert_eq!(slot(&img, SLOT_ABS), base + 0x1000 + 4);
    assert_eq!(
        img.segments,
        vec![Segment { offset: 0x1000, len: 0x100, prot: Prot::ReadExec }, Segment { offset: 0x2000, len: 0x200, prot: Prot::ReadWrite }]
    );
    // Another base gives other addresses: the code is really relocated.
    assert_eq!(slot(&p.load(0x8000_0000, EXPORTS).unwrap(), SLOT_REL), 0x8000_1010);
}

#[test]
fn compatibility_table_old_supported_retired_and_unknown() {
    let trusted = TrustedKeys::new([key(1).public()]);
    // ABI 1 is still served: a payload importing bf_write (exported since 1) loads.
    let old = build(&manifest(1, 0), &elf(&spec()), &key(1));
    Payload::open(&old, &trusted, 0).unwrap().load(0x1_0000, EXPORTS).unwrap();
    // ...but it may not import what only ABI 2 exports.
    let newer = build(&manifest(1, 0), &elf(&Spec { import: "bf_time_nanos", ..spec() }), &key(1));
    let exports = [("bf_time_nanos", 1u64)];
    assert_eq!(
        Payload::open(&newer, &trusted, 0).unwrap().load(0, &exports).unwrap_err(),
        PayloadError::UnknownImport { name: "bf_time_nanos".into() }
    );
    let e = Payload::open(&build(&manifest(0, 0), &elf(&spec()), &key(1)), &trusted, 0).unwrap_err();
    assert_eq!(e, PayloadError::RetiredAbi { found: 0 });
    let e = Payload::open(&build(&manifest(99, 0), &elf(&spec()), &key(1)), &trusted, 0).unwrap_err();
    assert_eq!(e, PayloadError::UnknownAbi { found: 99 });
    assert!(e.to_string().contains("1, 2"), "{e}");
    assert!(COMPAT.iter().any(|a| a.version == ABI_VERSION && a.status == AbiStatus::Current));
}

#[test]
fn each_bad_input_has_its_own_refusal() {
    let trusted = TrustedKeys::new([key(1).public()]);
    let open = |m: Manifest, s: Spec| {
        let b = build(&m, &elf(&s), &key(1));
        Payload::open(&b, &trusted, caps::CONSOLE).and_then(|p| p.load(0x10_0000, EXPORTS).map(|_| ()))
    };
    assert_eq!(open(manifest(2, 0), Spec { text_flags: 7, ..spec() }), Err(PayloadError::WritableAndExecutable { index: 0 }));
    assert_eq!(open(manifest(2, 0), Spec { data_vaddr: 0x1080, ..spec() }), Err(PayloadError::OverlappingSegments { index: 1 }));
    let mut s = spec();
    s.relocs.push((SLOT_REL, 37, 0, 0)); // R_X86_64_IRELATIVE: not applied
    assert_eq!(open(manifest(2, 0), s), Err(PayloadError::UnknownRelocation { kind: 37 }));
    assert_eq!(
        open(manifest(2, 0), Spec { import: "bf_reboot", ..spec() }),
        Err(PayloadError::UnknownImport { name: "bf_reboot".into() })
    );
    let mut s = spec();
    s.relocs[0].0 = 0x1000; // into the text: not writable
    assert_eq!(open(manifest(2, 0), s), Err(PayloadError::RelocationOutOfBounds { offset: 0x1000 }));
    assert_eq!(open(manifest(2, caps::NET), spec()), Err(PayloadError::MissingCapabilities { bits: caps::NET }));
    assert_eq!(open(manifest(2, 1 << 40), spec()), Err(PayloadError::UnknownCapabilities { bits: 1 << 40 }));
    let mut m = manifest(2, 0);
    m.entry = "main".into();
    assert_eq!(open(m, spec()), Err(PayloadError::EntryNotFound { name: "main".into() }));
}

#[test]
fn signature_hash_and_truncation_refusals() {
    let trusted = TrustedKeys::new([key(1).public()]);
    let good = build(&manifest(2, 0), &elf(&spec()), &key(1));
    assert_eq!(
        Payload::open(&good, &TrustedKeys::new([key(2).public()]), 0).unwrap_err(),
        PayloadError::Signature(SignatureError::UntrustedKey { key: key(1).public() })
    );
    let mut code = good.clone();
    let last = code.len() - 1;
    code[last] ^= 1;
    assert_eq!(Payload::open(&code, &trusted, 0).unwrap_err(), PayloadError::ElfHashMismatch);
    assert!(matches!(Payload::open(&good[..good.len() - 1], &trusted, 0), Err(PayloadError::ElfLengthMismatch { .. })));
    for len in 0..200 {
        assert!(Payload::open(&good[..len], &trusted, 0).is_err(), "truncated to {len}");
    }
    // Every flipped byte of the manifest and signature is refused.
    for i in 0..(FIXED_LEN + 7 + 3 + 96) {
        let mut b = good.clone();
        b[i] ^= 0x01;
        assert!(Payload::open(&b, &trusted, caps::ALL).is_err(), "flipped byte {i} accepted");
    }
}

#[test]
fn hostile_elves_never_panic() {
    let base = elf(&spec());
    for i in 0..0x2200 {
        for bit in [0x01u8, 0x80] {
            let mut b = base.clone();
            b[i] ^= bit;
            let _ = load_elf(&b, 0x1000_0000, 2, EXPORTS, "run");
        }
    }
    for len in 0..base.len() {
        let _ = load_elf(&base[..len], 0, 2, EXPORTS, "run");
    }
    let mut b = base.clone();
    put(&mut b, 56, &u16::MAX.to_le_bytes());
    assert!(matches!(load_elf(&b, 0, 2, EXPORTS, "run"), Err(PayloadError::NotElf64 { .. })));
    let mut b = base;
    put(&mut b, 18, &40u16.to_le_bytes());
    assert_eq!(load_elf(&b, 0, 2, EXPORTS, "run").unwrap_err(), PayloadError::NotElf64 { reason: "not x86-64" });
}

#[test]
fn relocation_at_the_top_of_the_address_space_is_refused_not_overflowed() {
    let mut s = spec();
    s.relocs[0].0 = u64::MAX - 3;
    assert_eq!(load_elf(&elf(&s), 0, 2, EXPORTS, "run").unwrap_err(), PayloadError::RelocationOutOfBounds { offset: u64::MAX - 3 });
}

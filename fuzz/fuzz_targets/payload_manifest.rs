//! Fuzzes `Payload::open`, the signed payload container and its manifest, and
//! loads whatever it accepts.
//!
//! Each input is opened three times: as it is; with its manifest re-signed with
//! the fuzz key (so hostile lengths, names, ABI versions and capabilities reach
//! the checks behind the signature); and re-signed after the signed ELF length
//! and SHA-256 were patched to match the bytes that follow (so the manifest
//! checks after the hash see mutated manifests too). What opens must keep:
//! - name and entry are 1..=64 bytes, the ABI version is served, the
//!   capabilities are known and granted;
//! - the ELF is exactly the input's tail after the signature block, of the
//!   signed length and hash, and the signer is the fuzz key;
//! - `payload::build` of the parsed manifest and ELF gives back the input
//!   byte for byte (parse → encode is the identity);
//! - `load` either refuses or gives an image whose segments and entry lie inside it.
#![no_main]
use bareflow_abi::payload::{self, Payload, Prot, caps};
use bareflow_abi::signature::{PUBLIC_KEY_LEN, SIGNATURE_LEN, sha256};
use bareflow_llm_fuzz::fuzz_key;
use libfuzzer_sys::fuzz_target;

const FIXED_LEN: usize = 68;
const EXPORTS: &[(&str, u64)] = &[("bf_write", 0xffff_8000_0000_1000), ("bf_exit", 0xffff_8000_0000_2000), ("bf_time_nanos", 0x10)];

fuzz_target!(|data: &[u8]| {
    let (key, trusted) = fuzz_key();
    // The capabilities granted come from the last byte, so refusals of ungranted ones are reached.
    let granted = u64::from(data.last().copied().unwrap_or(0xff) & 0x0f);
    if let Ok(p) = Payload::open(data, trusted, granted) {
        check(&p, data, granted);
    }
    // Where the signature block is, by the manifest's own lengths.
    if data.len() < FIXED_LEN {
        return;
    }
    let name_len = usize::from(u16::from_le_bytes([data[64], data[65]]));
    let entry_len = usize::from(u16::from_le_bytes([data[66], data[67]]));
    let signed_end = FIXED_LEN + name_len + entry_len;
    let elf_at = signed_end + PUBLIC_KEY_LEN + SIGNATURE_LEN;
    if data.len() < elf_at {
        return;
    }
    let mut resigned = data.to_vec();
    for patch_elf in [false, true] {
        if patch_elf {
            let elf_len = (resigned.len() - elf_at) as u64;
            let hash = sha256(&resigned[elf_at..]);
            resigned[24..32].copy_from_slice(&elf_len.to_le_bytes());
            resigned[32..64].copy_from_slice(&hash);
        }
        let sig = key.sign(&resigned[..signed_end]);
        resigned[signed_end..signed_end + PUBLIC_KEY_LEN].copy_from_slice(&key.public().0);
        resigned[signed_end + PUBLIC_KEY_LEN..elf_at].copy_from_slice(&sig);
        if let Ok(p) = Payload::open(&resigned, trusted, granted) {
            check(&p, &resigned, granted);
        }
    }
});

fn check(p: &Payload<'_>, input: &[u8], granted: u64) {
    let (key, _) = fuzz_key();
    let m = &p.manifest;
    assert!((1..=64).contains(&m.name.len()) && (1..=64).contains(&m.entry.len()));
    assert!(payload::abi(m.abi_version).is_ok());
    assert_eq!(m.capabilities & !caps::ALL, 0);
    assert_eq!(m.capabilities & !granted, 0);
    assert_eq!(p.signer, key.public());
    let elf_at = FIXED_LEN + m.name.len() + m.entry.len() + PUBLIC_KEY_LEN + SIGNATURE_LEN;
    assert_eq!(p.elf, &input[elf_at..], "the ELF is not the input's tail");
    assert_eq!(sha256(p.elf)[..], input[32..64]);
    assert_eq!(payload::build(m, p.elf, key), input, "parse then build is not the identity");
    if let Ok(img) = p.load(0x4000_0000, EXPORTS) {
        let len = img.bytes.len() as u64;
        assert!(len <= payload::MAX_IMAGE);
        for s in &img.segments {
            assert!(s.offset.checked_add(s.len).is_some_and(|e| e <= len), "segment outside the image");
        }
        assert!(img.segments.iter().any(|s| s.prot == Prot::ReadExec && img.entry >= s.offset && img.entry < s.offset + s.len));
    }
}

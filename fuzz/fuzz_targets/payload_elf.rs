//! Fuzzes `payload::load_elf`, the kernel's ELF loader (program headers, the
//! dynamic section, symbols, relocations, imports), on raw ELF bytes: the
//! payload container's signature only says who built the ELF, not that it is
//! well formed.
//!
//! The input is loaded at two bases. Either both refuse with the same error or
//! both give an image, and then:
//! - the image is at most `MAX_IMAGE`; every segment lies inside it, none overlap;
//! - the entry lies in an executable segment, at the same offset for both bases;
//! - the two images differ only inside writable segments (relocations write
//!   nowhere else, so text and read-only data are position independent).
#![no_main]
use bareflow_abi::payload::{self, Prot};
use libfuzzer_sys::fuzz_target;

const EXPORTS: &[(&str, u64)] = &[("bf_write", 0xffff_8000_0000_1000), ("bf_exit", 0xffff_8000_0000_2000), ("bf_time_nanos", 0x10)];
const BASE_A: u64 = 0x4000_0000;
const BASE_B: u64 = 0x7fff_f000_0000;

fuzz_target!(|data: &[u8]| {
    let a = payload::load_elf(data, BASE_A, payload::ABI_VERSION, EXPORTS, "run");
    let b = payload::load_elf(data, BASE_B, payload::ABI_VERSION, EXPORTS, "run");
    let (a, b) = match (a, b) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(ea), Err(eb)) => {
            assert_eq!(ea, eb, "the refusal depends on the base");
            // The same input for the older ABI: never a panic; an import ABI 1 lacks is its own refusal.
            if let Err(e) = payload::load_elf(data, BASE_A, 1, EXPORTS, "run") {
                let _ = e.to_string();
            }
            return;
        }
        (a, b) => panic!("one base loads, the other does not: {:?} / {:?}", a.err(), b.err()),
    };
    let len = a.bytes.len() as u64;
    assert_eq!(len, b.bytes.len() as u64);
    assert!(len <= payload::MAX_IMAGE);
    assert_eq!(a.segments, b.segments);
    assert_eq!(a.entry, b.entry);
    let mut segs = a.segments.clone();
    segs.sort_by_key(|s| s.offset);
    for s in &segs {
        assert!(s.offset.checked_add(s.len).is_some_and(|e| e <= len), "segment outside the image");
    }
    for w in segs.windows(2) {
        assert!(w[0].offset + w[0].len <= w[1].offset || w[0].len == 0 || w[1].len == 0, "segments overlap");
    }
    assert!(segs.iter().any(|s| s.prot == Prot::ReadExec && a.entry >= s.offset && a.entry < s.offset + s.len), "entry not in text");
    let writable = |at: u64| segs.iter().any(|s| s.prot == Prot::ReadWrite && at >= s.offset && at < s.offset + s.len);
    for (i, (x, y)) in a.bytes.iter().zip(&b.bytes).enumerate() {
        assert!(x == y || writable(i as u64), "byte {i:#x} outside writable segments depends on the base");
    }
});

//! Round trips and hostile input for the file archive.
extern crate std;

use super::*;
use alloc::string::String;
use alloc::vec;
use proptest::prelude::*;

fn sample() -> Vec<u8> {
    let mut b = ArchiveBuilder::new();
    b.add("data.txt", b"hello\n").unwrap();
    b.add("dir/model.bin", &[7u8; 100]).unwrap();
    b.add("empty", b"").unwrap();
    b.finish()
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn round_trip_and_lookup() {
    let bytes = sample();
    let a = Archive::parse(&bytes).unwrap();
    assert_eq!(a.len(), 3);
    assert_eq!(a.get("data.txt"), Some(&b"hello\n"[..]));
    assert_eq!(a.get("dir/model.bin"), Some(&[7u8; 100][..]));
    assert_eq!(a.get("empty"), Some(&b""[..]));
    assert_eq!(a.get("missing"), None);
    assert_eq!(a.get("dir"), None);
    let paths: Vec<&str> = a.entries().map(|(p, _)| p).collect();
    assert_eq!(paths, vec!["data.txt", "dir/model.bin", "empty"]);
}

#[test]
fn data_is_aligned() {
    let bytes = sample();
    let a = Archive::parse(&bytes).unwrap();
    let base = bytes.as_ptr() as usize;
    for (_, data) in a.entries().filter(|(_, d)| !d.is_empty()) {
        assert_eq!((data.as_ptr() as usize - base) % DATA_ALIGN, 0);
    }
}

#[test]
fn empty_archive_round_trips() {
    let bytes = ArchiveBuilder::new().finish();
    assert_eq!(bytes.len(), HEADER_LEN);
    let a = Archive::parse(&bytes).unwrap();
    assert!(a.is_empty());
}

#[test]
fn trailing_padding_is_ignored() {
    let mut bytes = sample();
    bytes.extend_from_slice(&[0u8; 4096]);
    assert_eq!(Archive::parse(&bytes).unwrap().get("data.txt"), Some(&b"hello\n"[..]));
}

#[test]
fn builder_rejects_bad_paths() {
    let mut b = ArchiveBuilder::new();
    b.add("a", b"1").unwrap();
    assert_eq!(b.add("a", b"2"), Err(ArchiveError::DuplicatePath));
    assert!(matches!(b.add("", b""), Err(ArchiveError::BadPath { .. })));
    assert!(matches!(b.add("/abs", b""), Err(ArchiveError::BadPath { .. })));
    assert!(matches!(b.add("a//b", b""), Err(ArchiveError::BadPath { .. })));
    assert!(matches!(b.add("a/", b""), Err(ArchiveError::BadPath { .. })));
    assert!(matches!(b.add("../x", b""), Err(ArchiveError::BadPath { .. })));
    assert!(matches!(b.add("x/./y", b""), Err(ArchiveError::BadPath { .. })));
    assert!(matches!(b.add("nul\0", b""), Err(ArchiveError::BadPath { .. })));
    let long = "x".repeat(MAX_PATH_LEN + 1);
    assert_eq!(b.add(&long, b""), Err(ArchiveError::PathTooLong { len: MAX_PATH_LEN + 1 }));
    b.add(&"y".repeat(MAX_PATH_LEN), b"").unwrap();
}

#[test]
fn header_errors() {
    assert_eq!(Archive::parse(&[]).unwrap_err(), ArchiveError::TooShort { len: 0 });
    let good = sample();
    let mut b = good.clone();
    b[0] = b'X';
    assert_eq!(Archive::parse(&b).unwrap_err(), ArchiveError::BadMagic);
    let mut b = good.clone();
    put_u32(&mut b, 8, 2);
    assert_eq!(Archive::parse(&b).unwrap_err(), ArchiveError::UnsupportedVersion { found: 2 });
    let mut b = good.clone();
    put_u32(&mut b, 12, u32::MAX);
    assert_eq!(Archive::parse(&b).unwrap_err(), ArchiveError::TooManyEntries { count: u32::MAX });
    let mut b = good.clone();
    put_u64(&mut b, 16, u64::MAX);
    assert!(matches!(Archive::parse(&b).unwrap_err(), ArchiveError::Truncated { .. }));
    let mut b = good.clone();
    put_u64(&mut b, 16, 3);
    assert!(matches!(Archive::parse(&b).unwrap_err(), ArchiveError::TooShort { len: 3 }));
}

#[test]
fn every_truncation_is_an_error() {
    let good = sample();
    for len in 0..good.len() {
        assert!(Archive::parse(&good[..len]).is_err(), "truncated to {len} bytes parsed");
    }
}

#[test]
fn entry_errors() {
    let good = sample();
    let e0 = HEADER_LEN; // first entry record ("data.txt")
    let e1 = HEADER_LEN + ENTRY_LEN; // second ("dir/model.bin")

    // Data offset past the end.
    let mut b = good.clone();
    put_u64(&mut b, e0 + 8, good.len() as u64);
    assert_eq!(Archive::parse(&b).unwrap_err(), ArchiveError::RangeOutOfBounds { index: 0 });
    // Length that overflows.
    let mut b = good.clone();
    put_u64(&mut b, e1 + 16, u64::MAX);
    assert_eq!(Archive::parse(&b).unwrap_err(), ArchiveError::RangeOutOfBounds { index: 1 });
    // Data pointing into the entry table.
    let mut b = good.clone();
    put_u64(&mut b, e0 + 8, HEADER_LEN as u64);
    assert_eq!(Archive::parse(&b).unwrap_err(), ArchiveError::RangeOutOfBounds { index: 0 });
    // Second file's data overlapping the first's.
    let mut b = good.clone();
    let first_data = u64::from_le_bytes(b[e0 + 8..e0 + 16].try_into().unwrap());
    put_u64(&mut b, e1 + 8, first_data);
    assert_eq!(Archive::parse(&b).unwrap_err(), ArchiveError::Overlap { index: 1 });
    // Two entries sharing one path (same range): overlap or duplicate, never accepted.
    let mut b = good.clone();
    b.copy_within(e0..e0 + 8, e1);
    assert!(Archive::parse(&b).is_err());
    // Reserved field set.
    let mut b = good.clone();
    put_u64(&mut b, e1 + 24, 1);
    assert_eq!(Archive::parse(&b).unwrap_err(), ArchiveError::ReservedNotZero { index: 1 });
    // Path bytes not UTF-8.
    let mut b = good.clone();
    let p0 = u32::from_le_bytes(b[e0..e0 + 4].try_into().unwrap()) as usize;
    b[p0] = 0xff;
    assert_eq!(Archive::parse(&b).unwrap_err(), ArchiveError::PathNotUtf8 { index: 0 });
    // A path made absolute.
    let mut b = good.clone();
    b[p0] = b'/';
    assert!(matches!(Archive::parse(&b).unwrap_err(), ArchiveError::BadPath { .. }));
    // Out of order: rename "data.txt" to "zata.txt".
    let mut b = good.clone();
    b[p0] = b'z';
    assert_eq!(Archive::parse(&b).unwrap_err(), ArchiveError::Unsorted { index: 1 });
}

#[test]
fn errors_say_what_is_wrong() {
    let msg = std::format!("{}", ArchiveError::Truncated { declared: 100, available: 10 });
    assert!(msg.contains("truncated") && msg.contains("100") && msg.contains("10"), "{msg}");
    let msg = std::format!("{}", ArchiveError::BadMagic);
    assert!(msg.contains("magic"), "{msg}");
}

fn path_strategy() -> impl Strategy<Value = String> {
    "[a-z0-9_é]{1,8}(/[a-z0-9.]{1,6}){0,2}".prop_filter("valid path", |p| check_path(p).is_ok())
}

proptest! {
    #[test]
    fn built_archives_round_trip(files in proptest::collection::btree_map(path_strategy(), proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
        let mut b = ArchiveBuilder::new();
        for (p, d) in &files {
            b.add(p, d).unwrap();
        }
        let bytes = b.finish();
        let a = Archive::parse(&bytes).unwrap();
        prop_assert_eq!(a.len(), files.len());
        for (p, d) in &files {
            prop_assert_eq!(a.get(p), Some(&d[..]));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Archive::parse(&bytes);
    }

    #[test]
    fn corrupted_archives_never_panic_and_stay_in_bounds(flips in proptest::collection::vec((0usize..400, any::<u8>()), 1..6)) {
        let mut bytes = sample();
        for (at, v) in flips {
            let at = at % bytes.len();
            bytes[at] = v;
        }
        if let Ok(a) = Archive::parse(&bytes) {
            for (p, d) in a.entries() {
                prop_assert!(check_path(p).is_ok());
                prop_assert!(d.len() <= bytes.len());
                prop_assert_eq!(a.get(p), Some(d));
            }
        }
    }
}

//! Round trips, signature checks and hostile input for the signed initfs.
extern crate std;

use super::*;
use crate::signature::SEED_LEN;
use alloc::format;
use alloc::string::ToString;
use alloc::vec;
use proptest::prelude::*;

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed([n; SEED_LEN])
}

fn trusted() -> TrustedKeys {
    TrustedKeys::new([key(1).public()])
}

fn sample() -> Vec<u8> {
    let mut b = InitfsBuilder::new();
    b.add("data.txt", 0o644, b"hello\n").unwrap();
    b.add("dir/model.bin", 0o100600, &[7u8; 100]).unwrap();
    b.add("dir/sub/x", 0o755, b"x").unwrap();
    b.add("empty", 0o444, b"").unwrap();
    b.finish(&key(1))
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Changes the sample with `edit` (header and table are fair game), re-signs it with the
/// trusted key and opens it: what a parser must survive even from a trusted packer.
fn resigned(edit: impl FnOnce(&mut Vec<u8>)) -> Result<usize, InitfsError> {
    let mut bytes = sample();
    edit(&mut bytes);
    sign_metadata(&mut bytes, &key(1));
    Initfs::open(&bytes, &trusted()).map(|fs| fs.len())
}

/// Offset of entry `i`'s record.
fn rec(i: usize) -> usize {
    HEADER_LEN + i * ENTRY_LEN
}

#[test]
fn round_trip_lookup_and_metadata() {
    let bytes = sample();
    let fs = Initfs::open(&bytes, &trusted()).unwrap();
    assert_eq!(fs.len(), 4);
    assert_eq!(fs.signer(), key(1).public());
    assert_eq!(fs.read("data.txt"), Ok(&b"hello\n"[..]));
    assert_eq!(fs.read("/dir/model.bin"), Ok(&[7u8; 100][..]));
    assert_eq!(fs.read("empty"), Ok(&b""[..]));
    assert_eq!(fs.read("missing"), Err(FileError::NotFound));
    assert_eq!(fs.read("dir"), Err(FileError::NotFound));
    let m = fs.metadata("dir/model.bin").unwrap();
    assert_eq!((m.len, m.mode, m.sha256), (100, 0o600, signature::sha256(&[7u8; 100])));
    assert_eq!(fs.metadata("dir/sub/x").unwrap().mode, 0o755);
    let paths: Vec<&str> = fs.entries().map(|(p, _)| p).collect();
    assert_eq!(paths, vec!["data.txt", "dir/model.bin", "dir/sub/x", "empty"]);
}

#[test]
fn directories_are_implied_by_paths() {
    let bytes = sample();
    let fs = Initfs::open(&bytes, &trusted()).unwrap();
    let names = |d: &str| -> Vec<(String, bool)> {
        fs.read_dir(d).unwrap().into_iter().map(|e| (e.name.to_string(), e.is_dir)).collect()
    };
    assert_eq!(
        names("/"),
        vec![("data.txt".into(), false), ("dir".into(), true), ("empty".into(), false)]
    );
    assert_eq!(names("dir"), vec![("model.bin".into(), false), ("sub".into(), true)]);
    assert_eq!(names("/dir/sub/"), vec![("x".into(), false)]);
    assert_eq!(fs.read_dir("data.txt"), None);
    assert_eq!(fs.read_dir("di"), None);
    assert!(fs.is_dir("dir/sub") && fs.is_dir("") && !fs.is_dir("dir/model.bin") && !fs.is_dir("nope"));
}

/// Found while writing the `initfs` fuzz target's invariants (review, not a fuzzer run):
/// `read_dir` listed names in full-path order, so a directory `a` came after a file
/// `a-b` (`-` sorts before `/`), and its documented "sorted and unique" did not hold.
#[test]
fn read_dir_is_sorted_by_name_not_by_path() {
    let mut b = InitfsBuilder::new();
    for p in ["a-b", "a/x", "a.c", "a0", "a/y/z"] {
        b.add(p, 0o644, b"").unwrap();
    }
    let bytes = b.finish(&key(1));
    let fs = Initfs::open(&bytes, &trusted()).unwrap();
    let names: Vec<(&str, bool)> = fs.read_dir("").unwrap().into_iter().map(|e| (e.name, e.is_dir)).collect();
    assert_eq!(names, vec![("a", true), ("a-b", false), ("a.c", false), ("a0", false)]);
    let names: Vec<(&str, bool)> = fs.read_dir("a").unwrap().into_iter().map(|e| (e.name, e.is_dir)).collect();
    assert_eq!(names, vec![("x", false), ("y", true)]);
}

#[test]
fn data_is_aligned_and_hash_checked_lazily() {
    let bytes = sample();
    let fs = Initfs::open(&bytes, &trusted()).unwrap();
    assert!(!fs.is_verified("dir/model.bin"), "nothing is hashed at open");
    let data = fs.read("dir/model.bin").unwrap();
    assert_eq!((data.as_ptr() as usize - bytes.as_ptr() as usize) % DATA_ALIGN, 0);
    assert!(fs.is_verified("dir/model.bin"));
    assert!(!fs.is_verified("data.txt"), "reading one file hashes only that file");
    fs.verify_all().unwrap();
    assert!(fs.is_verified("data.txt"));
}

#[test]
fn empty_initfs_round_trips() {
    let bytes = InitfsBuilder::new().finish(&key(1));
    let fs = Initfs::open(&bytes, &trusted()).unwrap();
    assert!(fs.is_empty());
    assert_eq!(fs.read_dir("/"), Some(vec![]));
}

#[test]
fn trailing_loader_padding_is_ignored() {
    let mut bytes = sample();
    bytes.extend_from_slice(&[0xee; 4096]);
    let fs = Initfs::open(&bytes, &trusted()).unwrap();
    fs.verify_all().unwrap();
}

#[test]
fn untrusted_or_missing_keys_refuse_the_whole_initfs() {
    let bytes = sample();
    let other = TrustedKeys::new([key(2).public()]);
    assert_eq!(
        Initfs::open(&bytes, &other).unwrap_err(),
        InitfsError::Signature(SignatureError::UntrustedKey { key: key(1).public() })
    );
    assert!(matches!(
        Initfs::open(&bytes, &TrustedKeys::default()),
        Err(InitfsError::Signature(SignatureError::UntrustedKey { .. }))
    ));
    // A trusted key swapped into the signature block does not make the signature fit.
    let mut swapped = bytes.clone();
    let meta = u64_at(&swapped, 16) as usize;
    swapped[meta..meta + 32].copy_from_slice(&key(2).public().0);
    let both = TrustedKeys::new([key(1).public(), key(2).public()]);
    assert_eq!(Initfs::open(&swapped, &both).unwrap_err(), InitfsError::Signature(SignatureError::BadSignature));
}

#[test]
fn tampered_file_is_refused_at_first_read_naming_the_entry() {
    let mut bytes = sample();
    let off = u64_at(&bytes, rec(1) + 16) as usize;
    bytes[off + 50] ^= 0x80;
    let fs = Initfs::open(&bytes, &trusted()).expect("the signed metadata is intact");
    assert_eq!(fs.read("data.txt"), Ok(&b"hello\n"[..]));
    let e = fs.read("dir/model.bin").unwrap_err();
    assert_eq!(e, FileError::Tampered { path: "dir/model.bin" });
    assert!(e.to_string().contains("`dir/model.bin`"), "{e}");
    assert_eq!(fs.read("dir/model.bin"), Err(e), "the verdict sticks");
    assert_eq!(fs.verify_all(), Err(e));
}

#[test]
fn every_flipped_byte_is_caught_where_it_matters() {
    let good = sample();
    let fs = Initfs::open(&good, &trusted()).unwrap();
    let ranges: Vec<(&str, usize, usize)> = fs
        .entries()
        .map(|(p, m)| {
            let d = fs.read(p).unwrap();
            let at = d.as_ptr() as usize - good.as_ptr() as usize;
            (p, at, at + m.len as usize)
        })
        .collect();
    let meta = u64_at(&good, 16) as usize;
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        let r = Initfs::open(&bad, &trusted());
        if i < meta + SIG_BLOCK_LEN {
            assert!(r.is_err(), "flipped metadata/signature byte {i} was accepted");
            continue;
        }
        let fs = r.unwrap_or_else(|e| panic!("flipped data byte {i} refused the whole initfs: {e}"));
        for &(path, start, end) in &ranges {
            if (start..end).contains(&i) {
                assert_eq!(fs.read(path), Err(FileError::Tampered { path }), "byte {i}");
            } else {
                assert!(fs.read(path).is_ok(), "byte {i} broke `{path}`");
            }
        }
    }
}

#[test]
fn every_truncation_is_refused() {
    let good = sample();
    for len in 0..good.len() {
        assert!(Initfs::open(&good[..len], &trusted()).is_err(), "truncated to {len} bytes and accepted");
    }
    assert_eq!(Initfs::open(&good[..10], &trusted()).unwrap_err(), InitfsError::TooShort { len: 10 });
    let cut = good.len() - 1;
    assert_eq!(
        Initfs::open(&good[..cut], &trusted()).unwrap_err(),
        InitfsError::Truncated { declared: good.len() as u64, available: cut }
    );
}

#[test]
fn header_problems_have_their_own_errors() {
    let good = sample();
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        Initfs::open(&b, &trusted()).unwrap_err()
    };
    assert_eq!(with(&|b| b[0] = b'X'), InitfsError::BadMagic);
    assert_eq!(with(&|b| put_u32(b, 8, 2)), InitfsError::UnsupportedVersion { found: 2 });
    assert_eq!(with(&|b| put_u32(b, 32, 7)), InitfsError::UnsupportedAlgorithm { found: 7 });
    assert_eq!(with(&|b| b[40] = 1), InitfsError::HeaderReservedNotZero);
    assert_eq!(with(&|b| put_u64(b, 16, u64::MAX)), InitfsError::BadMetadataLength { declared: u64::MAX });
    assert_eq!(with(&|b| put_u64(b, 16, 3)), InitfsError::BadMetadataLength { declared: 3 });
    assert!(matches!(with(&|b| put_u64(b, 24, u64::MAX)), InitfsError::Truncated { .. }));
    // Not a BareFlow initfs at all: the old archive format.
    let mut old = crate::archive::ArchiveBuilder::new();
    old.add("a", &[0u8; 200]).unwrap();
    assert_eq!(Initfs::open(&old.finish(), &trusted()).unwrap_err(), InitfsError::BadMagic);
}

#[test]
fn hostile_tables_signed_by_a_trusted_key_are_still_refused() {
    assert_eq!(resigned(|_| {}), Ok(4));
    assert_eq!(resigned(|b| put_u32(b, 12, u32::MAX)), Err(InitfsError::TooManyEntries { count: u32::MAX }));
    assert_eq!(resigned(|b| put_u32(b, 12, 5)), Err(InitfsError::TooManyEntries { count: 5 }));
    // Path pointing into the table, past the metadata, or overflowing.
    assert_eq!(resigned(|b| put_u32(b, rec(0), 0)), Err(InitfsError::RangeOutOfBounds { index: 0 }));
    assert_eq!(resigned(|b| put_u32(b, rec(2) + 4, 10_000)), Err(InitfsError::RangeOutOfBounds { index: 2 }));
    // Data inside the metadata or signature block, past the end, or overflowing u64.
    assert_eq!(resigned(|b| put_u64(b, rec(1) + 16, 0)), Err(InitfsError::RangeOutOfBounds { index: 1 }));
    assert_eq!(resigned(|b| put_u64(b, rec(1) + 24, 1 << 40)), Err(InitfsError::RangeOutOfBounds { index: 1 }));
    assert_eq!(resigned(|b| put_u64(b, rec(1) + 16, u64::MAX - 3)), Err(InitfsError::RangeOutOfBounds { index: 1 }));
    // Two files sharing bytes; two paths sharing bytes.
    assert_eq!(
        resigned(|b| {
            let d0 = u64_at(b, rec(0) + 16);
            put_u64(b, rec(1) + 16, d0);
        }),
        Err(InitfsError::Overlap { index: 1 })
    );
    assert!(matches!(
        resigned(|b| {
            let p0 = u32_at(b, rec(0));
            put_u32(b, rec(3), p0);
            put_u32(b, rec(3) + 4, 4);
        }),
        Err(InitfsError::Overlap { .. }) | Err(InitfsError::Unsorted { .. })
    ));
    assert_eq!(resigned(|b| put_u32(b, rec(0) + 8, 0o100644)), Err(InitfsError::BadMode { index: 0, mode: 0o100644 }));
    assert_eq!(resigned(|b| put_u32(b, rec(0) + 12, 1)), Err(InitfsError::ReservedNotZero { index: 0 }));
    // Paths: reorder two records, make one `..`, make one invalid UTF-8.
    assert_eq!(
        resigned(|b| {
            let (a, c) = (rec(0), rec(3));
            let first: Vec<u8> = b[a..a + ENTRY_LEN].to_vec();
            let last: Vec<u8> = b[c..c + ENTRY_LEN].to_vec();
            b[a..a + ENTRY_LEN].copy_from_slice(&last);
            b[c..c + ENTRY_LEN].copy_from_slice(&first);
        }),
        Err(InitfsError::Unsorted { index: 1 })
    );
    let path0 = |b: &Vec<u8>| u32_at(b, rec(0)) as usize;
    assert!(matches!(
        resigned(|b| {
            let p = path0(b);
            b[p..p + 2].copy_from_slice(b"..");
            b[p + 2] = b'/';
        }),
        Err(InitfsError::BadPath { .. })
    ));
    assert_eq!(
        resigned(|b| {
            let p = path0(b);
            b[p] = 0xff;
        }),
        Err(InitfsError::PathNotUtf8 { index: 0 })
    );
    assert_eq!(
        resigned(|b| {
            let p = path0(b);
            b[p..p + 8].copy_from_slice(b"zzzzzzzz");
        }),
        Err(InitfsError::Unsorted { index: 1 })
    );
}

#[test]
fn builder_refuses_bad_paths_and_duplicates() {
    let mut b = InitfsBuilder::new();
    b.add("a/b", 0o644, b"1").unwrap();
    assert_eq!(b.add("a/b", 0o644, b"2"), Err(InitfsError::DuplicatePath));
    for (bad, reason) in [("", "empty"), ("/abs", "relative"), ("a//b", "empty component"), ("a/../b", "`..`"), ("a/", "trailing")] {
        let e = b.add(bad, 0, b"").unwrap_err();
        assert!(e.to_string().contains(reason), "{bad:?}: {e}");
    }
    let long = "x".repeat(MAX_PATH_LEN + 1);
    assert_eq!(b.add(&long, 0, b""), Err(InitfsError::PathTooLong { len: MAX_PATH_LEN + 1 }));
    assert!(format!("{}", InitfsError::Signature(SignatureError::BadSignature)).contains("altered"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_file_sets_round_trip(files in proptest::collection::btree_map("[a-z]{1,6}(/[a-z]{1,6}){0,2}", (0u32..0o7777, proptest::collection::vec(any::<u8>(), 0..300)), 0..12)) {
        let mut b = InitfsBuilder::new();
        let mut kept = std::collections::BTreeMap::new();
        for (p, (mode, data)) in &files {
            // A path that is also a directory of another is still a valid, distinct entry.
            b.add(p, *mode, data).unwrap();
            kept.insert(p.clone(), (*mode, data.clone()));
        }
        let bytes = b.finish(&key(1));
        let fs = Initfs::open(&bytes, &trusted()).unwrap();
        prop_assert_eq!(fs.len(), kept.len());
        for (p, (mode, data)) in &kept {
            prop_assert_eq!(fs.read(p).unwrap(), &data[..]);
            prop_assert_eq!(fs.metadata(p).unwrap().mode, *mode);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Initfs::open(&bytes, &trusted());
    }

    #[test]
    fn random_bytes_behind_a_valid_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..600), count in 0u32..20, meta in 0u64..800, total in 0u64..900) {
        let mut bytes = sample()[..HEADER_LEN].to_vec();
        put_u32(&mut bytes, 12, count);
        put_u64(&mut bytes, 16, meta);
        put_u64(&mut bytes, 24, total);
        bytes.extend_from_slice(&tail);
        if (meta as usize) + SIG_BLOCK_LEN <= bytes.len() && meta >= HEADER_LEN as u64 {
            sign_metadata(&mut bytes, &key(1));
        }
        if let Ok(fs) = Initfs::open(&bytes, &trusted()) {
            let paths: Vec<&str> = fs.entries().map(|(p, _)| p).collect();
            for p in paths {
                let _ = fs.read(p);
            }
            let _ = fs.read_dir("/");
        }
    }
}

//! Fuzzes `Initfs::open`, the signed initfs the kernel receives at boot, and
//! every accessor of what it accepts.
//!
//! Each input is opened twice: as it is (its signature must hold, so only the
//! seeds, signed with the fuzz key, get past it), and after `sign_metadata` has
//! re-signed its metadata with the fuzz key, so that hostile tables reach the
//! checks behind the signature. Whatever opens must keep these invariants:
//! - every path follows `check_path`, paths are strictly sorted, modes lie in `MODE_MASK`;
//! - `metadata` finds every entry, with a leading `/` too; a made-up path is `NotFound`;
//! - `read` hands out a slice inside the input, after the signature block, of
//!   the signed length, not overlapping another file's; it is `Ok` exactly when
//!   its SHA-256 matches the table, and the verdict is remembered;
//! - `read_dir` of each entry's parent lists its last component, `is_dir` agrees;
//! - repacking the intact files with `InitfsBuilder` and opening that gives the same
//!   paths, modes and contents, and repacking once more is byte-identical.
#![no_main]
use bareflow_abi::initfs::{self, FileError, Initfs, InitfsBuilder, MODE_MASK, SIG_BLOCK_LEN};
use bareflow_abi::signature::sha256;
use bareflow_llm_fuzz::{fuzz_key, range_in};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (key, trusted) = fuzz_key();
    if let Ok(fs) = Initfs::open(data, trusted) {
        check(&fs, data);
    }
    let mut signed = data.to_vec();
    let meta = signed.get(16..24).map(|b| u64::from_le_bytes(b.try_into().unwrap()));
    let fits = meta.and_then(|m| usize::try_from(m).ok()).and_then(|m| m.checked_add(SIG_BLOCK_LEN)).is_some_and(|end| end <= signed.len());
    if fits {
        initfs::sign_metadata(&mut signed, key);
        if let Ok(fs) = Initfs::open(&signed, trusted) {
            check(&fs, &signed);
            round_trip(&fs);
        }
    }
});

fn check(fs: &Initfs<'_>, input: &[u8]) {
    let meta_len = u64::from_le_bytes(input[16..24].try_into().unwrap()) as usize;
    let entries: Vec<_> = fs.entries().collect();
    assert_eq!(entries.len(), fs.len());
    assert_eq!(fs.is_empty(), entries.is_empty());
    let mut data_ranges = Vec::new();
    for (i, &(path, meta)) in entries.iter().enumerate() {
        initfs::check_path(path).expect("an accepted path breaks the path rules");
        assert!(range_in(input, path.as_bytes()).is_some_and(|r| r.end <= meta_len), "path outside the metadata");
        if i > 0 {
            assert!(entries[i - 1].0 < path, "entries not strictly sorted");
        }
        assert_eq!(meta.mode & !MODE_MASK, 0);
        assert_eq!(fs.metadata(path), Some(meta));
        assert_eq!(fs.metadata(&format!("/{path}")), Some(meta));
        match fs.read(path) {
            Ok(bytes) => {
                assert_eq!(bytes.len() as u64, meta.len);
                assert_eq!(sha256(bytes), meta.sha256);
                assert!(fs.is_verified(path));
                if !bytes.is_empty() {
                    let r = range_in(input, bytes).expect("file data outside the input");
                    assert!(r.start >= meta_len + SIG_BLOCK_LEN, "file data inside the signed metadata");
                    data_ranges.push(r);
                }
            }
            Err(FileError::Tampered { path: p }) => {
                assert_eq!(p, path);
                assert!(!fs.is_verified(path));
                // The verdict is remembered.
                assert_eq!(fs.read(path), Err(FileError::Tampered { path }));
            }
            Err(FileError::NotFound) => panic!("listed entry {path:?} not found"),
        }
        if i < 64 {
            let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
            assert!(fs.is_dir(parent));
            let listing = fs.read_dir(parent).expect("parent of an entry is not a directory");
            assert!(listing.iter().any(|d| d.name == name && !d.is_dir), "{name:?} missing from read_dir({parent:?})");
            assert!(listing.windows(2).all(|w| w[0].name < w[1].name), "read_dir not sorted and unique");
            assert!(!fs.is_dir(path) || entries.iter().any(|(p, _)| p.len() > path.len() && p.starts_with(path)));
        }
    }
    data_ranges.sort_by_key(|r| r.start);
    assert!(data_ranges.windows(2).all(|w| w[0].end <= w[1].start), "two files share bytes");
    assert!(fs.read_dir("").is_some() && fs.read_dir("/").is_some());
    assert_eq!(fs.read("no/such/file\u{0}"), Err(FileError::NotFound));
    assert_eq!(fs.verify_all().is_ok(), entries.iter().all(|(p, _)| fs.is_verified(p)));
}

/// Repacks the files that read back intact (a tampered file's bytes cannot be read).
fn round_trip(fs: &Initfs<'_>) {
    let (key, trusted) = fuzz_key();
    let intact = |fs: &Initfs<'_>| -> Vec<(String, u32, Vec<u8>)> {
        fs.entries().filter_map(|(p, m)| fs.read(p).ok().map(|b| (p.to_string(), m.mode, b.to_vec()))).collect()
    };
    let repack = |files: &[(String, u32, Vec<u8>)]| {
        let mut b = InitfsBuilder::new();
        for (path, mode, bytes) in files {
            b.add(path, *mode, bytes).expect("builder refuses what open accepted");
        }
        b.finish(key)
    };
    let files = intact(fs);
    let packed = repack(&files);
    let again = Initfs::open(&packed, trusted).expect("open refuses what the builder wrote");
    again.verify_all().expect("a repacked file does not match its hash");
    assert_eq!(intact(&again), files, "paths, modes or contents changed through a repack");
    assert_eq!(repack(&intact(&again)), packed, "repacking is not deterministic");
}

//! Fuzzes the kernel command line (`Cmdline::parse`), which the boot loader
//! hands over as it likes (GRUB and QEMU add tokens of their own).
//!
//! Input: the command line, then any number of strings, each after a 0xFF byte
//! (never UTF-8, so it cannot occur inside one); invalid UTF-8 is decoded lossily.
//! Invariants:
//! - parse → encode → parse gives the same `Cmdline`, and encoding is then stable;
//! - a `Cmdline` built from the strings (options from the first half, paired,
//!   arguments from the rest) survives encode → parse unchanged: any string
//!   round-trips, including empty ones, `--`, `=`, spaces, `%`, NUL and non-ASCII;
//! - `unescape(escape(s)) == s`, and `escape` never writes whitespace;
//! - `get` returns the last value of a key.
#![no_main]
use bareflow_abi::cmdline::{Cmdline, escape, unescape};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xff).map(|p| String::from_utf8_lossy(p).into_owned());
    let line = parts.next().unwrap_or_default();
    let strings: Vec<String> = parts.collect();

    let parsed = Cmdline::parse(&line);
    let encoded = parsed.encode();
    let reparsed = Cmdline::parse(&encoded);
    assert_eq!(reparsed, parsed, "parse → encode → parse changed the command line {line:?} (encoded {encoded:?})");
    assert_eq!(reparsed.encode(), encoded, "encoding is not stable");
    for (k, v) in &parsed.options {
        let last = parsed.options.iter().rev().find(|(k2, _)| k2 == k).map(|(_, v)| v.as_str());
        assert_eq!(parsed.get(k), last);
        let _ = v;
    }

    let half = strings.len() / 2 & !1;
    let mut built = Cmdline::default();
    for kv in strings[..half].chunks_exact(2) {
        built = built.with_option(kv[0].clone(), kv[1].clone());
    }
    for a in &strings[half..] {
        built = built.with_arg(a.clone());
    }
    let encoded = built.encode();
    assert_eq!(Cmdline::parse(&encoded), built, "a built command line did not survive encode → parse (encoded {encoded:?})");
    for s in &strings {
        let e = escape(s);
        assert!(!e.is_empty() && !e.bytes().any(|b| b.is_ascii_whitespace()), "escape({s:?}) = {e:?}");
        assert_eq!(&unescape(&e), s, "unescape(escape(s)) != s");
    }
});

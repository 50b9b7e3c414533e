//! The kernel command line: how the CLI hands configuration and arguments to an image.
//!
//! Grammar: whitespace-separated tokens. Before a lone `--`, every token is an option
//! `KEY=VALUE` (configuration for the app; keys starting with `bareflow.` are for the
//! kernel). After it, every token is an argument of the app. Keys, values and arguments
//! are percent-encoded ([`escape`]) so that any string round-trips, including ones with
//! spaces, `=` or non-ASCII characters; the empty string is written `""`.
//!
//! Tokens before `--` without `=` (QEMU or GRUB may add some) become options with an
//! empty value. Parsing never fails: a malformed escape is kept as written, and a
//! token that decodes to bytes which are not UTF-8 is kept as written too, with
//! its place recorded ([`Cmdline::non_utf8_args`]) so that the app can refuse it
//! with a clear error instead of reading the escape as text.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

/// The separator between options and the app's arguments.
pub const SEPARATOR: &str = "--";
/// How the empty string is written (a bare empty token would vanish between spaces).
const EMPTY: &str = "\"\"";

/// A parsed (or to-be-encoded) kernel command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    /// `KEY=VALUE` options in command-line order (duplicates kept; [`Cmdline::get`] takes the last).
    pub options: Vec<(String, String)>,
    /// The app's arguments (the app's name is not included).
    pub args: Vec<String>,
    /// The indexes in `args` of arguments whose escapes decode to bytes that are
    /// not UTF-8 (those arguments hold the token as written), with those bytes.
    pub non_utf8_args: Vec<(usize, Vec<u8>)>,
}

impl Cmdline {
    /// Parses a command line. Never fails; see the module documentation for the rules.
    pub fn parse(s: &str) -> Cmdline {
        let mut out = Cmdline::default();
        let mut in_args = false;
        for token in s.split(|c: char| c.is_ascii_whitespace()).filter(|t| !t.is_empty()) {
            if in_args {
                match unescape_bytes(token) {
                    Some(bytes) => match String::from_utf8(bytes) {
                        Ok(a) => out.args.push(a),
                        Err(e) => {
                            out.non_utf8_args.push((out.args.len(), e.into_bytes()));
                            out.args.push(String::from(token));
                        }
                    },
                    None => out.args.push(String::new()),
                }
            } else if token == SEPARATOR {
                in_args = true;
            } else {
                match token.split_once('=') {
                    Some((k, v)) => out.options.push((unescape(k), unescape(v))),
                    None => out.options.push((unescape(token), String::new())),
                }
            }
        }
        out
    }

    /// Encodes the command line so that [`Cmdline::parse`] gives it back unchanged.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.options {
            push_token(&mut out, &escape(k));
            out.push('=');
            // `escape("")` is `""`, but `KEY=` already says "empty": keep it short.
            if !v.is_empty() {
                out.push_str(&escape(v));
            }
        }
        push_token(&mut out, SEPARATOR);
        for a in &self.args {
            push_token(&mut out, &escape(a));
        }
        out
    }

    /// The value of option `key` (the last one if it appears several times).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.options.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Adds an option (builder style).
    pub fn with_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Cmdline {
        self.options.push((key.into(), value.into()));
        self
    }

    /// Adds an argument (builder style).
    pub fn with_arg(mut self, arg: impl Into<String>) -> Cmdline {
        self.args.push(arg.into());
        self
    }
}

fn push_token(out: &mut String, token: &str) {
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(token);
}

/// Whether byte `b` is written as `%XX`: space, `%`, `=`, `"`, control and non-ASCII bytes.
fn needs_escape(b: u8) -> bool {
    !(0x21..0x7f).contains(&b) || matches!(b, b'%' | b'=' | b'"')
}

/// Percent-encodes one key, value or argument (`""` for the empty string).
pub fn escape(s: &str) -> String {
    escape_bytes(s.as_bytes())
}

/// Percent-encodes any bytes, UTF-8 or not (what a hand-written command line
/// may carry; [`Cmdline::parse`] records the non-UTF-8 ones).
pub fn escape_bytes(s: &[u8]) -> String {
    if s.is_empty() {
        return String::from(EMPTY);
    }
    let mut out = String::with_capacity(s.len());
    for &b in s {
        if needs_escape(b) {
            // Writing into a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// Decodes one token; a malformed escape or a non-UTF-8 result keeps the token as written.
pub fn unescape(token: &str) -> String {
    match unescape_bytes(token) {
        None => String::new(),
        Some(out) => String::from_utf8(out).unwrap_or_else(|_| String::from(token)),
    }
}

/// Decodes one token to its bytes (`None` for the empty string's `""`); a
/// malformed escape stays as written.
fn unescape_bytes(token: &str) -> Option<Vec<u8>> {
    if token == EMPTY {
        return None;
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| Some((hex_val(h[0])?, hex_val(h[1])?)));
            if let Some((hi, lo)) = hex {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    Some(out)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;
    use alloc::vec;

    fn s(x: &str) -> String {
        x.to_string()
    }

    #[test]
    fn parses_options_separator_and_args() {
        let c = Cmdline::parse("bareflow.app=hello GREET=tester -- a b");
        assert_eq!(c.options, vec![(s("bareflow.app"), s("hello")), (s("GREET"), s("tester"))]);
        assert_eq!(c.args, vec![s("a"), s("b")]);
        assert_eq!(c.get("GREET"), Some("tester"));
        assert_eq!(c.get("missing"), None);
    }

    #[test]
    fn last_option_wins() {
        let c = Cmdline::parse("K=1 K=2 -- x");
        assert_eq!(c.get("K"), Some("2"));
        assert_eq!(c.options.len(), 2);
    }

    #[test]
    fn foreign_tokens_become_empty_options_and_extra_whitespace_is_ignored() {
        let c = Cmdline::parse("  console=ttyS0\tquiet \n --  x  ");
        assert_eq!(c.options, vec![(s("console"), s("ttyS0")), (s("quiet"), s(""))]);
        assert_eq!(c.args, vec![s("x")]);
    }

    #[test]
    fn without_separator_everything_is_an_option() {
        let c = Cmdline::parse("a=1 b");
        assert_eq!(c.options.len(), 2);
        assert!(c.args.is_empty());
    }

    #[test]
    fn separator_after_separator_is_an_argument() {
        let c = Cmdline::parse("-- -- x=1");
        assert!(c.options.is_empty());
        assert_eq!(c.args, vec![s("--"), s("x=1")]);
    }

    #[test]
    fn hard_strings_round_trip() {
        let c = Cmdline::default()
            .with_option("bareflow.app", "hello")
            .with_option("K EY", "a=b c%d")
            .with_option("", "")
            .with_option("--", "\"quoted\"")
            .with_option("ünï", "\u{1F600}\t\n\0")
            .with_arg("")
            .with_arg("b c")
            .with_arg("--")
            .with_arg("%zz")
            .with_arg("%41")
            .with_arg("\"\"");
        let text = c.encode();
        assert!(text.is_ascii(), "{text}");
        assert_eq!(Cmdline::parse(&text), c);
    }

    #[test]
    fn encoding_is_plain_for_plain_strings() {
        let c = Cmdline::default().with_option("bareflow.app", "hello").with_arg("a").with_arg("b c");
        assert_eq!(c.encode(), "bareflow.app=hello -- a b%20c");
    }

    #[test]
    fn bad_escapes_are_kept_literally() {
        let c = Cmdline::parse("-- %zz %4 % %ff%fe 100% %41");
        assert_eq!(c.args, vec![s("%zz"), s("%4"), s("%"), s("%ff%fe"), s("100%"), s("A")]);
        // "%ff%fe" is well-formed but not UTF-8: kept as written, and its place recorded.
        assert_eq!(c.non_utf8_args, vec![(3, vec![0xff, 0xfe])]);
    }

    #[test]
    fn non_utf8_arguments_are_recorded_with_their_bytes() {
        let c = Cmdline::parse(&format!("K=v -- -i {} ok%C3%A9 x", escape_bytes(b"hi \xff there")));
        assert_eq!(c.args.len(), 4);
        assert_eq!(c.args[2], s("ok\u{e9}"));
        assert_eq!(c.non_utf8_args, vec![(1, b"hi \xff there".to_vec())]);
        // Valid text records nothing.
        assert!(Cmdline::parse(&Cmdline::default().with_arg("é \u{1F600}").encode()).non_utf8_args.is_empty());
    }

    #[test]
    fn raw_non_ascii_input_is_kept() {
        let c = Cmdline::parse("clé=välue -- ärg");
        assert_eq!(c.get("clé"), Some("välue"));
        assert_eq!(c.args, vec![s("ärg")]);
    }

    #[test]
    fn pseudo_random_strings_round_trip() {
        // xorshift: deterministic, covers every byte class the encoder treats specially.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let alphabet = ['a', 'Z', ' ', '%', '=', '"', '-', '\t', '\0', 'é', '\u{1F600}', '1', 'f'];
        for _ in 0..500 {
            let mut c = Cmdline::default();
            for slot in 0..6 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let len = (x % 6) as usize;
                let word: String = (0..len).map(|i| alphabet[((x >> (i * 5)) % 13) as usize]).collect();
                match slot % 3 {
                    0 => c.options.push((word.clone(), word)),
                    _ => c.args.push(word),
                }
            }
            assert_eq!(Cmdline::parse(&c.encode()), c);
        }
    }
}

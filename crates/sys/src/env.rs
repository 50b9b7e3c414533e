//! The app's arguments and its environment-style configuration.
//!
//! In the image both come from the kernel command line (`KEY=VALUE ... -- ARGS`,
//! see `bareflow_abi::cmdline`); hosted they are the process's own.
use alloc::string::String;
use alloc::vec::Vec;

/// The app's arguments, the program name first.
pub fn args() -> Vec<String> {
    crate::backend::args()
}

/// The app's arguments as [`args`] gives them, or the first one that is not
/// UTF-8 text (hosted, a byte string from the shell; in the image, an escape in
/// the command line that decodes to such bytes), for an app that must not read
/// a replacement character or an escape as the user's text.
pub fn try_args() -> Result<Vec<String>, NonUtf8Arg> {
    crate::backend::try_args()
}

/// An argument that is not UTF-8: where it is and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonUtf8Arg {
    /// Its index in [`args`] (0 is the program's name).
    pub index: usize,
    /// The argument's bytes.
    pub bytes: Vec<u8>,
}

impl core::fmt::Display for NonUtf8Arg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let at = core::str::from_utf8(&self.bytes).err().map_or(0, |e| e.valid_up_to());
        write!(
            f,
            "argument {} ({:?}) is not valid UTF-8: byte 0x{:02x} at offset {at} starts no UTF-8 character; give the argument as UTF-8 text",
            self.index,
            String::from_utf8_lossy(&self.bytes),
            self.bytes.get(at).copied().unwrap_or(0),
        )
    }
}

/// The value of configuration variable `key`, if set.
pub fn var(key: &str) -> Option<String> {
    crate::backend::var(key)
}

/// Every configuration variable.
pub fn vars() -> Vec<(String, String)> {
    crate::backend::vars()
}

#[cfg(test)]
mod tests {
    use super::NonUtf8Arg;
    use alloc::string::ToString;

    #[test]
    fn non_utf8_arg_names_its_place_and_byte() {
        let e = NonUtf8Arg { index: 3, bytes: b"ab\xffc".to_vec() };
        let m = e.to_string();
        assert!(m.contains("argument 3"), "{m}");
        assert!(m.contains("byte 0xff at offset 2"), "{m}");
        assert!(m.contains("ab\u{fffd}c"), "{m}");
    }
}

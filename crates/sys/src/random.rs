//! Random bytes from the system's entropy source: in the image the host's
//! virtio-rng or the CPU's RDSEED/RDRAND; hosted, the kernel's `getrandom`.
use alloc::string::String;
use core::fmt;

/// No entropy could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Fills `buf` with random bytes suitable for keys and nonces.
pub fn fill(buf: &mut [u8]) -> Result<(), Error> {
    crate::backend::random_fill(buf)
}

/// A random `u64`.
pub fn u64() -> Result<u64, Error> {
    let mut b = [0u8; 8];
    fill(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosted_bytes_are_not_all_equal() {
        let mut a = [0u8; 64];
        super::fill(&mut a).expect("getrandom works on Linux");
        assert!(a.iter().any(|&x| x != a[0]), "64 random bytes all equal: {a:?}");
        assert_ne!(super::u64().unwrap(), super::u64().unwrap());
    }
}

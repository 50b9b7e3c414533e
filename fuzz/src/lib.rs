//! Helpers shared by the fuzz targets: the key they trust and re-sign with, and
//! the "this slice lies inside that one" check.
use bareflow_abi::signature::{SecretKey, TrustedKeys};
use std::sync::OnceLock;

/// Seed of the key every signed fuzz seed is signed with (`fuzz/seedgen` uses the same).
pub const FUZZ_KEY_SEED: [u8; 32] = [0x5a; 32];

/// The fuzz key and a trust list holding only its public half.
pub fn fuzz_key() -> &'static (SecretKey, TrustedKeys) {
    static KEY: OnceLock<(SecretKey, TrustedKeys)> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = SecretKey::from_seed(FUZZ_KEY_SEED);
        let trusted = TrustedKeys::new([key.public()]);
        (key, trusted)
    })
}

/// The byte range of `part` within `whole`, if `part` lies entirely inside it.
pub fn range_in(whole: &[u8], part: &[u8]) -> Option<core::ops::Range<usize>> {
    let (w, p) = (whole.as_ptr() as usize, part.as_ptr() as usize);
    let start = p.checked_sub(w)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some(start..end)
}

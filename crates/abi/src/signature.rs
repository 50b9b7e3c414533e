//! Ed25519 signatures as BareFlow uses them: the detached signature envelope
//! (`cargo bareflow sign FILE` writes `FILE.sig`), the list of trusted public
//! keys an image embeds, and the two hashing/verifying helpers every signed
//! format here shares.
//!
//! A signature never covers a large file directly: it covers a small header that
//! holds the file's length and SHA-256. Checking a file is then one hash pass and
//! one Ed25519 check over a few dozen bytes, and the header's magic separates the
//! formats, so a signature made for one can never pass as another.
//!
//! Envelope layout (all integers little-endian), [`ENVELOPE_LEN`] bytes:
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | magic `BFSIGN\0\0` |
//! | 8..12 | format version, [`ENVELOPE_VERSION`] |
//! | 12..16 | algorithm, [`ALG_ED25519`] |
//! | 16..24 | length of the signed file in bytes |
//! | 24..56 | SHA-256 of the signed file |
//! | 56..88 | the signer's Ed25519 public key |
//! | 88..152 | Ed25519 signature over bytes 0..88 |
//!
//! Trusted-key list layout: magic `BFKEYS\0\0`, version `u32` (1), count `u32`,
//! then `count` 32-byte Ed25519 public keys, nothing after them.

use alloc::vec::Vec;
use core::fmt;
use sha2::Digest as _;

/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;
/// Length of an Ed25519 seed (the private key as stored).
pub const SEED_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// First eight bytes of a detached signature envelope.
pub const ENVELOPE_MAGIC: [u8; 8] = *b"BFSIGN\0\0";
/// The envelope version this code reads and writes.
pub const ENVELOPE_VERSION: u32 = 1;
/// Algorithm number of Ed25519 (the only one).
pub const ALG_ED25519: u32 = 1;
/// Bytes of the envelope covered by its signature.
pub const ENVELOPE_SIGNED_LEN: usize = 88;
/// Size of an envelope.
pub const ENVELOPE_LEN: usize = ENVELOPE_SIGNED_LEN + SIGNATURE_LEN;
/// First eight bytes of a trusted-key list.
pub const KEYS_MAGIC: [u8; 8] = *b"BFKEYS\0\0";
/// The trusted-key list version this code reads and writes.
pub const KEYS_VERSION: u32 = 1;
/// Size of a trusted-key list's header.
pub const KEYS_HEADER_LEN: usize = 16;

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(bytes).into()
}

/// An Ed25519 public key (32 bytes, not yet known to be a valid curve point).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; PUBLIC_KEY_LEN]);

impl PublicKey {
    /// The key as lowercase hex, for key lists and messages.
    pub fn hex(&self) -> HexKey<'_> {
        HexKey(&self.0)
    }

    /// Whether `signature` is this key's Ed25519 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
        let Ok(pk) = ed25519_compact::PublicKey::from_slice(&self.0) else { return false };
        pk.verify(message, &ed25519_compact::Signature::new(*signature)).is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.hex())
    }
}

/// Lowercase hex of a key (see [`PublicKey::hex`]).
pub struct HexKey<'a>(&'a [u8]);

impl fmt::Display for HexKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// An Ed25519 private key: the 32-byte seed. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct SecretKey {
    seed: [u8; SEED_LEN],
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public {})", self.public().hex())
    }
}

impl SecretKey {
    /// The key whose seed is `seed` (32 random bytes make a new key).
    pub fn from_seed(seed: [u8; SEED_LEN]) -> SecretKey {
        SecretKey { seed }
    }

    /// The seed, for storing the key.
    pub fn seed(&self) -> &[u8; SEED_LEN] {
        &self.seed
    }

    fn pair(&self) -> ed25519_compact::KeyPair {
        ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new(self.seed))
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(*self.pair().pk)
    }

    /// The deterministic Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        *self.pair().sk.sign(message, None)
    }
}

/// Why a signature envelope or a trusted-key list was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// The envelope is not [`ENVELOPE_LEN`] bytes.
    BadLength { len: usize },
    /// The first bytes are not the expected magic.
    BadMagic,
    /// A version this code does not read.
    UnsupportedVersion { found: u32 },
    /// An algorithm other than Ed25519.
    UnsupportedAlgorithm { found: u32 },
    /// The signer's key is not among the trusted ones.
    UntrustedKey { key: PublicKey },
    /// The signature does not match (the envelope was altered or forged).
    BadSignature,
    /// The file's length differs from the signed one.
    LengthMismatch { signed: u64, actual: u64 },
    /// The file's SHA-256 differs from the signed one.
    HashMismatch,
    /// A trusted-key list whose count disagrees with its length.
    BadKeyCount { count: u32, len: usize },
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SignatureError::*;
        match self {
            BadLength { len } => write!(f, "a signature envelope is {ENVELOPE_LEN} bytes, this one is {len}: not a BareFlow signature or truncated"),
            BadMagic => write!(f, "bad magic: not a BareFlow signature file (make one with `cargo bareflow sign FILE`)"),
            UnsupportedVersion { found } => write!(f, "format version {found} is not supported (this build reads version {ENVELOPE_VERSION}): use the matching CLI"),
            UnsupportedAlgorithm { found } => write!(f, "signature algorithm {found} is not supported (only Ed25519, number {ALG_ED25519})"),
            UntrustedKey { key } => write!(f, "signed by key {}, which is not trusted: sign with a trusted key or add its public key (`cargo bareflow key list` shows them)", key.hex()),
            BadSignature => write!(f, "the Ed25519 signature does not match: the signed data was altered after signing or the signature is forged"),
            LengthMismatch { signed, actual } => write!(f, "the file is {actual} bytes but {signed} bytes were signed: it was changed or truncated after signing"),
            HashMismatch => write!(f, "the file's SHA-256 differs from the signed one: it was changed after signing"),
            BadKeyCount { count, len } => write!(f, "trusted-key list claims {count} keys but is {len} bytes long: the list is corrupt; rebuild with `cargo bareflow build`"),
        }
    }
}

impl core::error::Error for SignatureError {}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(v)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// The public keys an image (or a verifying host) trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedKeys {
    keys: Vec<PublicKey>,
}

impl TrustedKeys {
    /// A list of `keys` (duplicates are dropped).
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> TrustedKeys {
        let mut keys: Vec<PublicKey> = keys.into_iter().collect();
        keys.sort_unstable();
        keys.dedup();
        TrustedKeys { keys }
    }

    /// Whether `key` is trusted.
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.keys.binary_search(key).is_ok()
    }

    /// The trusted keys, sorted.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Checks that `key` is trusted and that `signature` is its signature of `message`.
    pub fn check(&self, key: &PublicKey, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> Result<(), SignatureError> {
        if !self.contains(key) {
            return Err(SignatureError::UntrustedKey { key: *key });
        }
        if key.verify(message, signature) { Ok(()) } else { Err(SignatureError::BadSignature) }
    }

    /// Reads a trusted-key list (see the module documentation).
    pub fn parse(bytes: &[u8]) -> Result<TrustedKeys, SignatureError> {
        if bytes.len() < KEYS_HEADER_LEN {
            return Err(SignatureError::BadLength { len: bytes.len() });
        }
        if bytes[0..8] != KEYS_MAGIC {
            return Err(SignatureError::BadMagic);
        }
        let version = u32_at(bytes, 8);
        if version != KEYS_VERSION {
            return Err(SignatureError::UnsupportedVersion { found: version });
        }
        let count = u32_at(bytes, 12);
        let body = &bytes[KEYS_HEADER_LEN..];
        let fits = usize::try_from(count).ok().and_then(|n| n.checked_mul(PUBLIC_KEY_LEN)) == Some(body.len());
        if !fits {
            return Err(SignatureError::BadKeyCount { count, len: bytes.len() });
        }
        Ok(TrustedKeys::new(body.chunks_exact(PUBLIC_KEY_LEN).map(|c| {
            let mut k = [0u8; PUBLIC_KEY_LEN];
            k.copy_from_slice(c);
            PublicKey(k)
        })))
    }

    /// The list in the format [`TrustedKeys::parse`] reads.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(KEYS_HEADER_LEN + self.keys.len() * PUBLIC_KEY_LEN);
        out.extend_from_slice(&KEYS_MAGIC);
        out.extend_from_slice(&KEYS_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.keys.len() as u32).to_le_bytes());
        for k in &self.keys {
            out.extend_from_slice(&k.0);
        }
        out
    }
}

/// A parsed (not yet verified) detached signature envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Length of the signed file.
    pub len: u64,
    /// SHA-256 of the signed file.
    pub sha256: [u8; 32],
    /// Who signed it.
    pub signer: PublicKey,
    signed: [u8; ENVELOPE_SIGNED_LEN],
    signature: [u8; SIGNATURE_LEN],
}

impl Envelope {
    /// Signs `file` with `key`, returning the envelope's bytes.
    pub fn sign(key: &SecretKey, file: &[u8]) -> [u8; ENVELOPE_LEN] {
        let mut out = [0u8; ENVELOPE_LEN];
        out[0..8].copy_from_slice(&ENVELOPE_MAGIC);
        out[8..12].copy_from_slice(&ENVELOPE_VERSION.to_le_bytes());
        out[12..16].copy_from_slice(&ALG_ED25519.to_le_bytes());
        out[16..24].copy_from_slice(&(file.len() as u64).to_le_bytes());
        out[24..56].copy_from_slice(&sha256(file));
        out[56..88].copy_from_slice(&key.public().0);
        let sig = key.sign(&out[..ENVELOPE_SIGNED_LEN]);
        out[ENVELOPE_SIGNED_LEN..].copy_from_slice(&sig);
        out
    }

    /// Checks the envelope's structure (not its signature).
    pub fn parse(bytes: &[u8]) -> Result<Envelope, SignatureError> {
        if bytes.len() != ENVELOPE_LEN {
            return Err(SignatureError::BadLength { len: bytes.len() });
        }
        if bytes[0..8] != ENVELOPE_MAGIC {
            return Err(SignatureError::BadMagic);
        }
        let version = u32_at(bytes, 8);
        if version != ENVELOPE_VERSION {
            return Err(SignatureError::UnsupportedVersion { found: version });
        }
        let alg = u32_at(bytes, 12);
        if alg != ALG_ED25519 {
            return Err(SignatureError::UnsupportedAlgorithm { found: alg });
        }
        let mut sha = [0u8; 32];
        sha.copy_from_slice(&bytes[24..56]);
        let mut signer = [0u8; PUBLIC_KEY_LEN];
        signer.copy_from_slice(&bytes[56..88]);
        let mut signed = [0u8; ENVELOPE_SIGNED_LEN];
        signed.copy_from_slice(&bytes[..ENVELOPE_SIGNED_LEN]);
        let mut signature = [0u8; SIGNATURE_LEN];
        signature.copy_from_slice(&bytes[ENVELOPE_SIGNED_LEN..]);
        Ok(Envelope { len: u64_at(bytes, 16), sha256: sha, signer: PublicKey(signer), signed, signature })
    }

    /// Checks the signature against `trusted`, then `file` against the signed length and hash.
    pub fn verify(&self, trusted: &TrustedKeys, file: &[u8]) -> Result<(), SignatureError> {
        trusted.check(&self.signer, &self.signed, &self.signature)?;
        let actual = file.len() as u64;
        if actual != self.len {
            return Err(SignatureError::LengthMismatch { signed: self.len, actual });
        }
        if sha256(file) != self.sha256 {
            return Err(SignatureError::HashMismatch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed([n; SEED_LEN])
    }

    #[test]
    fn sha256_matches_the_standard_vector() {
        // FIPS 180-2 example "abc".
        let want = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(format!("{}", HexKey(&sha256(b"abc"))), want);
    }

    #[test]
    fn rfc8032_test_vector_1_verifies() {
        // RFC 8032 section 7.1, TEST 1 (empty message).
        let seed = hex32("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        let k = SecretKey::from_seed(seed);
        assert_eq!(format!("{}", k.public().hex()), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        let sig = k.sign(b"");
        assert_eq!(
            format!("{}", HexKey(&sig)),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(k.public().verify(b"", &sig));
        assert!(!k.public().verify(b"x", &sig));
    }

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn envelope_round_trip_and_every_refusal() {
        let file = b"some file contents\n";
        let env = Envelope::sign(&key(1), file);
        let trusted = TrustedKeys::new([key(1).public()]);
        let e = Envelope::parse(&env).unwrap();
        assert_eq!(e.signer, key(1).public());
        assert_eq!(e.len, file.len() as u64);
        e.verify(&trusted, file).unwrap();

        // Wrong key.
        let other = TrustedKeys::new([key(2).public()]);
        assert_eq!(e.verify(&other, file), Err(SignatureError::UntrustedKey { key: key(1).public() }));
        // Changed file, same length; truncated file.
        assert_eq!(e.verify(&trusted, b"some file contentz\n"), Err(SignatureError::HashMismatch));
        assert_eq!(
            e.verify(&trusted, &file[..5]),
            Err(SignatureError::LengthMismatch { signed: file.len() as u64, actual: 5 })
        );
        // Every flipped byte of the envelope is refused, one way or another.
        for i in 0..ENVELOPE_LEN {
            let mut bad = env;
            bad[i] ^= 0x01;
            let r = Envelope::parse(&bad).and_then(|e| e.verify(&trusted, file));
            assert!(r.is_err(), "flipped byte {i} accepted");
        }
        assert_eq!(Envelope::parse(&env[..100]), Err(SignatureError::BadLength { len: 100 }));
        let mut v = env;
        v[8] = 9;
        assert_eq!(Envelope::parse(&v), Err(SignatureError::UnsupportedVersion { found: 9 }));
    }

    #[test]
    fn a_signature_moved_to_another_key_fails() {
        // Replace the signer with a trusted key: the signature no longer matches.
        let mut env = Envelope::sign(&key(1), b"x");
        env[56..88].copy_from_slice(&key(2).public().0);
        let trusted = TrustedKeys::new([key(1).public(), key(2).public()]);
        assert_eq!(Envelope::parse(&env).unwrap().verify(&trusted, b"x"), Err(SignatureError::BadSignature));
    }

    #[test]
    fn trusted_key_list_round_trip_and_hostile_counts() {
        let t = TrustedKeys::new([key(3).public(), key(1).public(), key(3).public()]);
        assert_eq!(t.keys().len(), 2);
        let bytes = t.encode();
        assert_eq!(TrustedKeys::parse(&bytes).unwrap(), t);
        let empty = TrustedKeys::default().encode();
        assert_eq!(TrustedKeys::parse(&empty).unwrap().keys().len(), 0);
        let mut bad = bytes.clone();
        bad[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(TrustedKeys::parse(&bad), Err(SignatureError::BadKeyCount { .. })));
        assert!(matches!(TrustedKeys::parse(&bytes[..bytes.len() - 1]), Err(SignatureError::BadKeyCount { .. })));
        assert_eq!(TrustedKeys::parse(&bytes[..3]), Err(SignatureError::BadLength { len: 3 }));
        let mut magic = bytes;
        magic[0] = b'X';
        assert_eq!(TrustedKeys::parse(&magic), Err(SignatureError::BadMagic));
    }

    #[test]
    fn secret_key_debug_does_not_show_the_seed() {
        let k = key(0xab);
        let shown = format!("{k:?}");
        assert!(!shown.contains("abababab"), "{shown}");
        assert!(shown.contains(&format!("{}", k.public().hex())));
    }
}

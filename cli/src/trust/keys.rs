//! The key store: Ed25519 key pairs on disk, one pair per name.
//!
//! Folder: `$BAREFLOW_KEYS`, else `$XDG_CONFIG_HOME/bareflow/keys`, else
//! `~/.config/bareflow/keys` (mode 0700). A key `NAME` is two files:
//! `NAME.key`, the private seed (mode 0600, created that way, never printed),
//! and `NAME.pub`, the public key in hex. Every public key in the folder is
//! trusted by the images this machine builds and by `verify`.

use anyhow::{Context, Result, bail};
use bareflow_abi::signature::{PUBLIC_KEY_LEN, PublicKey, SEED_LEN, SecretKey, TrustedKeys};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// The key every command uses when none is named; created on first use.
pub const DEFAULT_KEY: &str = "default";
/// First line of a private key file.
const SECRET_HEADER: &str = "bareflow-ed25519-seed-v1";

/// A folder of key pairs.
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
}

/// Checks a key name: 1..=64 of `A-Z a-z 0-9 _ - .`, not starting with `.`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        bail!("`{name}` is not a key name: use 1 to 64 letters, digits, `_`, `-` or `.` (not starting with `.`)")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.trim();
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Writes `contents` to `path` with `mode`, atomically and only if `path` does not exist yet.
/// Returns `Ok(false)` if it already existed.
fn create_exclusive(path: &Path, contents: &[u8], mode: u32) -> Result<bool> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(contents).and_then(|()| f.sync_all()).with_context(|| format!("cannot write {}", tmp.display()))?;
    drop(f);
    // A hard link fails if the name exists: two processes creating the same key cannot both win.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

impl KeyStore {
    /// The store in `dir` (not created until a key is made).
    pub fn at(dir: impl Into<PathBuf>) -> KeyStore {
        KeyStore { dir: dir.into() }
    }

    /// The store named by the environment (see the module documentation).
    pub fn from_env() -> Result<KeyStore> {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(d) = var("BAREFLOW_KEYS") {
            return Ok(KeyStore::at(d));
        }
        let config = var("XDG_CONFIG_HOME")
            .or_else(|| var("HOME").map(|h| h.join(".config")))
            .context("neither BAREFLOW_KEYS, XDG_CONFIG_HOME nor HOME is set: set BAREFLOW_KEYS to the key folder")?;
        Ok(KeyStore::at(config.join("bareflow").join("keys")))
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn secret_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.key"))
    }

    fn public_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.pub"))
    }

    fn ensure_dir(&self) -> Result<()> {
        if !self.dir.is_dir() {
            std::fs::create_dir_all(&self.dir).with_context(|| format!("cannot create key folder {}", self.dir.display()))?;
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot make {} private (mode 0700)", self.dir.display()))?;
        }
        Ok(())
    }

    /// Makes a new key pair `name` from the system's random source; refuses to replace one.
    pub fn generate(&self, name: &str) -> Result<PublicKey> {
        check_name(name)?;
        let mut seed = [0u8; SEED_LEN];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut seed))
            .context("cannot read /dev/urandom for a new key's seed")?;
        match self.create(name, SecretKey::from_seed(seed))? {
            Some(pk) => Ok(pk),
            None => bail!(
                "a key named `{name}` already exists in {}: pick another name with --name, or delete {} first",
                self.dir.display(),
                self.secret_path(name).display()
            ),
        }
    }

    /// Stores `key` as `name`; `None` if a key of that name exists (it is kept).
    pub fn create(&self, name: &str, key: SecretKey) -> Result<Option<PublicKey>> {
        check_name(name)?;
        self.ensure_dir()?;
        let text = format!("{SECRET_HEADER}\n{}\n", hex(key.seed()));
        if !create_exclusive(&self.secret_path(name), text.as_bytes(), 0o600)? {
            return Ok(None);
        }
        let pk = key.public();
        let public = format!("{}\n", hex(&pk.0));
        // A leftover .pub from a deleted key is replaced: the private key is the truth.
        let _ = std::fs::remove_file(self.public_path(name));
        create_exclusive(&self.public_path(name), public.as_bytes(), 0o644)?;
        Ok(Some(pk))
    }

    /// Creates the `default` key if it does not exist; says so on stderr when it does.
    pub fn ensure_default(&self) -> Result<()> {
        if self.secret_path(DEFAULT_KEY).exists() {
            return Ok(());
        }
        let mut seed = [0u8; SEED_LEN];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut seed))
            .context("cannot read /dev/urandom for a new key's seed")?;
        if let Some(pk) = self.create(DEFAULT_KEY, SecretKey::from_seed(seed))? {
            eprintln!("bareflow: created signing key `{DEFAULT_KEY}` ({}) in {}", hex(&pk.0), self.dir.display());
        }
        Ok(())
    }

    /// The private key `name`. Refuses a key file that others can read.
    pub fn secret(&self, name: &str) -> Result<SecretKey> {
        check_name(name)?;
        if name == DEFAULT_KEY {
            self.ensure_default()?;
        }
        let path = self.secret_path(name);
        let meta = std::fs::metadata(&path).with_context(|| {
            format!("no private key `{name}` ({} is missing): make one with `cargo bareflow key gen --name {name}`", path.display())
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!("private key file {} has mode {mode:03o}, readable by others: `chmod 600 {}` first", path.display(), path.display());
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut lines = text.lines();
        let seed = match (lines.next(), lines.next().and_then(unhex::<SEED_LEN>)) {
            (Some(SECRET_HEADER), Some(seed)) => seed,
            _ => bail!("{} is not a BareFlow private key file (expected `{SECRET_HEADER}` and 64 hex digits)", path.display()),
        };
        Ok(SecretKey::from_seed(seed))
    }

    /// Every `(name, public key)` in the store, sorted by name.
    pub fn list(&self) -> Result<Vec<(String, PublicKey)>> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot list key folder {}", self.dir.display())),
        };
        let mut out = Vec::new();
        for entry in rd {
            let path = entry.with_context(|| format!("cannot list key folder {}", self.dir.display()))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".pub")) else {
                continue;
            };
            if check_name(name).is_err() {
                continue;
            }
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
            let key = unhex::<PUBLIC_KEY_LEN>(&text)
                .with_context(|| format!("{} is not a public key (expected 64 hex digits)", path.display()))?;
            out.push((name.to_string(), PublicKey(key)));
        }
        out.sort();
        Ok(out)
    }

    /// Every public key in the store.
    pub fn trusted(&self) -> Result<TrustedKeys> {
        Ok(TrustedKeys::new(self.list()?.into_iter().map(|(_, k)| k)))
    }

    /// The name of `key` in this store, if it has one.
    pub fn name_of(&self, key: &PublicKey) -> Option<String> {
        self.list().ok()?.into_iter().find(|(_, k)| k == key).map(|(n, _)| n)
    }
}

/// Hex of a public key (64 digits).
pub fn key_hex(key: &PublicKey) -> String {
    hex(&key.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_store(tag: &str) -> KeyStore {
        let d = std::env::temp_dir().join(format!("bareflow-keys-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        KeyStore::at(d)
    }

    #[test]
    fn generate_list_and_load_with_private_modes() {
        let s = temp_store("gen");
        let pk = s.generate("alice").unwrap();
        let mode = std::fs::metadata(s.dir().join("alice.key")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::metadata(s.dir()).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(s.secret("alice").unwrap().public(), pk);
        let e = s.generate("alice").unwrap_err();
        assert!(format!("{e:#}").contains("already exists"), "{e:#}");
        let other = s.generate("bob").unwrap();
        assert_ne!(other, pk, "two generated keys are different");
        let names: Vec<String> = s.list().unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["alice", "bob"]);
        assert!(s.trusted().unwrap().contains(&pk));
        assert_eq!(s.name_of(&other).as_deref(), Some("bob"));
        // The seed is on disk only in the private file.
        let seed_hex = hex(s.secret("alice").unwrap().seed());
        assert!(!std::fs::read_to_string(s.dir().join("alice.pub")).unwrap().contains(&seed_hex));
        std::fs::remove_dir_all(s.dir()).unwrap();
    }

    #[test]
    fn refuses_open_private_keys_bad_names_and_missing_keys() {
        let s = temp_store("perm");
        s.generate("k").unwrap();
        std::fs::set_permissions(s.dir().join("k.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = s.secret("k").unwrap_err();
        assert!(format!("{e:#}").contains("chmod 600"), "{e:#}");
        for bad in ["", "../x", "a/b", ".hidden", &"x".repeat(65)] {
            assert!(s.generate(bad).is_err(), "{bad:?}");
        }
        let e = s.secret("nobody").unwrap_err();
        assert!(format!("{e:#}").contains("key gen --name nobody"), "{e:#}");
        std::fs::remove_dir_all(s.dir()).unwrap();
    }

    #[test]
    fn default_key_is_made_on_first_use_once() {
        let s = temp_store("default");
        assert!(s.list().unwrap().is_empty());
        let k = s.secret(DEFAULT_KEY).unwrap();
        let again = s.secret(DEFAULT_KEY).unwrap();
        assert_eq!(k.public(), again.public());
        assert_eq!(s.list().unwrap(), vec![(DEFAULT_KEY.to_string(), k.public())]);
        std::fs::remove_dir_all(s.dir()).unwrap();
    }
}

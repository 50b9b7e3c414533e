//! Trust on the host: Ed25519 keys (`key gen`, `key list`), detached signatures
//! (`sign`, `verify`), signed initfs images (`pack`), and the list of trusted
//! public keys every image embeds.
//!
//! How an image learns whom to trust: [`image_trusted_keys`] writes every public
//! key of the key store to `target/bareflow/trusted_keys.bin` (the
//! `bareflow_abi::signature::TrustedKeys` format; rewritten only when it changes)
//! and `build` passes that path to cargo in [`TRUSTED_KEYS_ENV`]; the kernel's
//! `build.rs` copies it into the image. The `default` key is created on first
//! use, so `cargo bareflow run` works out of the box.

pub mod keys;
pub mod payload;

use anyhow::{Context, Result, bail};
use bareflow_abi::initfs::{self, Initfs, InitfsBuilder};
use bareflow_abi::signature::{ENVELOPE_LEN, Envelope, SecretKey};
use keys::{DEFAULT_KEY, KeyStore, key_hex};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

/// The variable through which `build` hands the trusted-key file to the kernel's `build.rs`.
pub const TRUSTED_KEYS_ENV: &str = "BAREFLOW_TRUSTED_KEYS";

/// Writes the trusted-key list for image builds (creating the `default` key if needed)
/// and returns its path.
pub fn image_trusted_keys() -> Result<PathBuf> {
    let store = KeyStore::from_env()?;
    store.ensure_default()?;
    let bytes = store.trusted()?.encode();
    let path = crate::root::ensure_work_dir()?.join("trusted_keys.bin");
    // Same bytes: leave the file (and its mtime) alone, so the kernel is not rebuilt.
    if std::fs::read(&path).ok().as_deref() != Some(&bytes[..]) {
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(&tmp, &bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(path)
}

/// Packs `(host path, guest path)` pairs into an initfs signed by `key`, written to `out`.
/// Returns the number of files and of data bytes.
pub fn pack_files(files: &[(PathBuf, String)], key: &SecretKey, out: &Path) -> Result<(usize, u64)> {
    let mut b = InitfsBuilder::new();
    let mut total = 0u64;
    for (host, guest) in files {
        let bytes = std::fs::read(host).with_context(|| format!("cannot read {}", host.display()))?;
        let mode = std::fs::metadata(host).map(|m| m.permissions().mode()).unwrap_or(0o644);
        total += bytes.len() as u64;
        b.add(guest, mode, &bytes).map_err(|e| anyhow::anyhow!("cannot add {} as `{guest}`: {e}", host.display()))?;
    }
    std::fs::write(out, b.finish(key)).with_context(|| format!("cannot write {}", out.display()))?;
    Ok((files.len(), total))
}

/// Packs with the `default` key (created on first use): what `run --file` does.
pub fn pack_files_default(files: &[(PathBuf, String)], out: &Path) -> Result<()> {
    let key = KeyStore::from_env()?.secret(DEFAULT_KEY)?;
    pack_files(files, &key, out).map(|_| ())
}

/// Every regular file under `dir`, as `(host path, guest path)`, sorted by guest path.
/// Symbolic links and other special files are refused.
pub fn collect_dir(dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<(PathBuf, String)>) -> Result<()> {
        let rd = std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
        for entry in rd {
            let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_str().with_context(|| format!("{} has a name that is not UTF-8", path.display()))?;
            let guest = if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
            let ty = entry.file_type().with_context(|| format!("cannot stat {}", path.display()))?;
            if ty.is_dir() {
                walk(&path, &guest, out)?;
            } else if ty.is_file() {
                out.push((path, guest));
            } else {
                bail!("{} is not a regular file or folder (a symbolic link?): an initfs holds regular files only; copy the target in", path.display());
            }
        }
        Ok(())
    }
    if !dir.is_dir() {
        bail!("{} is not a folder: `pack` takes the folder whose files go into the initfs", dir.display());
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out)?;
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

const USAGE: &str = "\
  key gen [--name N]                    make an Ed25519 key pair (default name `default`)
  key list                              list the keys (all of them are trusted by images built here)
  sign FILE [--key N] [-o OUT]          write a detached signature (default FILE.sig)
  verify FILE [--sig SIG]               check FILE.sig, or a signed initfs and all its files
  pack DIR -o OUT [--key N]             pack a folder into a signed initfs";

/// `bareflow key ...`.
pub fn key_main(args: &[String]) -> Result<i32> {
    let store = KeyStore::from_env()?;
    match args.split_first() {
        Some((cmd, rest)) if cmd == "gen" => {
            let mut name = DEFAULT_KEY.to_string();
            let mut it = rest.iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--name" => name = it.next().context("`--name` needs a value")?.clone(),
                    other => bail!("unexpected argument `{other}` for `key gen`:\n{USAGE}"),
                }
            }
            let pk = store.generate(&name)?;
            println!("key `{name}`: {}", key_hex(&pk));
            println!("private key: {} (mode 600)", store.dir().join(format!("{name}.key")).display());
            Ok(0)
        }
        Some((cmd, rest)) if cmd == "list" => {
            if let Some(extra) = rest.first() {
                bail!("unexpected argument `{extra}` for `key list`");
            }
            let keys = store.list()?;
            if keys.is_empty() {
                println!("no keys in {} (`cargo bareflow key gen` makes one)", store.dir().display());
            }
            for (name, pk) in keys {
                println!("{name:<16} {}", key_hex(&pk));
            }
            Ok(0)
        }
        _ => bail!("usage:\n{USAGE}"),
    }
}

/// Positional arguments, and `(flag, value)` pairs.
type Parsed = (Vec<String>, Vec<(String, String)>);

/// Pulls `--flag VALUE` options out of `args`; the rest are positional.
fn options(args: &[String], flags: &[&str]) -> Result<Parsed> {
    let mut pos = Vec::new();
    let mut opts = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if flags.contains(&a.as_str()) {
            let v = it.next().with_context(|| format!("`{a}` needs a value"))?;
            opts.push((a.clone(), v.clone()));
        } else if a.starts_with('-') {
            bail!("unknown option `{a}`:\n{USAGE}");
        } else {
            pos.push(a.clone());
        }
    }
    Ok((pos, opts))
}

fn opt<'a>(opts: &'a [(String, String)], flag: &str) -> Option<&'a str> {
    opts.iter().rev().find(|(f, _)| f == flag).map(|(_, v)| v.as_str())
}

fn one_file(pos: &[String], cmd: &str) -> Result<PathBuf> {
    match pos {
        [f] => Ok(PathBuf::from(f)),
        _ => bail!("`{cmd}` takes exactly one file:\n{USAGE}"),
    }
}

/// `bareflow sign FILE [--key N] [-o OUT]`.
pub fn sign_main(args: &[String]) -> Result<i32> {
    let (pos, opts) = options(args, &["--key", "-o"])?;
    let file = one_file(&pos, "sign")?;
    let name = opt(&opts, "--key").unwrap_or(DEFAULT_KEY);
    let key = KeyStore::from_env()?.secret(name)?;
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let out = opt(&opts, "-o").map(PathBuf::from).unwrap_or_else(|| sig_path(&file));
    std::fs::write(&out, Envelope::sign(&key, &bytes)).with_context(|| format!("cannot write {}", out.display()))?;
    println!("signed {} with key `{name}` ({}): {}", file.display(), key_hex(&key.public()), out.display());
    Ok(0)
}

fn sig_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// What `verify` concluded; `Err` holds the refusal.
pub fn verify_file(store: &KeyStore, file: &Path, sig: Option<&Path>) -> Result<String> {
    let trusted = store.trusted()?;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let who = |k: &bareflow_abi::signature::PublicKey| match store.name_of(k) {
        Some(n) => format!("key `{n}` ({})", key_hex(k)),
        None => format!("key {}", key_hex(k)),
    };
    if sig.is_none() && bytes.starts_with(&initfs::MAGIC) {
        let fs = Initfs::open(&bytes, &trusted)?;
        fs.verify_all().map_err(|e| anyhow::anyhow!("{e}"))?;
        let data: u64 = fs.entries().map(|(_, m)| m.len).sum();
        return Ok(format!("initfs signed by {}; {} files, {data} bytes, every SHA-256 matches", who(&fs.signer()), fs.len()));
    }
    let sig_file = sig.map(PathBuf::from).unwrap_or_else(|| sig_path(file));
    let env_bytes = std::fs::read(&sig_file).with_context(|| {
        format!("cannot read the signature {} (make one with `cargo bareflow sign {}`)", sig_file.display(), file.display())
    })?;
    let env = Envelope::parse(&env_bytes).with_context(|| format!("{}", sig_file.display()))?;
    env.verify(&trusted, &bytes)?;
    Ok(format!("signed by {} ({} bytes, {ENVELOPE_LEN}-byte signature {})", who(&env.signer), bytes.len(), sig_file.display()))
}

/// `bareflow verify FILE [--sig SIG]`: exit 0 if good, 1 if refused.
pub fn verify_main(args: &[String]) -> Result<i32> {
    let (pos, opts) = options(args, &["--sig"])?;
    let file = one_file(&pos, "verify")?;
    let store = KeyStore::from_env()?;
    match verify_file(&store, &file, opt(&opts, "--sig").map(Path::new)) {
        Ok(what) => {
            println!("{}: OK: {what}", file.display());
            Ok(0)
        }
        Err(e) => {
            eprintln!("{}: REFUSED: {e:#}", file.display());
            Ok(1)
        }
    }
}

/// `bareflow pack DIR -o OUT [--key N]`.
pub fn pack_main(args: &[String]) -> Result<i32> {
    let (pos, opts) = options(args, &["-o", "--key"])?;
    let dir = one_file(&pos, "pack")?;
    let out = opt(&opts, "-o").map(PathBuf::from).context("`pack` needs `-o OUT`, the initfs file to write")?;
    let name = opt(&opts, "--key").unwrap_or(DEFAULT_KEY);
    let key = KeyStore::from_env()?.secret(name)?;
    let files = collect_dir(&dir)?;
    let (n, bytes) = pack_files(&files, &key, &out)?;
    println!("packed {n} files ({bytes} bytes) from {} into {}, signed with key `{name}` ({})", dir.display(), out.display(), key_hex(&key.public()));
    Ok(0)
}

/// `bareflow payload ...`.
pub fn payload_main(args: &[String]) -> Result<i32> {
    payload::main(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("bareflow-trust-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn pack_a_folder_then_verify_it_and_refuse_a_tampered_copy() {
        let d = temp("pack");
        let store = KeyStore::at(d.join("keys"));
        store.generate("k").unwrap();
        let src = d.join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("a.txt"), b"alpha").unwrap();
        std::fs::write(src.join("sub/b.bin"), vec![9u8; 1000]).unwrap();
        std::fs::set_permissions(src.join("a.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
        let files = collect_dir(&src).unwrap();
        let guests: Vec<&str> = files.iter().map(|(_, g)| g.as_str()).collect();
        assert_eq!(guests, ["a.txt", "sub/b.bin"]);
        let img = d.join("initfs.img");
        assert_eq!(pack_files(&files, &store.secret("k").unwrap(), &img).unwrap(), (2, 1005));
        let said = verify_file(&store, &img, None).unwrap();
        assert!(said.contains("key `k`") && said.contains("2 files"), "{said}");
        let bytes = std::fs::read(&img).unwrap();
        let fs = Initfs::open(&bytes, &store.trusted().unwrap()).unwrap();
        assert_eq!(fs.read("sub/b.bin").unwrap(), &[9u8; 1000][..]);
        assert_eq!(fs.metadata("a.txt").unwrap().mode, 0o640);

        let mut bad = bytes.clone();
        let last = bad.len() - 1; // inside sub/b.bin's data
        bad[last] ^= 1;
        std::fs::write(&img, &bad).unwrap();
        let e = verify_file(&store, &img, None).unwrap_err();
        assert!(format!("{e:#}").contains("`sub/b.bin`"), "{e:#}");
        // Signed with a key this store does not have: refused.
        let stranger = SecretKey::from_seed([5; 32]);
        pack_files(&files, &stranger, &img).unwrap();
        let e = verify_file(&store, &img, None).unwrap_err();
        assert!(format!("{e:#}").contains("not trusted"), "{e:#}");
        std::os::unix::fs::symlink(src.join("a.txt"), src.join("link")).unwrap();
        assert!(format!("{:#}", collect_dir(&src).unwrap_err()).contains("regular files only"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn detached_signature_round_trip_and_refusals() {
        let d = temp("sign");
        let store = KeyStore::at(d.join("keys"));
        let key = SecretKey::from_seed({
            store.generate("k").unwrap();
            *store.secret("k").unwrap().seed()
        });
        let f = d.join("file.bin");
        std::fs::write(&f, b"payload bytes").unwrap();
        std::fs::write(sig_path(&f), Envelope::sign(&key, b"payload bytes")).unwrap();
        assert!(verify_file(&store, &f, None).unwrap().contains("key `k`"));
        std::fs::write(&f, b"payload bytez").unwrap();
        assert!(format!("{:#}", verify_file(&store, &f, None).unwrap_err()).contains("SHA-256"));
        let e = verify_file(&store, &f, Some(&d.join("none.sig"))).unwrap_err();
        assert!(format!("{e:#}").contains("cannot read the signature"), "{e:#}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}

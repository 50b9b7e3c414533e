//! Signed code payloads, as pure logic: the payload container and its manifest,
//! the ELF checks, relocation over a byte buffer, import resolution against the
//! kernel's exported table, and the table of kernel ABI versions still served.
//! Mapping the result (`bareflow_hal::mm::Pages`: write, `protect`, `call`) is
//! the kernel's job; everything here runs and is tested on the host.
//!
//! Order of checks, cheapest and least trusting first: container lengths, then
//! the Ed25519 signature over the manifest (which holds the ELF's length and
//! SHA-256), then the ELF hash, then the ELF's structure, then the ABI version
//! and capabilities, then relocations and imports. Only relocation kinds listed
//! in [`Reloc`] are applied; any other kind refuses the payload.
//!
//! Container layout (little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 0..8 | magic `BFPAYLD\0` |
//! | 8..12 | container version, [`FORMAT_VERSION`] |
//! | 12..16 | kernel ABI version the code was built against |
//! | 16..24 | required capabilities ([`caps`] bits) |
//! | 24..32 | ELF length |
//! | 32..64 | ELF SHA-256 |
//! | 64..66 | name length `a` (1..=64), 66..68 entry symbol length `b` (1..=64) |
//! | 68..68+a+b | name, entry symbol (UTF-8) |
//! | then 96 | signer's public key, Ed25519 signature over all bytes before it |
//! | then | the ELF (ET_DYN, x86-64, position independent) |

use crate::signature::{self, PUBLIC_KEY_LEN, PublicKey, SIGNATURE_LEN, SecretKey, SignatureError, TrustedKeys};
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// First eight bytes of a payload.
pub const MAGIC: [u8; 8] = *b"BFPAYLD\0";
/// The container version this code reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// The kernel ABI version this kernel exports.
pub const ABI_VERSION: u32 = 3;
const FIXED_LEN: usize = 68;
const MAX_NAME: usize = 64;
/// Largest loaded image accepted (address span of all segments).
pub const MAX_IMAGE: u64 = 64 << 20;

/// Capability bits a payload may require.
pub mod caps {
    /// Write to the console.
    pub const CONSOLE: u64 = 1 << 0;
    /// Read boot-time files.
    pub const FS_READ: u64 = 1 << 1;
    /// Open network sockets.
    pub const NET: u64 = 1 << 2;
    /// Read the clocks.
    pub const TIME: u64 = 1 << 3;
    /// Every bit this kernel knows.
    pub const ALL: u64 = CONSOLE | FS_READ | NET | TIME;
}

/// Whether a kernel ABI version can still run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbiStatus {
    /// The version this kernel exports.
    Current,
    /// An older version still served: its imports are a subset of today's, same meaning.
    Supported,
    /// No longer served: rebuild the payload.
    Retired,
}

/// One row of the compatibility table.
#[derive(Debug, Clone, Copy)]
pub struct AbiVersion {
    pub version: u32,
    pub status: AbiStatus,
    /// The kernel functions a payload built for this version may import.
    pub exports: &'static [&'static str],
}

/// Every ABI version this kernel knows, oldest first.
pub const COMPAT: &[AbiVersion] = &[
    AbiVersion { version: 0, status: AbiStatus::Retired, exports: &[] },
    AbiVersion { version: 1, status: AbiStatus::Supported, exports: &["bf_write", "bf_exit"] },
    AbiVersion { version: 2, status: AbiStatus::Supported, exports: &["bf_write", "bf_exit", "bf_time_nanos", "bf_read_file"] },
    // 3: `bf_respond`, the reply of a handler payload (httpd's `/handler`).
    AbiVersion { version: 3, status: AbiStatus::Current, exports: &["bf_write", "bf_exit", "bf_time_nanos", "bf_read_file", "bf_respond"] },
];

/// The compatibility-table row for `version`, if it can run.
pub fn abi(version: u32) -> Result<&'static AbiVersion, PayloadError> {
    match COMPAT.iter().find(|a| a.version == version) {
        Some(a) if a.status != AbiStatus::Retired => Ok(a),
        Some(_) => Err(PayloadError::RetiredAbi { found: version }),
        None => Err(PayloadError::UnknownAbi { found: version }),
    }
}

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    TooShort { len: usize },
    BadMagic,
    UnsupportedFormat { found: u32 },
    BadNameLength,
    NotUtf8,
    Signature(SignatureError),
    ElfLengthMismatch { signed: u64, actual: usize },
    ElfHashMismatch,
    UnknownAbi { found: u32 },
    RetiredAbi { found: u32 },
    UnknownCapabilities { bits: u64 },
    MissingCapabilities { bits: u64 },
    NotElf64 { reason: &'static str },
    BadProgramHeader { index: usize, reason: &'static str },
    WritableAndExecutable { index: usize },
    OverlappingSegments { index: usize },
    TooLarge { span: u64 },
    BadDynamic { reason: &'static str },
    UnknownRelocation { kind: u32 },
    RelocationOutOfBounds { offset: u64 },
    UnknownImport { name: String },
    EntryNotFound { name: String },
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use PayloadError::*;
        match self {
            TooShort { len } => write!(f, "payload is {len} bytes, too short for its manifest and signature"),
            BadMagic => write!(f, "not a BareFlow payload (bad magic): build one with `cargo bareflow payload build`"),
            UnsupportedFormat { found } => write!(f, "payload container version {found} is not supported (this kernel reads {FORMAT_VERSION})"),
            BadNameLength => write!(f, "payload name or entry symbol length is 0 or over {MAX_NAME} bytes, or runs past the data"),
            NotUtf8 => write!(f, "payload name or entry symbol is not UTF-8"),
            Signature(e) => write!(f, "payload signature: {e}"),
            ElfLengthMismatch { signed, actual } => write!(f, "payload code is {actual} bytes but {signed} were signed: truncated or altered"),
            ElfHashMismatch => write!(f, "payload code does not match its signed SHA-256: altered after signing"),
            UnknownAbi { found } => write!(f, "payload was built for kernel ABI version {found}, which this kernel does not know (it serves {}): rebuild it for version {ABI_VERSION}", served()),
            RetiredAbi { found } => write!(f, "payload was built for kernel ABI version {found}, which is retired: rebuild it for version {ABI_VERSION}"),
            UnknownCapabilities { bits } => write!(f, "payload requires unknown capability bits {bits:#x}: built for a newer kernel"),
            MissingCapabilities { bits } => write!(f, "payload requires capabilities {bits:#x} that were not granted"),
            NotElf64 { reason } => write!(f, "payload code is not a loadable x86-64 ELF: {reason}"),
            BadProgramHeader { index, reason } => write!(f, "payload segment {index}: {reason}"),
            WritableAndExecutable { index } => write!(f, "payload segment {index} is writable and executable: W^X forbids it"),
            OverlappingSegments { index } => write!(f, "payload segment {index} overlaps another segment"),
            TooLarge { span } => write!(f, "payload image spans {span} bytes, over the {MAX_IMAGE}-byte limit"),
            BadDynamic { reason } => write!(f, "payload dynamic section: {reason}"),
            UnknownRelocation { kind } => write!(f, "payload uses relocation kind {kind}, which this loader does not apply"),
            RelocationOutOfBounds { offset } => write!(f, "payload relocation at {offset:#x} lies outside its writable segments"),
            UnknownImport { name } => write!(f, "payload imports `{name}`, which its kernel ABI version does not export"),
            EntryNotFound { name } => write!(f, "payload entry symbol `{name}` is not defined in its code"),
        }
    }
}

impl core::error::Error for PayloadError {}

impl From<SignatureError> for PayloadError {
    fn from(e: SignatureError) -> Self {
        PayloadError::Signature(e)
    }
}

fn served() -> String {
    let mut s = String::new();
    for a in COMPAT.iter().filter(|a| a.status != AbiStatus::Retired) {
        if !s.is_empty() {
            s.push_str(", ");
        }
        s.push_str(&alloc::format!("{}", a.version));
    }
    s
}

fn rd<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}
fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    rd::<2>(b, at).map(u16::from_le_bytes)
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    rd::<4>(b, at).map(u32::from_le_bytes)
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    rd::<8>(b, at).map(u64::from_le_bytes)
}

/// What the manifest says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub name: String,
    pub abi_version: u32,
    pub entry: String,
    pub capabilities: u64,
}

/// A payload whose signature and code hash were checked. Only
/// [`Payload::open`] makes one (the private field), so holding one proves
/// the checks passed: the loader in the hardware layer relies on that.
/// (`#[non_exhaustive]` would not do: it still lets this crate build one.)
#[derive(Debug)]
#[allow(clippy::manual_non_exhaustive)]
pub struct Payload<'a> {
    pub manifest: Manifest,
    pub signer: PublicKey,
    pub elf: &'a [u8],
    #[allow(dead_code)] // its only job is to be private
    checked: (),
}

/// Packs and signs a payload.
pub fn build(manifest: &Manifest, elf: &[u8], key: &SecretKey) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&manifest.abi_version.to_le_bytes());
    out.extend_from_slice(&manifest.capabilities.to_le_bytes());
    out.extend_from_slice(&(elf.len() as u64).to_le_bytes());
    out.extend_from_slice(&signature::sha256(elf));
    out.extend_from_slice(&(manifest.name.len() as u16).to_le_bytes());
    out.extend_from_slice(&(manifest.entry.len() as u16).to_le_bytes());
    out.extend_from_slice(manifest.name.as_bytes());
    out.extend_from_slice(manifest.entry.as_bytes());
    let sig = key.sign(&out);
    out.extend_from_slice(&key.public().0);
    out.extend_from_slice(&sig);
    out.extend_from_slice(elf);
    out
}

impl<'a> Payload<'a> {
    /// Checks lengths, the signature (against `trusted`), the code's hash, the ABI
    /// version and the capabilities (against `granted`).
    pub fn open(bytes: &'a [u8], trusted: &TrustedKeys, granted: u64) -> Result<Payload<'a>, PayloadError> {
        let short = PayloadError::TooShort { len: bytes.len() };
        if bytes.len() < FIXED_LEN {
            return Err(short);
        }
        if bytes[0..8] != MAGIC {
            return Err(PayloadError::BadMagic);
        }
        let format = u32_at(bytes, 8).ok_or(short.clone())?;
        if format != FORMAT_VERSION {
            return Err(PayloadError::UnsupportedFormat { found: format });
        }
        let name_len = usize::from(u16_at(bytes, 64).ok_or(short.clone())?);
        let entry_len = usize::from(u16_at(bytes, 66).ok_or(short.clone())?);
        if !(1..=MAX_NAME).contains(&name_len) || !(1..=MAX_NAME).contains(&entry_len) {
            return Err(PayloadError::BadNameLength);
        }
        let signed_end = FIXED_LEN + name_len + entry_len;
        let elf_at = signed_end + PUBLIC_KEY_LEN + SIGNATURE_LEN;
        if bytes.len() < elf_at {
            return Err(short);
        }
        let signer = PublicKey(rd::<PUBLIC_KEY_LEN>(bytes, signed_end).ok_or(short.clone())?);
        let sig = rd::<SIGNATURE_LEN>(bytes, signed_end + PUBLIC_KEY_LEN).ok_or(short)?;
        trusted.check(&signer, &bytes[..signed_end], &sig)?;
        let elf = &bytes[elf_at..];
        let signed_len = u64_at(bytes, 24).unwrap_or(0);
        if signed_len != elf.len() as u64 {
            return Err(PayloadError::ElfLengthMismatch { signed: signed_len, actual: elf.len() });
        }
        if signature::sha256(elf)[..] != bytes[32..64] {
            return Err(PayloadError::ElfHashMismatch);
        }
        let text = |r: core::ops::Range<usize>| core::str::from_utf8(&bytes[r]).map(String::from).map_err(|_| PayloadError::NotUtf8);
        let manifest = Manifest {
            name: text(FIXED_LEN..FIXED_LEN + name_len)?,
            entry: text(FIXED_LEN + name_len..signed_end)?,
            abi_version: u32_at(bytes, 12).unwrap_or(0),
            capabilities: u64_at(bytes, 16).unwrap_or(0),
        };
        abi(manifest.abi_version)?;
        let unknown = manifest.capabilities & !caps::ALL;
        if unknown != 0 {
            return Err(PayloadError::UnknownCapabilities { bits: unknown });
        }
        let missing = manifest.capabilities & !granted;
        if missing != 0 {
            return Err(PayloadError::MissingCapabilities { bits: missing });
        }
        Ok(Payload { manifest, signer, elf, checked: () })
    }

    /// Lays the code out at `base`, applies relocations and resolves imports against
    /// `exports` (name, address), limited to what the payload's ABI version exports.
    pub fn load(&self, base: u64, exports: &[(&str, u64)]) -> Result<LoadedImage, PayloadError> {
        load_elf(self.elf, base, self.manifest.abi_version, exports, &self.manifest.entry)
    }
}

/// Page protection of a loaded segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prot {
    Read,
    ReadWrite,
    ReadExec,
}

/// One segment of a loaded image: `offset..offset+len` of [`LoadedImage::bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub offset: u64,
    pub len: u64,
    pub prot: Prot,
}

/// The code laid out and relocated for one base address, ready to map.
#[derive(Debug, Clone)]
pub struct LoadedImage {
    pub bytes: Vec<u8>,
    pub segments: Vec<Segment>,
    /// Offset of the entry function from the base.
    pub entry: u64,
}

/// Relocation kinds this loader applies (x86-64 psABI numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reloc {
    /// `S + A` (8 bytes).
    Abs64 = 1,
    /// `S` (GOT slot).
    GlobDat = 6,
    /// `S` (PLT slot).
    JumpSlot = 7,
    /// `B + A`.
    Relative = 8,
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const DT_NULL: u64 = 0;
const DT_STRTAB: u64 = 5;
const DT_SYMTAB: u64 = 6;
const DT_RELA: u64 = 7;
const DT_RELASZ: u64 = 8;
const DT_STRSZ: u64 = 10;
const DT_JMPREL: u64 = 23;
const DT_PLTRELSZ: u64 = 2;

struct Load {
    vaddr: u64,
    memsz: u64,
    offset: u64,
    filesz: u64,
    flags: u32,
}

/// Checks an ELF and produces its relocated image at `base`.
pub fn load_elf(elf: &[u8], base: u64, abi_version: u32, exports: &[(&str, u64)], entry: &str) -> Result<LoadedImage, PayloadError> {
    let not = |reason| PayloadError::NotElf64 { reason };
    if elf.len() < 64 || elf[0..4] != *b"\x7fELF" {
        return Err(not("no ELF header"));
    }
    if elf[4] != 2 || elf[5] != 1 {
        return Err(not("not 64-bit little-endian"));
    }
    if u16_at(elf, 16) != Some(3) {
        return Err(not("not position independent (ET_DYN)"));
    }
    if u16_at(elf, 18) != Some(62) {
        return Err(not("not x86-64"));
    }
    let phoff = u64_at(elf, 32).ok_or(not("truncated"))?;
    let phentsize = usize::from(u16_at(elf, 54).ok_or(not("truncated"))?);
    let phnum = usize::from(u16_at(elf, 56).ok_or(not("truncated"))?);
    if phentsize != 56 {
        return Err(not("program header size is not 56"));
    }
    let ph_start = usize::try_from(phoff).map_err(|_| not("program headers out of range"))?;
    let ph_end = phnum.checked_mul(56).and_then(|n| n.checked_add(ph_start)).filter(|&e| e <= elf.len());
    ph_end.ok_or(not("program headers run past the file"))?;
    let mut loads: Vec<Load> = Vec::new();
    let mut dynamic = None;
    for index in 0..phnum {
        let at = ph_start + index * 56;
        let bad = |reason| PayloadError::BadProgramHeader { index, reason };
        let ty = u32_at(elf, at).ok_or(bad("truncated"))?;
        let flags = u32_at(elf, at + 4).ok_or(bad("truncated"))?;
        let offset = u64_at(elf, at + 8).ok_or(bad("truncated"))?;
        let vaddr = u64_at(elf, at + 16).ok_or(bad("truncated"))?;
        let filesz = u64_at(elf, at + 32).ok_or(bad("truncated"))?;
        let memsz = u64_at(elf, at + 40).ok_or(bad("truncated"))?;
        match ty {
            PT_LOAD => {
                if flags & PF_W != 0 && flags & PF_X != 0 {
                    return Err(PayloadError::WritableAndExecutable { index });
                }
                if filesz > memsz {
                    return Err(bad("file size exceeds memory size"));
                }
                if offset.checked_add(filesz).is_none_or(|e| e > elf.len() as u64) {
                    return Err(bad("file bytes run past the file"));
                }
                let end = vaddr.checked_add(memsz).ok_or(bad("address overflows"))?;
                if end > MAX_IMAGE {
                    return Err(PayloadError::TooLarge { span: end });
                }
                if loads.iter().any(|l| vaddr < l.vaddr + l.memsz && l.vaddr < end) {
                    return Err(PayloadError::OverlappingSegments { index });
                }
                loads.push(Load { vaddr, memsz, offset, filesz, flags });
            }
            PT_DYNAMIC => dynamic = Some((offset, filesz)),
            _ => {}
        }
    }
    if loads.is_empty() {
        return Err(not("no loadable segment"));
    }
    let span = loads.iter().map(|l| l.vaddr + l.memsz).max().unwrap_or(0);
    let mut image = vec![0u8; span as usize];
    let mut segments = Vec::new();
    for l in &loads {
        let (o, v, n) = (l.offset as usize, l.vaddr as usize, l.filesz as usize);
        image[v..v + n].copy_from_slice(&elf[o..o + n]);
        let prot = if l.flags & PF_X != 0 {
            Prot::ReadExec
        } else if l.flags & PF_W != 0 {
            Prot::ReadWrite
        } else {
            Prot::Read
        };
        segments.push(Segment { offset: l.vaddr, len: l.memsz, prot });
    }
    let bad_dyn = |reason| PayloadError::BadDynamic { reason };
    let (dyn_off, dyn_len) = dynamic.ok_or(bad_dyn("missing (not a position-independent payload)"))?;
    let dyn_bytes = usize::try_from(dyn_off)
        .ok()
        .zip(usize::try_from(dyn_len).ok())
        .and_then(|(o, n)| elf.get(o..o.checked_add(n)?))
        .ok_or(bad_dyn("runs past the file"))?;
    let mut tags = [0u64; 24];
    let mut seen = [false; 24];
    for d in dyn_bytes.chunks_exact(16) {
        let (tag, val) = (u64_at(d, 0).unwrap_or(0), u64_at(d, 8).unwrap_or(0));
        if tag == DT_NULL {
            break;
        }
        if let Some(slot) = usize::try_from(tag).ok().filter(|&t| t < tags.len()) {
            tags[slot] = val;
            seen[slot] = true;
        }
    }
    // Tables are read from the laid-out image (addresses are offsets from the base).
    let table = |addr_tag: u64, len: u64| -> Result<&[u8], PayloadError> {
        let a = tags[addr_tag as usize] as usize;
        a.checked_add(len as usize).and_then(|e| image.get(a..e)).ok_or(bad_dyn("a table lies outside the image"))
    };
    let strtab = if seen[DT_STRTAB as usize] { table(DT_STRTAB, tags[DT_STRSZ as usize])?.to_vec() } else { Vec::new() };
    let symtab_at = tags[DT_SYMTAB as usize] as usize;
    let sym = |index: u32| -> Result<(String, u64, bool), PayloadError> {
        let at = symtab_at
            .checked_add(index as usize * 24)
            .filter(|&at| at <= image.len())
            .ok_or(bad_dyn("symbol outside the image"))?;
        let name_off = u32_at(&image, at).ok_or(bad_dyn("symbol outside the image"))? as usize;
        let shndx = u16_at(&image, at + 6).ok_or(bad_dyn("symbol outside the image"))?;
        let value = u64_at(&image, at + 8).ok_or(bad_dyn("symbol outside the image"))?;
        let rest = strtab.get(name_off..).ok_or(bad_dyn("symbol name outside the string table"))?;
        let end = rest.iter().position(|&b| b == 0).ok_or(bad_dyn("unterminated symbol name"))?;
        let name = core::str::from_utf8(&rest[..end]).map_err(|_| bad_dyn("symbol name is not UTF-8"))?;
        Ok((String::from(name), value, shndx != 0))
    };
    let mut relocs: Vec<u8> = Vec::new();
    if seen[DT_RELA as usize] {
        relocs.extend_from_slice(table(DT_RELA, tags[DT_RELASZ as usize])?);
    }
    if seen[DT_JMPREL as usize] {
        relocs.extend_from_slice(table(DT_JMPREL, tags[DT_PLTRELSZ as usize])?);
    }
    if !relocs.len().is_multiple_of(24) {
        return Err(bad_dyn("relocation table size is not a multiple of 24"));
    }
    let allowed = abi(abi_version)?.exports;
    let writable = |off: u64| {
        segments.iter().any(|s| s.prot == Prot::ReadWrite && off >= s.offset && off.checked_add(8).is_some_and(|e| e <= s.offset + s.len))
    };
    let mut writes: Vec<(usize, u64)> = Vec::new();
    for r in relocs.chunks_exact(24) {
        let offset = u64_at(r, 0).unwrap_or(u64::MAX);
        let info = u64_at(r, 8).unwrap_or(0);
        let addend = u64_at(r, 16).unwrap_or(0);
        let (kind, index) = ((info & 0xffff_ffff) as u32, (info >> 32) as u32);
        let kind = match kind {
            1 => Reloc::Abs64,
            6 => Reloc::GlobDat,
            7 => Reloc::JumpSlot,
            8 => Reloc::Relative,
            k => return Err(PayloadError::UnknownRelocation { kind: k }),
        };
        if !writable(offset) {
            return Err(PayloadError::RelocationOutOfBounds { offset });
        }
        let value = match kind {
            Reloc::Relative => base.wrapping_add(addend),
            _ => {
                let (name, value, defined) = sym(index)?;
                let s = if defined {
                    base.wrapping_add(value)
                } else {
                    let found = allowed.contains(&name.as_str()).then(|| exports.iter().find(|(n, _)| *n == name)).flatten();
                    found.ok_or(PayloadError::UnknownImport { name })?.1
                };
                if kind == Reloc::Abs64 { s.wrapping_add(addend) } else { s }
            }
        };
        writes.push((offset as usize, value));
    }
    // The entry: a defined symbol of that name inside an executable segment.
    let nsyms = if symtab_at > 0 && tags[DT_STRTAB as usize] as usize > symtab_at {
        (tags[DT_STRTAB as usize] as usize - symtab_at) / 24
    } else {
        0
    };
    let exec = |off: u64| segments.iter().any(|s| s.prot == Prot::ReadExec && off >= s.offset && off < s.offset + s.len);
    let entry_off = (0..nsyms as u32)
        .filter_map(|i| sym(i).ok())
        .find(|(n, v, defined)| n == entry && *defined && exec(*v))
        .map(|(_, v, _)| v)
        .ok_or(PayloadError::EntryNotFound { name: String::from(entry) })?;
    for (at, v) in writes {
        image[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    Ok(LoadedImage { bytes: image, segments, entry: entry_off })
}

#[cfg(test)]
mod tests;

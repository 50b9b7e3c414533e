//! Backtrace symbolization: the kernel prints frames as `  #N 0x<16 hex digits>`;
//! the runner appends ` <demangled_symbol+0xoff>` using the image's symbol table.

use anyhow::{Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};
use std::path::Path;

#[derive(Debug, Clone)]
struct Sym {
    addr: u64,
    size: u64,
    name: String,
}

/// The function symbols of an image, sorted by address.
#[derive(Debug, Clone, Default)]
pub struct Symbolizer {
    syms: Vec<Sym>,
}

impl Symbolizer {
    /// Reads the symbol table of the ELF at `path`.
    pub fn from_file(path: &Path) -> Result<Symbolizer> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read image {}", path.display()))?;
        Symbolizer::from_elf(&bytes).with_context(|| format!("cannot read the symbols of {}", path.display()))
    }

    /// Reads the symbol table of an ELF in memory.
    pub fn from_elf(bytes: &[u8]) -> Result<Symbolizer> {
        let file = object::File::parse(bytes).context("not an ELF file")?;
        // Assembly labels often lack `.type @function`: take untyped symbols too when
        // they sit in an executable section.
        let exec: Vec<(u64, u64)> = file
            .sections()
            .filter(|s| s.kind() == SectionKind::Text)
            .map(|s| (s.address(), s.address().saturating_add(s.size())))
            .collect();
        let in_exec = |a: u64| exec.iter().any(|&(lo, hi)| (lo..hi).contains(&a));
        let mut syms: Vec<Sym> = file
            .symbols()
            .filter(|s| {
                s.address() != 0
                    && match s.kind() {
                        SymbolKind::Text => true,
                        SymbolKind::Unknown | SymbolKind::Label => in_exec(s.address()),
                        _ => false,
                    }
            })
            .filter(|s| s.name().is_ok_and(|n| !n.is_empty() && !n.starts_with(".L") && !n.starts_with('$')))
            .filter_map(|s| {
                let name = s.name().ok()?;
                Some(Sym { addr: s.address(), size: s.size(), name: format!("{:#}", rustc_demangle::demangle(name)) })
            })
            .collect();
        syms.sort_by_key(|s| (s.addr, std::cmp::Reverse(s.size)));
        // At one address keep the sized (typed) symbol over a bare label.
        syms.dedup_by_key(|s| s.addr);
        Ok(Symbolizer { syms })
    }

    /// A symbolizer from (address, size, name) triples (for tests).
    #[cfg(test)]
    pub fn from_pairs(syms: &[(u64, u64, &str)]) -> Symbolizer {
        let mut syms: Vec<Sym> = syms.iter().map(|&(addr, size, name)| Sym { addr, size, name: name.to_string() }).collect();
        syms.sort_by_key(|s| s.addr);
        Symbolizer { syms }
    }

    /// Number of function symbols known.
    pub fn len(&self) -> usize {
        self.syms.len()
    }

    /// Whether no symbol is known (a stripped image).
    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }

    /// The function containing `addr` and the offset into it.
    pub fn lookup(&self, addr: u64) -> Option<(&str, u64)> {
        let i = self.syms.partition_point(|s| s.addr <= addr).checked_sub(1)?;
        let s = &self.syms[i];
        let off = addr - s.addr;
        // Size 0 (hand-written assembly without `.size`): accept up to the next symbol.
        (s.size == 0 || off < s.size).then_some((s.name.as_str(), off))
    }

    /// The address of the function named `name` (demangled, without hash suffix match).
    pub fn address_of(&self, name: &str) -> Option<u64> {
        self.syms.iter().find(|s| s.name == name).map(|s| s.addr)
    }

    /// `line` with ` <symbol+0xoff>` appended if it is a backtrace frame that resolves.
    pub fn annotate(&self, line: &str) -> Option<String> {
        let (frame, addr) = parse_frame(line)?;
        // Return addresses point after the call: look up the byte before them, except
        // for frame 0 of a fault report, which is the faulting instruction itself.
        let probe = if frame == 0 { addr } else { addr.saturating_sub(1) };
        let (name, off) = self.lookup(probe)?;
        let off = off + (addr - probe);
        Some(format!("{} <{name}+{off:#x}>", line.trim_end()))
    }
}

/// Parses `  #N 0x<16 hex>` (trailing whitespace allowed) into (N, address).
pub fn parse_frame(line: &str) -> Option<(u32, u64)> {
    let rest = line.strip_prefix("  #")?;
    let (num, rest) = rest.split_once(' ')?;
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hex = rest.trim_end().strip_prefix("0x")?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((num.parse().ok()?, u64::from_str_radix(hex, 16).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Symbolizer {
        let mk = |addr, size, name: &str| Sym { addr, size, name: name.to_string() };
        Symbolizer { syms: vec![mk(0x1000, 0x20, "a::f"), mk(0x1020, 0x10, "b::g"), mk(0x2000, 0, "asm_stub")] }
    }

    #[test]
    fn parses_only_exact_frames() {
        assert_eq!(parse_frame("  #3 0x000000000010a3f0"), Some((3, 0x10a3f0)));
        assert_eq!(parse_frame("  #12 0x000000000010A3F0  "), Some((12, 0x10a3f0)));
        assert_eq!(parse_frame(" #3 0x000000000010a3f0"), None);
        assert_eq!(parse_frame("  #3 0x10a3f0"), None);
        assert_eq!(parse_frame("  #x 0x000000000010a3f0"), None);
        assert_eq!(parse_frame("  # 0x000000000010a3f0"), None);
        assert_eq!(parse_frame("  #3 000000000010a3f0zz"), None);
    }

    #[test]
    fn looks_up_by_range() {
        let s = sample();
        assert_eq!(s.lookup(0x1000), Some(("a::f", 0)));
        assert_eq!(s.lookup(0x101f), Some(("a::f", 0x1f)));
        assert_eq!(s.lookup(0x1020), Some(("b::g", 0)));
        assert_eq!(s.lookup(0x1030), None); // past b::g's end
        assert_eq!(s.lookup(0xfff), None);
        assert_eq!(s.lookup(0x2345), Some(("asm_stub", 0x345)));
    }

    #[test]
    fn annotates_return_addresses_with_the_calling_function() {
        let s = sample();
        // A return address right after a call at the end of a::f belongs to a::f.
        assert_eq!(s.annotate("  #1 0x0000000000001020").as_deref(), Some("  #1 0x0000000000001020 <a::f+0x20>"));
        // Frame 0 (the faulting instruction) is exact.
        assert_eq!(s.annotate("  #0 0x0000000000001020").as_deref(), Some("  #0 0x0000000000001020 <b::g+0x0>"));
        assert_eq!(s.annotate("hello"), None);
        assert_eq!(s.annotate("  #2 0x0000000000000010"), None);
    }

    #[test]
    fn reads_a_real_elf() {
        // The test binary itself is an ELF with a symbol table (Linux hosts).
        let exe = std::env::current_exe().unwrap();
        let s = Symbolizer::from_file(&exe).unwrap();
        assert!(s.len() > 100, "only {} symbols", s.len());
        let addr = s.syms.iter().find(|x| x.name.contains("reads_a_real_elf")).map(|x| x.addr);
        assert!(addr.is_some(), "own test function not found among the symbols");
        let (name, off) = s.lookup(addr.unwrap() + 1).unwrap();
        assert!(name.contains("reads_a_real_elf") && off == 1, "{name}+{off}");
    }
}

//! ACPI table parsing: the MADT (CPUs and interrupt controllers), the MCFG,
//! virtio-mmio devices and the power-off method in the DSDT/FADT. Pure byte
//! parsing over slices, tested on the host; the hardware layer reads the
//! tables from physical memory and hands the bytes here.

/// One processor from the MADT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MadtCpu {
    /// Local APIC ID (what INIT/SIPI are addressed to).
    pub apic_id: u32,
    /// Usable now (enabled) rather than only hot-pluggable.
    pub enabled: bool,
}

/// One I/O APIC from the MADT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MadtIoApic {
    /// Its ID.
    pub id: u8,
    /// MMIO base.
    pub address: u32,
    /// First global system interrupt it serves.
    pub gsi_base: u32,
}

/// What the MADT says.
#[derive(Clone, Debug)]
pub struct Madt<const N: usize> {
    /// Local APIC MMIO base.
    pub lapic_address: u32,
    cpus: [MadtCpu; N],
    n_cpus: usize,
    ioapics: [MadtIoApic; 4],
    n_ioapics: usize,
}

/// Why a table was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcpiError {
    /// Shorter than its header or than the length it states.
    Truncated,
    /// The signature is not the one expected.
    BadSignature,
    /// The bytes do not sum to zero.
    BadChecksum,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Checks an ACPI table's header (signature, length, checksum) and returns
/// the table cut to its stated length.
pub fn check_table<'a>(bytes: &'a [u8], signature: &[u8; 4]) -> Result<&'a [u8], AcpiError> {
    if bytes.len() < 36 {
        return Err(AcpiError::Truncated);
    }
    if &bytes[0..4] != signature {
        return Err(AcpiError::BadSignature);
    }
    let len = u32_at(bytes, 4).ok_or(AcpiError::Truncated)? as usize;
    let table = bytes.get(..len).filter(|_| len >= 36).ok_or(AcpiError::Truncated)?;
    if table.iter().fold(0u8, |a, &b| a.wrapping_add(b)) != 0 {
        return Err(AcpiError::BadChecksum);
    }
    Ok(table)
}

impl<const N: usize> Madt<N> {
    /// Parses a MADT (`APIC` table), header included.
    pub fn parse(bytes: &[u8]) -> Result<Self, AcpiError> {
        let t = check_table(bytes, b"APIC")?;
        let mut m = Madt {
            lapic_address: u32_at(t, 36).ok_or(AcpiError::Truncated)?,
            cpus: [MadtCpu { apic_id: 0, enabled: false }; N],
            n_cpus: 0,
            ioapics: [MadtIoApic { id: 0, address: 0, gsi_base: 0 }; 4],
            n_ioapics: 0,
        };
        let mut at = 44;
        while at + 2 <= t.len() {
            let (ty, len) = (t[at], t[at + 1] as usize);
            if len < 2 || at + len > t.len() {
                break;
            }
            let e = &t[at..at + len];
            match ty {
                0 if len >= 8 => {
                    let flags = u32_at(e, 4).unwrap_or(0);
                    m.push_cpu(MadtCpu { apic_id: e[3] as u32, enabled: flags & 1 != 0 });
                }
                9 if len >= 16 => {
                    let flags = u32_at(e, 8).unwrap_or(0);
                    m.push_cpu(MadtCpu { apic_id: u32_at(e, 4).unwrap_or(0), enabled: flags & 1 != 0 });
                }
                1 if len >= 12 && m.n_ioapics < m.ioapics.len() => {
                    m.ioapics[m.n_ioapics] = MadtIoApic {
                        id: e[2],
                        address: u32_at(e, 4).unwrap_or(0),
                        gsi_base: u32_at(e, 8).unwrap_or(0),
                    };
                    m.n_ioapics += 1;
                }
                _ => {}
            }
            at += len;
        }
        Ok(m)
    }

    fn push_cpu(&mut self, c: MadtCpu) {
        if self.n_cpus < N && !self.cpus[..self.n_cpus].iter().any(|x| x.apic_id == c.apic_id) {
            self.cpus[self.n_cpus] = c;
            self.n_cpus += 1;
        }
    }

    /// Every processor listed.
    pub fn cpus(&self) -> &[MadtCpu] {
        &self.cpus[..self.n_cpus]
    }

    /// Every I/O APIC listed.
    pub fn ioapics(&self) -> &[MadtIoApic] {
        &self.ioapics[..self.n_ioapics]
    }
}

/// The physical addresses of the tables an RSDT (4-byte entries) or XSDT
/// (8-byte entries) lists.
pub fn sdt_entries(sdt: &[u8]) -> impl Iterator<Item = u64> + '_ {
    let wide = sdt.starts_with(b"XSDT");
    let step = if wide { 8 } else { 4 };
    sdt.get(36..).unwrap_or(&[]).chunks_exact(step).map(move |c| {
        if wide {
            u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))
        } else {
            u32::from_le_bytes(c.try_into().unwrap_or([0; 4])) as u64
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; 36];
        t[0..4].copy_from_slice(sig);
        t.extend_from_slice(body);
        let len = t.len() as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        let sum = t.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        t[9] = 0u8.wrapping_sub(sum);
        t
    }

    #[test]
    fn madt_lists_cpus_and_ioapics() {
        let mut body = vec![];
        body.extend_from_slice(&0xfee0_0000u32.to_le_bytes());
        body.extend_from_slice(&1u32.to_le_bytes());
        for id in 0..3u8 {
            body.extend_from_slice(&[0, 8, id, id, if id == 2 { 0 } else { 1 }, 0, 0, 0]);
        }
        body.extend_from_slice(&[1, 12, 7, 0]);
        body.extend_from_slice(&0xfec0_0000u32.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        let m = Madt::<8>::parse(&table(b"APIC", &body)).expect("valid MADT");
        assert_eq!(m.lapic_address, 0xfee0_0000);
        assert_eq!(m.cpus().len(), 3);
        assert!(m.cpus()[1].enabled && !m.cpus()[2].enabled);
        assert_eq!(m.ioapics(), &[MadtIoApic { id: 7, address: 0xfec0_0000, gsi_base: 0 }]);
    }

    #[test]
    fn bad_tables_are_refused() {
        let mut t = table(b"APIC", &[0; 8]);
        assert_eq!(Madt::<4>::parse(&t[..20]).err(), Some(AcpiError::Truncated));
        t[10] ^= 1;
        assert_eq!(Madt::<4>::parse(&t).err(), Some(AcpiError::BadChecksum));
        assert_eq!(Madt::<4>::parse(&table(b"FACP", &[0; 8])).err(), Some(AcpiError::BadSignature));
        // An entry whose length runs past the end stops the walk, without a panic.
        let m = Madt::<4>::parse(&table(b"APIC", &[0, 0, 0, 0, 0, 0, 0, 0, 0, 200, 1])).expect("parses");
        assert!(m.cpus().is_empty());
    }

    #[test]
    fn sdt_entries_read_both_widths() {
        let x = table(b"XSDT", &[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(sdt_entries(&x).collect::<Vec<_>>(), vec![1, 2]);
        let r = table(b"RSDT", &[3, 0, 0, 0, 4, 0, 0, 0]);
        assert_eq!(sdt_entries(&r).collect::<Vec<_>>(), vec![3, 4]);
    }
}

/// One PCI Express ECAM window from the MCFG: configuration space of buses
/// `start_bus..=end_bus` of `segment`, 1 MiB per bus from `base`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct McfgWindow {
    /// Physical address of bus `start_bus`'s configuration space.
    pub base: u64,
    /// PCI segment group.
    pub segment: u16,
    /// First bus the window decodes.
    pub start_bus: u8,
    /// Last bus the window decodes.
    pub end_bus: u8,
}

/// The ECAM windows an MCFG table lists (after its 36-byte header and 8
/// reserved bytes, 16 bytes each). Entries whose bus range is inverted or
/// whose base is 0 are skipped.
pub fn mcfg_windows(mcfg: &[u8]) -> impl Iterator<Item = McfgWindow> + '_ {
    mcfg.get(44..).unwrap_or(&[]).chunks_exact(16).filter_map(|e| {
        let base = u64::from_le_bytes(e[0..8].try_into().ok()?);
        let w = McfgWindow { base, segment: u16::from_le_bytes([e[8], e[9]]), start_bus: e[10], end_bus: e[11] };
        (base != 0 && w.start_bus <= w.end_bus).then_some(w)
    })
}

#[cfg(test)]
mod mcfg_tests {
    use super::*;

    #[test]
    fn reads_ecam_windows_and_skips_bad_ones() {
        let mut t = vec![0u8; 44];
        t[0..4].copy_from_slice(b"MCFG");
        let mut entry = |base: u64, seg: u16, a: u8, b: u8| {
            t.extend_from_slice(&base.to_le_bytes());
            t.extend_from_slice(&seg.to_le_bytes());
            t.extend_from_slice(&[a, b, 0, 0, 0, 0]);
        };
        entry(0xb000_0000, 0, 0, 255);
        entry(0, 0, 0, 1); // no base
        entry(0xc000_0000, 1, 9, 3); // inverted range
        entry(0xe000_0000, 2, 0, 7);
        t.extend_from_slice(&[1, 2, 3]); // a truncated tail is ignored
        let w: Vec<_> = mcfg_windows(&t).collect();
        assert_eq!(
            w,
            vec![
                McfgWindow { base: 0xb000_0000, segment: 0, start_bus: 0, end_bus: 255 },
                McfgWindow { base: 0xe000_0000, segment: 2, start_bus: 0, end_bus: 7 },
            ]
        );
        assert_eq!(mcfg_windows(&t[..40]).count(), 0);
    }
}

/// A virtio-mmio device found in the firmware's description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MmioDevice {
    /// MMIO base address.
    pub base: u64,
    /// Size of the register window.
    pub size: u64,
    /// Global system interrupt.
    pub gsi: u32,
}

/// Finds virtio-mmio devices (`_HID "LNRO0005"`) in a DSDT by their
/// resource templates: a Memory32Fixed descriptor (window) and an Extended
/// Interrupt descriptor (GSI) following the ID. This reads QEMU's microvm
/// DSDT without a full AML interpreter; anything that does not match the
/// pattern is skipped.
pub fn dsdt_virtio_mmio(dsdt: &[u8], out: &mut [MmioDevice]) -> usize {
    let mut n = 0;
    let mut at = 0;
    while n < out.len() {
        let Some(pos) = find(&dsdt[at..], b"LNRO0005") else { break };
        let start = at + pos + 8;
        let window = &dsdt[start..dsdt.len().min(start + 96)];
        let mem = find(window, &[0x86, 0x09, 0x00]).and_then(|i| {
            let d = window.get(i + 4..i + 12)?;
            let base = u32::from_le_bytes(d[0..4].try_into().ok()?) as u64;
            let size = u32::from_le_bytes(d[4..8].try_into().ok()?) as u64;
            Some((base, size))
        });
        let irq = find(window, &[0x89]).and_then(|i| {
            let d = window.get(i + 5..i + 9)?;
            Some(u32::from_le_bytes(d.try_into().ok()?))
        });
        if let (Some((base, size)), Some(gsi)) = (mem, irq) {
            out[n] = MmioDevice { base, size, gsi };
            n += 1;
        }
        at = start;
    }
    n
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses QEMU's `virtio_mmio.device=<size>@<base>:<irq>` kernel command-line
/// options (microvm with `acpi=off`). Sizes may carry a K/M suffix.
pub fn cmdline_virtio_mmio(cmdline: &str, out: &mut [MmioDevice]) -> usize {
    let mut n = 0;
    for tok in cmdline.split(' ').take_while(|t| *t != "--") {
        if n == out.len() {
            break;
        }
        let Some(v) = tok.strip_prefix("virtio_mmio.device=") else { continue };
        let parse = || -> Option<MmioDevice> {
            let (size, rest) = v.split_once('@')?;
            let (base, irq) = rest.split_once(':')?;
            let (digits, mult) = match size.as_bytes().last()? {
                b'K' | b'k' => (&size[..size.len() - 1], 1024),
                b'M' | b'm' => (&size[..size.len() - 1], 1024 * 1024),
                _ => (size, 1),
            };
            let num = |s: &str| match s.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).ok(),
                None => s.parse().ok(),
            };
            Some(MmioDevice { base: num(base)?, size: num(digits)? * mult, gsi: num(irq)? as u32 })
        };
        if let Some(d) = parse() {
            out[n] = d;
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod virtio_tests {
    use super::*;

    #[test]
    fn finds_lnro_devices_in_a_dsdt_fragment() {
        let mut t = b"junk Device VR00 _HID\x0dLNRO0005\x00 _CRS".to_vec();
        t.extend_from_slice(&[0x11, 0x16, 0x0a, 0x13, 0x86, 0x09, 0x00, 0x01]);
        t.extend_from_slice(&0xfeb0_0e00u32.to_le_bytes());
        t.extend_from_slice(&0x200u32.to_le_bytes());
        t.extend_from_slice(&[0x89, 0x06, 0x00, 0x09, 0x01]);
        t.extend_from_slice(&46u32.to_le_bytes());
        t.extend_from_slice(b"LNRO0005 truncated");
        let mut out = [MmioDevice { base: 0, size: 0, gsi: 0 }; 4];
        assert_eq!(dsdt_virtio_mmio(&t, &mut out), 1);
        assert_eq!(out[0], MmioDevice { base: 0xfeb0_0e00, size: 0x200, gsi: 46 });
    }

    #[test]
    fn parses_cmdline_devices() {
        let mut out = [MmioDevice { base: 0, size: 0, gsi: 0 }; 4];
        let c = "x=1 virtio_mmio.device=512@0xfeb00e00:12 virtio_mmio.device=4K@0xfeb01000:13 bad=virtio_mmio.device=1@2:3 -- virtio_mmio.device=1@0x1:1";
        assert_eq!(cmdline_virtio_mmio(c, &mut out), 2);
        assert_eq!(out[0], MmioDevice { base: 0xfeb0_0e00, size: 512, gsi: 12 });
        assert_eq!(out[1], MmioDevice { base: 0xfeb0_1000, size: 4096, gsi: 13 });
    }
}

/// How to switch the machine off (ACPI sleep state S5), from the FADT and
/// the DSDT's `\_S5` object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PowerOff {
    /// Fixed-hardware ACPI (QEMU q35/pc, most PCs): write `SLP_TYPx << 10 |
    /// SLP_EN` to the PM1a control port, and `b_value` to PM1b if there is one.
    /// `smi_cmd`/`acpi_enable`: how to switch ACPI mode on first (when SCI_EN
    /// reads 0), 0 when there is nothing to switch.
    Pm1 { pm1a: u16, pm1b: u16, a_value: u16, b_value: u16, smi_cmd: u16, acpi_enable: u8 },
    /// Hardware-reduced ACPI (QEMU microvm, cloud-hypervisor): write
    /// `SLP_TYPx << 2 | SLP_EN` to the sleep control register, in I/O space
    /// (`io`) or memory space.
    SleepControl { io: bool, address: u64, value: u8 },
}

/// FADT flag: hardware-reduced ACPI (no PM1 blocks; sleep control register instead).
const FADT_HW_REDUCED: u32 = 1 << 20;

/// A Generic Address Structure at `at`: (address space, address), for the
/// two spaces BareFlow can write (0 memory, 1 I/O); `None` for others or 0.
fn gas_at(b: &[u8], at: usize) -> Option<(bool, u64)> {
    let g = b.get(at..at + 12)?;
    let address = u64::from_le_bytes(g[4..12].try_into().ok()?);
    match g[0] {
        _ if address == 0 => None,
        0 => Some((false, address)),
        1 => Some((true, address)),
        _ => None,
    }
}

/// The S5 sleep types (SLP_TYPa, SLP_TYPb) of a DSDT: the first two elements
/// of its `Name (_S5, Package () {...})`. Read from the AML bytes by pattern
/// (NameOp, optional root prefix, `_S5_`, PackageOp, PkgLength, NumElements,
/// then integers as BytePrefix values, Zero, One or Ones), as OSes without
/// an AML interpreter do. `None` when the DSDT has no such package.
pub fn s5_sleep_types(dsdt: &[u8]) -> Option<(u8, u8)> {
    let mut at = 0;
    while let Some(pos) = find(&dsdt[at..], b"_S5_") {
        let name = at + pos;
        at = name + 4;
        let named = name >= 1 && (dsdt[name - 1] == 0x08 || (name >= 2 && dsdt[name - 1] == b'\\' && dsdt[name - 2] == 0x08));
        if !named || dsdt.get(at) != Some(&0x12) {
            continue;
        }
        // PkgLength: bits 7-6 of the lead byte count the bytes that follow it.
        let lead = *dsdt.get(at + 1)?;
        let mut p = at + 2 + (lead >> 6) as usize;
        let count = *dsdt.get(p)?;
        p += 1;
        let mut types = [0u8; 2];
        for t in types.iter_mut().take(count.min(2) as usize) {
            let (v, len) = match *dsdt.get(p)? {
                0x0a => (*dsdt.get(p + 1)?, 2),
                0x00 => (0, 1),
                0x01 => (1, 1),
                0xff => (0xff, 1),
                _ => return None,
            };
            *t = v;
            p += len;
        }
        if count == 1 {
            types[1] = types[0];
        }
        return Some((types[0], types[1]));
    }
    None
}

/// How to power off, from a FADT (`FACP`, header included) and its DSDT.
/// Without a `\_S5` package: type 5 for hardware-reduced ACPI (QEMU's GED
/// and cloud-hypervisor take 5), none for PM1 (there is no common value).
pub fn power_off(fadt: &[u8], dsdt: Option<&[u8]>) -> Option<PowerOff> {
    let flags = u32_at(fadt, 112).unwrap_or(0);
    let s5 = dsdt.and_then(s5_sleep_types);
    if flags & FADT_HW_REDUCED != 0 {
        let (io, address) = gas_at(fadt, 244)?;
        let typ = s5.map_or(5, |t| t.0);
        return Some(PowerOff::SleepControl { io, address, value: ((typ & 7) << 2) | 0x20 });
    }
    let (a, b) = s5?;
    let port = |legacy: usize, ext: usize| -> u16 {
        let old = u32_at(fadt, legacy).unwrap_or(0);
        let x = gas_at(fadt, ext).filter(|g| g.0).map_or(0, |g| g.1);
        u16::try_from(if old != 0 { old as u64 } else { x }).unwrap_or(0)
    };
    let pm1a = port(64, 172);
    if pm1a == 0 {
        return None;
    }
    Some(PowerOff::Pm1 {
        pm1a,
        pm1b: port(68, 184),
        a_value: ((a as u16 & 7) << 10) | (1 << 13),
        b_value: ((b as u16 & 7) << 10) | (1 << 13),
        smi_cmd: u16::try_from(u32_at(fadt, 48).unwrap_or(0)).unwrap_or(0),
        acpi_enable: fadt.get(52).copied().unwrap_or(0),
    })
}

#[cfg(test)]
mod power_tests {
    use super::*;

    fn fadt(flags: u32, pm1a: u32, pm1b: u32, sleep_ctl: Option<(u8, u64)>) -> Vec<u8> {
        let mut f = vec![0u8; 276];
        f[0..4].copy_from_slice(b"FACP");
        f[4..8].copy_from_slice(&276u32.to_le_bytes());
        f[48..52].copy_from_slice(&0xb2u32.to_le_bytes());
        f[52] = 0xf1;
        f[64..68].copy_from_slice(&pm1a.to_le_bytes());
        f[68..72].copy_from_slice(&pm1b.to_le_bytes());
        f[112..116].copy_from_slice(&flags.to_le_bytes());
        if let Some((space, addr)) = sleep_ctl {
            f[244] = space;
            f[245] = 8;
            f[248..256].copy_from_slice(&addr.to_le_bytes());
        }
        f
    }

    #[test]
    fn s5_packages_as_firmware_writes_them() {
        // cloud-hypervisor style: Name (_S5_, Package (One) { 0x05 })
        let ch = [b'x', 0x08, b'_', b'S', b'5', b'_', 0x12, 0x04, 0x01, 0x0a, 0x05];
        assert_eq!(s5_sleep_types(&ch), Some((5, 5)));
        // QEMU pc/q35 style: Name (\_S5, Package (0x04) { Zero, Zero, Zero, Zero })
        let q = [0x08, b'\\', b'_', b'S', b'5', b'_', 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00];
        assert_eq!(s5_sleep_types(&q), Some((0, 0)));
        // Two byte values, and a two-byte PkgLength.
        let two = [0x08, b'_', b'S', b'5', b'_', 0x12, 0x40, 0x00, 0x02, 0x0a, 0x07, 0x01];
        assert_eq!(s5_sleep_types(&two), Some((7, 1)));
        // `_S5_` not after a NameOp (a method call, a string), then a real one.
        let mixed = [b'_', b'S', b'5', b'_', 0x12, 0x04, 0x01, 0x0a, 0x03, 0x08, b'_', b'S', b'5', b'_', 0x12, 0x04, 0x01, 0x0a, 0x05];
        assert_eq!(s5_sleep_types(&mixed), Some((5, 5)));
        assert_eq!(s5_sleep_types(b"no sleep states here"), None);
        // Truncated in the middle of the package: no value, no panic.
        for n in 0..ch.len() {
            let _ = s5_sleep_types(&ch[..n]);
        }
        assert_eq!(s5_sleep_types(&ch[..10]), None);
        // An element that is not an integer constant.
        assert_eq!(s5_sleep_types(&[0x08, b'_', b'S', b'5', b'_', 0x12, 0x04, 0x01, 0x14, 0x05]), None);
    }

    #[test]
    fn power_off_from_fixed_hardware_and_hardware_reduced_fadts() {
        let dsdt = [0x08, b'_', b'S', b'5', b'_', 0x12, 0x06, 0x02, 0x0a, 0x05, 0x0a, 0x05];
        assert_eq!(
            power_off(&fadt(0, 0x604, 0, None), Some(&dsdt)),
            Some(PowerOff::Pm1 { pm1a: 0x604, pm1b: 0, a_value: (5 << 10) | (1 << 13), b_value: (5 << 10) | (1 << 13), smi_cmd: 0xb2, acpi_enable: 0xf1 })
        );
        // Fixed hardware needs the \_S5 values: no guess.
        assert_eq!(power_off(&fadt(0, 0x604, 0, None), None), None);
        assert_eq!(power_off(&fadt(0, 0, 0, None), Some(&dsdt)), None, "no PM1a block");
        // Hardware-reduced: the sleep control register, in I/O or memory space.
        assert_eq!(
            power_off(&fadt(FADT_HW_REDUCED, 0, 0, Some((1, 0x3c0))), None),
            Some(PowerOff::SleepControl { io: true, address: 0x3c0, value: (5 << 2) | 0x20 })
        );
        assert_eq!(
            power_off(&fadt(FADT_HW_REDUCED, 0, 0, Some((0, 0xfea0_0000))), Some(&dsdt)),
            Some(PowerOff::SleepControl { io: false, address: 0xfea0_0000, value: (5 << 2) | 0x20 })
        );
        assert_eq!(power_off(&fadt(FADT_HW_REDUCED, 0, 0, None), None), None, "no sleep control register");
        assert_eq!(power_off(&fadt(FADT_HW_REDUCED, 0, 0, Some((2, 0x10))), None), None, "PCI config space: not supported");
        // A short FADT (ACPI 1.0 is 116 bytes): no panic.
        assert!(power_off(&fadt(0, 0x604, 0, None)[..116], Some(&dsdt)).is_some());
        assert_eq!(power_off(&[0u8; 10], None), None);
    }
}

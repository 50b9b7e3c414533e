//! PCI: configuration space (ECAM from the ACPI MCFG where the firmware has
//! one, as on q35; else the legacy 0xCF8/0xCFC ports, as on pc), enumeration
//! of bus 0 and of the buses behind its bridges, virtio-pci transports, and
//! MSI-X routing of their interrupts.
//!
//! `virtio-drivers` does the virtio side (capabilities, BAR regions, the
//! transport); this module gives it a configuration-space accessor and adds
//! what it leaves out: bridges, bus mastering, and MSI-X (table entries and
//! the per-queue vectors in the virtio common configuration).
use super::dev::{DeviceIrq, IrqError, VirtioHal};
use super::mm::paging;
use super::{port, smp};
use crate::acpi::{self, McfgWindow};
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use virtio_drivers::transport::pci::bus::{BarInfo, Command, ConfigurationAccess, DeviceFunction, HeaderType, PciRoot};
use virtio_drivers::transport::pci::{PciTransport, virtio_device_type};

type ConfigLock = lock_api::Mutex<super::task::IrqRawMutex, ()>;
/// The 0xCF8 address / 0xCFC data pair is one shared register window.
static PORT_LOCK: ConfigLock = ConfigLock::new(());
/// Buses whose 1 MiB ECAM window is mapped (one bit per bus).
static ECAM_MAPPED: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

/// How configuration space is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cam {
    /// Legacy configuration mechanism #1 (ports 0xCF8/0xCFC), 256 bytes per function.
    Port,
    /// PCI Express enhanced configuration (memory-mapped), 4 KiB per function.
    Ecam(McfgWindow),
}

impl Cam {
    /// ECAM for segment 0 if the MCFG describes it, else port I/O.
    pub fn detect() -> Cam {
        smp::acpi_table(b"MCFG")
            .and_then(|t| acpi::mcfg_windows(t).find(|w| w.segment == 0 && w.start_bus == 0))
            .map_or(Cam::Port, Cam::Ecam)
    }

    /// The physical address of `(bus, device, function, offset)` in the ECAM
    /// window, mapping that bus's window on first use; `None` off the window.
    fn ecam_address(w: &McfgWindow, df: DeviceFunction, offset: u8) -> Option<u64> {
        if df.bus < w.start_bus || df.bus > w.end_bus || df.device >= 32 || df.function >= 8 {
            return None;
        }
        let bus_base = w.base + (u64::from(df.bus - w.start_bus) << 20);
        let bit = 1u64 << (df.bus % 64);
        let word = &ECAM_MAPPED[usize::from(df.bus / 64)];
        if word.load(Ordering::Acquire) & bit == 0 {
            paging::map_device(bus_base, 1 << 20).ok()?;
            word.fetch_or(bit, Ordering::AcqRel);
        }
        Some(bus_base + (u64::from(df.device) << 15 | u64::from(df.function) << 12 | u64::from(offset & 0xfc)))
    }
}

fn port_address(df: DeviceFunction, offset: u8) -> u32 {
    1 << 31
        | u32::from(df.bus) << 16
        | u32::from(df.device & 31) << 11
        | u32::from(df.function & 7) << 8
        | u32::from(offset & 0xfc)
}

impl ConfigurationAccess for Cam {
    fn read_word(&self, df: DeviceFunction, offset: u8) -> u32 {
        match self {
            Cam::Port => {
                let _g = PORT_LOCK.lock();
                port::outl(0xcf8, port_address(df, offset));
                port::inl(0xcfc)
            }
            Cam::Ecam(w) => match Cam::ecam_address(w, df, offset) {
                // SAFETY: a dword-aligned address inside this bus's ECAM
                // window, which the firmware described and is mapped as
                // device memory; reads of configuration space have no
                // memory effects on RAM.
                Some(a) => unsafe { core::ptr::read_volatile(a as *const u32) },
                None => u32::MAX,
            },
        }
    }

    fn write_word(&mut self, df: DeviceFunction, offset: u8, data: u32) {
        match self {
            Cam::Port => {
                let _g = PORT_LOCK.lock();
                port::outl(0xcf8, port_address(df, offset));
                port::outl(0xcfc, data);
            }
            Cam::Ecam(w) => {
                if let Some(a) = Cam::ecam_address(w, df, offset) {
                    // SAFETY: as for `read_word`; a configuration write
                    // changes the device, not RAM that Rust code owns.
                    unsafe { core::ptr::write_volatile(a as *mut u32, data) }
                }
            }
        }
    }

    unsafe fn unsafe_clone(&self) -> Self {
        *self
    }
}

/// One PCI function found by enumeration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciFunction {
    /// Bus, device and function numbers.
    pub bus: u8,
    /// Device (slot) number.
    pub device: u8,
    /// Function number.
    pub function: u8,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device_id: u16,
    /// Class code.
    pub class: u8,
    /// Subclass.
    pub subclass: u8,
}

impl PciFunction {
    fn df(&self) -> DeviceFunction {
        DeviceFunction { bus: self.bus, device: self.device, function: self.function }
    }
}

impl fmt::Display for PciFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02x}:{:02x}.{} {:04x}:{:04x} class {:02x}.{:02x}",
            self.bus, self.device, self.function, self.vendor, self.device_id, self.class, self.subclass
        )
    }
}

/// Every function on bus 0 and behind its PCI-to-PCI bridges (depth-first,
/// each bus once), through `cam`.
pub fn enumerate(cam: Cam) -> Vec<PciFunction> {
    let root = PciRoot::new(cam);
    let mut out = Vec::new();
    let mut pending: Vec<u8> = alloc::vec![0];
    let mut seen = [0u64; 4];
    while let Some(bus) = pending.pop() {
        let (w, b) = (usize::from(bus / 64), 1u64 << (bus % 64));
        if seen[w] & b != 0 {
            continue;
        }
        seen[w] |= b;
        for (df, info) in root.enumerate_bus(bus) {
            out.push(PciFunction {
                bus: df.bus,
                device: df.device,
                function: df.function,
                vendor: info.vendor_id,
                device_id: info.device_id,
                class: info.class,
                subclass: info.subclass,
            });
            if info.header_type == HeaderType::PciPciBridge {
                let secondary = (cam.read_word(df, 0x18) >> 8) as u8;
                if secondary != 0 {
                    pending.push(secondary);
                }
            }
        }
    }
    out
}

/// A virtio-pci device: its transport and its interrupt (MSI-X when the
/// device offers it, else its legacy line).
pub struct VirtioPci {
    /// The transport, for `virtio_drivers::device::*::new`.
    pub transport: PciTransport,
    /// How it interrupts (route it with [`DeviceIrq::route`] once the driver
    /// has set up its queues).
    pub irq: DeviceIrq,
    /// Where it sits.
    pub function: PciFunction,
}

impl fmt::Debug for VirtioPci {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VirtioPci {{ {}, irq: {:?} }}", self.function, self.irq)
    }
}

/// MSI-X of one virtio-pci function: where its capability, vector table and
/// virtio common configuration are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msix {
    cam: Cam,
    bus: u8,
    device: u8,
    function: u8,
    /// Offset of the MSI-X capability in configuration space.
    cap: u8,
    /// Physical address of the vector table (entry 0 is used).
    table: u64,
    /// Physical address of the virtio common configuration structure.
    common_cfg: u64,
}

/// Offsets in the virtio common configuration (virtio 1.x, 4.1.4.3).
const COMMON_MSIX_CONFIG: u64 = 16;
const COMMON_NUM_QUEUES: u64 = 18;
const COMMON_QUEUE_SELECT: u64 = 22;
const COMMON_QUEUE_MSIX_VECTOR: u64 = 26;
const NO_VECTOR: u16 = 0xffff;

fn mmio_read16(addr: u64) -> u16 {
    // SAFETY: `addr` lies in a BAR region of a virtio-pci function that
    // `virtio_pci_devices` mapped as device memory; register reads have no
    // effect on RAM.
    unsafe { core::ptr::read_volatile(addr as *const u16) }
}

fn mmio_write16(addr: u64, v: u16) {
    // SAFETY: as for `mmio_read16`.
    unsafe { core::ptr::write_volatile(addr as *mut u16, v) }
}

fn mmio_write32(addr: u64, v: u32) {
    // SAFETY: as for `mmio_read16` (the MSI-X table, mapped likewise).
    unsafe { core::ptr::write_volatile(addr as *mut u32, v) }
}

impl Msix {
    fn df(&self) -> DeviceFunction {
        DeviceFunction { bus: self.bus, device: self.device, function: self.function }
    }

    /// Points table entry 0 at `vector` on CPU `cpu`, enables MSI-X and
    /// gives every virtqueue that vector (the configuration-change interrupt
    /// gets none). Leaves the entry masked: [`Msix::unmask`] starts delivery.
    pub(crate) fn route(&self, vector: u8, cpu: usize) -> Result<(), IrqError> {
        let dest = smp::apic_id_of(cpu).unwrap_or(0);
        mmio_write32(self.table + 12, 1);
        mmio_write32(self.table, 0xfee0_0000 | (dest & 0xff) << 12);
        mmio_write32(self.table + 4, 0);
        mmio_write32(self.table + 8, u32::from(vector));
        let mut cam = self.cam;
        let ctl = cam.read_word(self.df(), self.cap);
        // Message control is the upper half: bit 31 enables MSI-X, bit 30 is the function mask.
        cam.write_word(self.df(), self.cap, (ctl | 1 << 31) & !(1 << 30));
        mmio_write16(self.common_cfg + COMMON_MSIX_CONFIG, NO_VECTOR);
        let queues = mmio_read16(self.common_cfg + COMMON_NUM_QUEUES);
        for q in 0..queues {
            mmio_write16(self.common_cfg + COMMON_QUEUE_SELECT, q);
            mmio_write16(self.common_cfg + COMMON_QUEUE_MSIX_VECTOR, 0);
            if mmio_read16(self.common_cfg + COMMON_QUEUE_MSIX_VECTOR) != 0 {
                return Err(IrqError::VectorRefused(q));
            }
        }
        Ok(())
    }

    /// Masks entry 0 (the device latches what it would have sent in its
    /// pending bit, delivered on unmask).
    pub(crate) fn mask(&self) {
        mmio_write32(self.table + 12, 1);
    }

    /// Unmasks entry 0.
    pub(crate) fn unmask(&self) {
        mmio_write32(self.table + 12, 0);
    }
}

/// The physical address and size of memory BAR `bar` of `df`.
fn memory_bar(root: &mut PciRoot<Cam>, df: DeviceFunction, bar: u8) -> Option<(u64, u64)> {
    match root.bar_info(df, bar).ok()?? {
        info @ BarInfo::Memory { .. } => info.memory_address_size().filter(|&(a, _)| a != 0),
        BarInfo::IO { .. } => None,
    }
}

/// MSI-X for `df`, if it has the capability and a virtio common
/// configuration in a memory BAR; both windows are mapped here.
fn find_msix(root: &mut PciRoot<Cam>, cam: Cam, df: DeviceFunction) -> Option<Msix> {
    let caps: Vec<_> = root.capabilities(df).map(|c| (c.id, c.offset)).collect();
    let msix_cap = caps.iter().find(|c| c.0 == 0x11)?.1;
    let table_word = cam.read_word(df, msix_cap + 4);
    let (bar_addr, bar_size) = memory_bar(root, df, (table_word & 7) as u8)?;
    let table_off = u64::from(table_word & !7);
    if table_off + 16 > bar_size {
        return None;
    }
    let common = caps.iter().filter(|c| c.0 == 0x09).find_map(|&(_, off)| {
        let head = cam.read_word(df, off);
        ((head >> 24) as u8 == 1).then(|| (cam.read_word(df, off + 4) as u8, u64::from(cam.read_word(df, off + 8))))
    })?;
    let (common_bar, common_size) = memory_bar(root, df, common.0)?;
    if common.1 + 32 > common_size {
        return None;
    }
    paging::map_device(bar_addr + table_off, 16).ok()?;
    paging::map_device(common_bar + common.1, 64).ok()?;
    Some(Msix {
        cam,
        bus: df.bus,
        device: df.device,
        function: df.function,
        cap: msix_cap,
        table: bar_addr + table_off,
        common_cfg: common_bar + common.1,
    })
}

/// Every virtio-pci device, with bus mastering and memory decoding turned
/// on and its transport built. Functions that fail are reported and skipped.
pub fn virtio_pci_devices() -> Vec<VirtioPci> {
    let cam = Cam::detect();
    let functions = enumerate(cam);
    let mut root = PciRoot::new(cam);
    let mut out = Vec::new();
    for f in functions {
        let df = f.df();
        let info = virtio_drivers::transport::pci::bus::DeviceFunctionInfo {
            vendor_id: f.vendor,
            device_id: f.device_id,
            class: f.class,
            subclass: f.subclass,
            prog_if: 0,
            revision: 0,
            header_type: HeaderType::Standard,
        };
        if virtio_device_type(&info).is_none() {
            continue;
        }
        let (_, command) = root.get_status_command(df);
        root.set_command(df, command | Command::MEMORY_SPACE | Command::BUS_MASTER);
        let msix = find_msix(&mut root, cam, df);
        match PciTransport::new::<VirtioHal, _>(&mut root, df) {
            Ok(transport) => {
                let irq = match msix {
                    Some(m) => DeviceIrq::Msix(m),
                    None => match (cam.read_word(df, 0x3c) & 0xff) as u8 {
                        0 | 0xff => DeviceIrq::None,
                        line => DeviceIrq::Gsi(u32::from(line)),
                    },
                };
                out.push(VirtioPci { transport, irq, function: f });
            }
            Err(e) => super::console::write_fmt(format_args!("bareflow: virtio-pci {f}: {e}\n")),
        }
    }
    out
}

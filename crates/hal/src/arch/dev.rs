//! Devices: DMA memory and MMIO for `virtio-drivers`, the I/O APICs, and the
//! discovery of virtio-mmio devices (ACPI DSDT on microvm, or QEMU's
//! `virtio_mmio.device=` command-line options when ACPI is off).
//!
//! The kernel gets safe, owned values: a [`VirtioMmio`] transport with its
//! interrupt line, and [`VirtioHal`] to instantiate `virtio-drivers` devices.
use super::mm::{self, paging};
use super::{boot, console, smp, time};
use crate::acpi::{self, MmioDevice};
use alloc::vec::Vec;
use core::ptr::NonNull;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::{BufferDirection, PhysAddr};

/// The `virtio-drivers` hardware abstraction: DMA from the frame allocator
/// (identity-mapped, so physical = virtual), MMIO mapped uncached.
#[derive(Debug)]
pub struct VirtioHal;

// SAFETY: `dma_alloc` returns zeroed, exclusively owned, page-aligned frames
// whose physical and virtual addresses are equal (identity map); `share`
// returns the physical address of a buffer that is identity-mapped RAM (heap
// or stack), so the device reads and writes exactly that buffer.
unsafe impl virtio_drivers::Hal for VirtioHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let p = mm::alloc_frames(pages as u64).expect("out of memory for virtio DMA");
        (p as PhysAddr, NonNull::new(p as *mut u8).expect("frames are never at address 0"))
    }

    unsafe fn dma_dealloc(paddr: PhysAddr, _vaddr: NonNull<u8>, pages: usize) -> i32 {
        mm::free_frames(paddr as u64, pages as u64);
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, size: usize) -> NonNull<u8> {
        if let Err(e) = paging::map_device(paddr as u64, size as u64) {
            console::write_fmt(format_args!("bareflow: cannot map device memory at {paddr:#x}: {e:?}\n"));
        }
        NonNull::new(paddr as *mut u8).expect("device windows are never at address 0")
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.as_ptr() as *mut u8 as usize as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

/// A virtio-mmio device: its transport and its interrupt.
pub struct VirtioMmio {
    /// The transport, for `virtio_drivers::device::*::new`.
    pub transport: MmioTransport<'static>,
    /// Its global system interrupt.
    pub gsi: u32,
    /// Its register window.
    pub base: u64,
}

impl core::fmt::Debug for VirtioMmio {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "VirtioMmio {{ base: {:#x}, gsi: {} }}", self.base, self.gsi)
    }
}

/// The DSDT the FADT points to, if ACPI tables are there.
pub(crate) fn dsdt() -> Option<&'static [u8]> {
    let fadt = smp::acpi_table(b"FACP")?;
    let x = fadt.get(140..148).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes).filter(|&a| a != 0);
    let addr = x.or_else(|| fadt.get(40..44).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes).map(u64::from))?;
    smp::read_phys_table(addr)
}

/// Every virtio-mmio device the firmware describes, probed: only windows
/// whose magic and version check out, with a device behind them.
pub fn virtio_mmio_devices() -> Vec<VirtioMmio> {
    let mut found = [MmioDevice { base: 0, size: 0, gsi: 0 }; 32];
    let mut n = acpi::cmdline_virtio_mmio(boot::boot_info().cmdline(), &mut found);
    if n == 0 {
        if let Some(d) = dsdt() {
            n = acpi::dsdt_virtio_mmio(d, &mut found);
        }
    }
    let mut out = Vec::new();
    for d in &found[..n] {
        if d.size < 0x100 || paging::map_device(d.base, d.size).is_err() {
            continue;
        }
        let header = NonNull::new(d.base as *mut VirtIOHeader).expect("non-zero MMIO base");
        // SAFETY: the firmware describes [base, base+size) as this device's
        // virtio-mmio register window, now mapped as device memory; nothing
        // else in BareFlow maps or touches it, and it lives forever.
        match unsafe { MmioTransport::new(header, d.size as usize) } {
            Ok(t) => out.push(VirtioMmio { transport: t, gsi: d.gsi, base: d.base }),
            Err(_) => {} // an empty slot (device ID 0) or not virtio
        }
    }
    out
}

struct IoApic {
    base: u64,
    gsi_base: u32,
    pins: u32,
}

/// Interrupts stay off while it is held: device interrupt handlers mask
/// their line through it, and one that hit the CPU holding it (a driver
/// thread unmasking) would otherwise spin forever.
static IOAPICS: lock_api::Mutex<super::task::IrqRawMutex, Vec<IoApic>> = lock_api::Mutex::new(Vec::new());

fn ioapic_write(base: u64, reg: u32, v: u32) {
    // SAFETY: `base` is an I/O APIC window from the MADT, mapped as device
    // memory; IOREGSEL at +0, IOWIN at +0x10.
    unsafe {
        core::ptr::write_volatile(base as *mut u32, reg);
        core::ptr::write_volatile((base + 0x10) as *mut u32, v);
    }
}

fn ioapic_read(base: u64, reg: u32) -> u32 {
    // SAFETY: as for `ioapic_write`.
    unsafe {
        core::ptr::write_volatile(base as *mut u32, reg);
        core::ptr::read_volatile((base + 0x10) as *const u32)
    }
}

fn ioapics_init() {
    let mut l = IOAPICS.lock();
    if !l.is_empty() {
        return;
    }
    if let Some(m) = smp::madt() {
        for io in m.ioapics() {
            let base = io.address as u64;
            if paging::map_device(base, 0x20).is_ok() {
                let pins = ((ioapic_read(base, 1) >> 16) & 0xff) + 1;
                l.push(IoApic { base, gsi_base: io.gsi_base, pins });
            }
        }
    }
}

/// Why an interrupt could not be routed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqError {
    /// No I/O APIC serves this GSI.
    NoIoApic(u32),
    /// The device refused MSI-X vector 0 for this virtqueue.
    VectorRefused(u16),
    /// The device has no interrupt the kernel can use (poll it).
    NoInterrupt,
}

impl core::fmt::Display for IrqError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IrqError::NoIoApic(g) => write!(f, "no I/O APIC serves GSI {g}"),
            IrqError::VectorRefused(q) => write!(f, "the device refused an MSI-X vector for queue {q}"),
            IrqError::NoInterrupt => f.write_str("the device has no usable interrupt"),
        }
    }
}

/// How a device interrupts: a legacy line through an I/O APIC, or MSI-X.
/// A small copyable handle, so that an interrupt handler can mask it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceIrq {
    /// A global system interrupt (I/O APIC pin), level-triggered.
    Gsi(u32),
    /// MSI-X entry 0 of a virtio-pci function, for all its queues.
    Msix(super::pci::Msix),
    /// None: the driver polls.
    None,
}

impl DeviceIrq {
    /// Delivers the device's interrupts as `vector` on CPU `cpu`, masked
    /// until [`DeviceIrq::unmask`]. For MSI-X, call it after the driver has
    /// set up its queues (the vectors are per queue).
    pub fn route(&self, vector: u8, cpu: usize) -> Result<(), IrqError> {
        match self {
            DeviceIrq::Gsi(g) => route_irq(*g, vector, cpu),
            DeviceIrq::Msix(m) => m.route(vector, cpu),
            DeviceIrq::None => Err(IrqError::NoInterrupt),
        }
    }

    /// Masks it (safe from an interrupt handler).
    pub fn mask(&self) {
        match self {
            DeviceIrq::Gsi(g) => mask_irq(*g),
            DeviceIrq::Msix(m) => m.mask(),
            DeviceIrq::None => {}
        }
    }

    /// Unmasks it.
    pub fn unmask(&self) {
        match self {
            DeviceIrq::Gsi(g) => unmask_irq(*g),
            DeviceIrq::Msix(m) => m.unmask(),
            DeviceIrq::None => {}
        }
    }

    /// `"GSI 12"`, `"MSI-X"` or `"none"`, for logs and stats.
    pub fn kind(&self) -> &'static str {
        match self {
            DeviceIrq::Gsi(_) => "GSI",
            DeviceIrq::Msix(_) => "MSI-X",
            DeviceIrq::None => "none",
        }
    }
}

/// Where a virtio device sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceLocation {
    /// A virtio-mmio window at this address.
    Mmio(u64),
    /// A PCI function.
    Pci(super::pci::PciFunction),
}

impl core::fmt::Display for DeviceLocation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DeviceLocation::Mmio(a) => write!(f, "virtio-mmio@{a:#x}"),
            DeviceLocation::Pci(p) => write!(f, "pci {p}"),
        }
    }
}

/// A virtio device on either transport, ready for a `virtio-drivers` driver.
pub struct VirtioDevice {
    /// The transport.
    pub transport: virtio_drivers::transport::SomeTransport<'static>,
    /// Its interrupt.
    pub irq: DeviceIrq,
    /// Where it is.
    pub location: DeviceLocation,
}

impl core::fmt::Debug for VirtioDevice {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "VirtioDevice {{ {}, irq: {:?} }}", self.location, self.irq)
    }
}

/// Every virtio device: virtio-mmio windows the firmware describes, then
/// virtio-pci functions.
pub fn virtio_devices() -> Vec<VirtioDevice> {
    let mut out: Vec<VirtioDevice> = virtio_mmio_devices()
        .into_iter()
        .map(|d| VirtioDevice { transport: d.transport.into(), irq: DeviceIrq::Gsi(d.gsi), location: DeviceLocation::Mmio(d.base) })
        .collect();
    for d in super::pci::virtio_pci_devices() {
        out.push(VirtioDevice { transport: d.transport.into(), irq: d.irq, location: DeviceLocation::Pci(d.function) });
    }
    out
}

fn with_pin<R>(gsi: u32, f: impl FnOnce(u64, u32) -> R) -> Result<R, IrqError> {
    ioapics_init();
    let l = IOAPICS.lock();
    let io = l.iter().find(|io| gsi >= io.gsi_base && gsi < io.gsi_base + io.pins).ok_or(IrqError::NoIoApic(gsi))?;
    Ok(f(io.base, gsi - io.gsi_base))
}

/// Routes `gsi` to `vector` on CPU `cpu` (level-triggered, active-high, as
/// virtio-mmio interrupts are), masked until [`unmask_irq`].
pub fn route_irq(gsi: u32, vector: u8, cpu: usize) -> Result<(), IrqError> {
    let dest = smp::apic_id_of(cpu).unwrap_or(0);
    with_pin(gsi, |base, pin| {
        ioapic_write(base, 0x11 + 2 * pin, dest << 24);
        ioapic_write(base, 0x10 + 2 * pin, vector as u32 | 1 << 15 | 1 << 16);
    })
}

/// Masks `gsi` (the device's handler thread unmasks it when done).
pub fn mask_irq(gsi: u32) {
    let _ = with_pin(gsi, |base, pin| {
        let lo = ioapic_read(base, 0x10 + 2 * pin);
        ioapic_write(base, 0x10 + 2 * pin, lo | 1 << 16);
    });
}

/// Unmasks `gsi`.
pub fn unmask_irq(gsi: u32) {
    let _ = with_pin(gsi, |base, pin| {
        let lo = ioapic_read(base, 0x10 + 2 * pin);
        ioapic_write(base, 0x10 + 2 * pin, lo & !(1 << 16));
    });
}

/// Acknowledges the interrupt being handled (LAPIC EOI).
pub fn end_of_interrupt() {
    time::end_of_interrupt();
}

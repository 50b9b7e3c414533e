//! The virtio-blk driver: each device registers as `blkN`, a [`Disk`] whose
//! calls run in the caller's thread. A request parks the caller until the
//! device interrupts (or a short timeout passes, so a lost interrupt costs
//! time, not correctness); requests to one disk are serialised by its lock.
use crate::sync::Mutex;
use crate::task;
use alloc::format;
use alloc::sync::Arc;
use bareflow_hal::blk::{BLOCK_SIZE, BlkError, VirtioBlk};
use bareflow_hal::dev::{DeviceIrq, VirtioDevice};
use bareflow_hal::task::IrqMutex;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;

/// Interrupt vectors of the block devices (one each).
const BLK_VECTOR: u8 = 0x41;
/// At most this many disks get a driver.
const MAX_DISKS: usize = 4;

/// The thread waiting on each disk's request, woken by its interrupt.
/// (Masked while held, so the interrupt handler never spins on its own CPU's holder.)
static WAITER: [IrqMutex<Option<&'static task::Thread>>; MAX_DISKS] = [const { IrqMutex::new(None) }; MAX_DISKS];
static IRQS: [spin::Once<DeviceIrq>; MAX_DISKS] = [const { spin::Once::new() }; MAX_DISKS];
static NEXT: AtomicUsize = AtomicUsize::new(0);

fn on_irq(vector: u8) {
    let i = usize::from(vector.wrapping_sub(BLK_VECTOR));
    if let (Some(irq), Some(w)) = (IRQS.get(i).and_then(|o| o.get()), WAITER.get(i)) {
        irq.mask();
        if let Some(t) = *w.lock() {
            t.unpark();
        }
    }
    bareflow_hal::dev::end_of_interrupt();
}

/// Counters of one disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// Blocks read.
    pub blocks_read: u64,
    /// Blocks written.
    pub blocks_written: u64,
    /// Flushes.
    pub flushes: u64,
}

/// A block device: 512-byte blocks, read, write, flush, capacity.
pub struct Disk {
    index: usize,
    irq: DeviceIrq,
    dev: Mutex<(VirtioBlk, DiskStats)>,
    capacity: u64,
    readonly: bool,
}

impl core::fmt::Debug for Disk {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Disk {{ blk{}, {} blocks, irq {} }}", self.index, self.capacity, self.irq.kind())
    }
}

impl Disk {
    /// Bytes per block.
    pub const BLOCK_SIZE: usize = BLOCK_SIZE;

    /// Capacity in blocks.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Whether writes are refused.
    pub fn readonly(&self) -> bool {
        self.readonly
    }

    /// Counters so far.
    pub fn stats(&self) -> DiskStats {
        self.dev.lock().1
    }

    fn with<R>(&self, f: impl FnOnce(&mut VirtioBlk, &mut dyn FnMut()) -> R) -> R {
        let mut g = self.dev.lock();
        *WAITER[self.index].lock() = Some(task::current());
        let irq = self.irq;
        let polled = matches!(irq, DeviceIrq::None);
        let mut wait = move || {
            if polled {
                task::yield_now();
            } else {
                irq.unmask();
                task::park_timeout(Duration::from_millis(2));
            }
        };
        let r = f(&mut g.0, &mut wait);
        *WAITER[self.index].lock() = None;
        r
    }

    /// Reads blocks `block..` into `buf` (a whole number of blocks).
    pub fn read(&self, block: u64, buf: &mut [u8]) -> Result<(), BlkError> {
        self.with(|d, w| d.read(block, buf, w))?;
        self.dev.lock().1.blocks_read += (buf.len() / BLOCK_SIZE) as u64;
        Ok(())
    }

    /// Writes `buf` (a whole number of blocks) to blocks `block..`;
    /// durable after [`Disk::flush`].
    pub fn write(&self, block: u64, buf: &[u8]) -> Result<(), BlkError> {
        self.with(|d, w| d.write(block, buf, w))?;
        self.dev.lock().1.blocks_written += (buf.len() / BLOCK_SIZE) as u64;
        Ok(())
    }

    /// Makes every completed write durable.
    pub fn flush(&self) -> Result<(), BlkError> {
        let mut g = self.dev.lock();
        g.0.flush()?;
        g.1.flushes += 1;
        Ok(())
    }
}

/// Initialises `dev` and registers it as the next `blkN`.
pub fn start(dev: VirtioDevice) {
    let index = NEXT.fetch_add(1, Ordering::Relaxed);
    if index >= MAX_DISKS {
        log::warn!("virtio-blk at {}: more than {MAX_DISKS} disks; ignoring it", dev.location);
        return;
    }
    let blk = match VirtioBlk::new(dev.transport) {
        Ok(b) => b,
        Err(e) => {
            log::error!("virtio-blk at {}: {e}", dev.location);
            return;
        }
    };
    let vector = BLK_VECTOR + index as u8;
    let mut irq = dev.irq;
    IRQS[index].call_once(|| irq);
    bareflow_hal::trap::set_irq_handler(vector, on_irq);
    let cpu = bareflow_hal::smp::cpu_index();
    if let Err(e) = irq.route(vector, cpu) {
        log::warn!("virtio-blk at {}: {e}; polling", dev.location);
        irq = DeviceIrq::None;
    }
    let (capacity, readonly) = (blk.capacity(), blk.readonly());
    let disk = Arc::new(Disk { index, irq, dev: Mutex::new((blk, DiskStats::default())), capacity, readonly });
    super::register(&format!("blk{index}"), "virtio-blk", disk);
}

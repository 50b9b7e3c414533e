//! virtio-blk requests as safe calls. `virtio-drivers` offers blocking calls
//! that spin on the used ring, and non-blocking ones that are `unsafe`
//! because the device keeps using the buffers after they return. Here each
//! request borrows its buffers for the whole call and does not return before
//! the device has handed them back; while it waits it calls the caller's
//! `wait` (the kernel parks the thread until the device interrupts), so a
//! request costs no CPU while the device works.
use super::dev::VirtioHal;
use core::fmt;
use virtio_drivers::device::blk::{BlkReq, BlkResp, SECTOR_SIZE, VirtIOBlk};
use virtio_drivers::transport::SomeTransport;

/// Bytes per block (virtio-blk addresses 512-byte sectors).
pub const BLOCK_SIZE: usize = SECTOR_SIZE;

/// Why a block request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkError {
    /// The buffer is empty or not a whole number of blocks.
    Unaligned {
        /// Its length in bytes.
        len: usize,
    },
    /// The request runs past the end of the device.
    OutOfRange {
        /// First block asked for.
        block: u64,
        /// Blocks asked for.
        count: u64,
        /// Blocks the device has.
        capacity: u64,
    },
    /// The device is read-only.
    ReadOnly,
    /// The device or the queue reported an error.
    Device(virtio_drivers::Error),
}

impl fmt::Display for BlkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlkError::Unaligned { len } => {
                write!(f, "a buffer of {len} bytes is not a whole, non-zero number of {BLOCK_SIZE}-byte blocks")
            }
            BlkError::OutOfRange { block, count, capacity } => write!(
                f,
                "blocks {block}..{} are past the end of the device ({capacity} blocks)",
                block.saturating_add(*count)
            ),
            BlkError::ReadOnly => f.write_str("the device is read-only"),
            BlkError::Device(e) => write!(f, "device error: {e}"),
        }
    }
}

impl From<virtio_drivers::Error> for BlkError {
    fn from(e: virtio_drivers::Error) -> Self {
        BlkError::Device(e)
    }
}

/// A virtio-blk device, one request at a time.
pub struct VirtioBlk {
    dev: VirtIOBlk<VirtioHal, SomeTransport<'static>>,
}

impl fmt::Debug for VirtioBlk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VirtioBlk {{ blocks: {} }}", self.dev.capacity())
    }
}

impl VirtioBlk {
    /// Initialises the device behind `transport`.
    pub fn new(transport: SomeTransport<'static>) -> Result<Self, BlkError> {
        Ok(VirtioBlk { dev: VirtIOBlk::new(transport)? })
    }

    /// Capacity in blocks of [`BLOCK_SIZE`] bytes.
    pub fn capacity(&self) -> u64 {
        self.dev.capacity()
    }

    /// Whether the device refuses writes.
    pub fn readonly(&self) -> bool {
        self.dev.readonly()
    }

    /// Acknowledges the device's interrupt (call before waiting again).
    pub fn ack_interrupt(&mut self) {
        let _ = self.dev.ack_interrupt();
    }

    fn check(&self, block: u64, len: usize) -> Result<(), BlkError> {
        if len == 0 || len % BLOCK_SIZE != 0 {
            return Err(BlkError::Unaligned { len });
        }
        let count = (len / BLOCK_SIZE) as u64;
        let capacity = self.capacity();
        if block.checked_add(count).is_none_or(|end| end > capacity) {
            return Err(BlkError::OutOfRange { block, count, capacity });
        }
        Ok(())
    }

    fn wait_for(&mut self, token: u16, wait: &mut dyn FnMut()) {
        while self.dev.peek_used() != Some(token) {
            wait();
            self.dev.ack_interrupt();
        }
    }

    /// Reads blocks `block..block + buf.len() / BLOCK_SIZE` into `buf`,
    /// calling `wait` until the device is done.
    pub fn read(&mut self, block: u64, buf: &mut [u8], wait: &mut dyn FnMut()) -> Result<(), BlkError> {
        self.check(block, buf.len())?;
        let mut req = BlkReq::default();
        let mut resp = BlkResp::default();
        // SAFETY: `req`, `resp` (this frame) and `buf` (borrowed for this
        // call) are not touched until `wait_for` has seen the device return
        // this token, and `complete_read_blocks` gets the same three. Nothing
        // can leave this function in between: the image aborts on panic, so
        // `wait` cannot unwind past the pending request.
        let token = unsafe { self.dev.read_blocks_nb(block as usize, &mut req, buf, &mut resp)? };
        self.wait_for(token, wait);
        // SAFETY: the same buffers as the request's, now returned by the device.
        unsafe { self.dev.complete_read_blocks(token, &req, buf, &mut resp)? };
        Ok(())
    }

    /// Writes `buf` to blocks `block..`, calling `wait` until the device is
    /// done. The data is durable only after [`VirtioBlk::flush`].
    pub fn write(&mut self, block: u64, buf: &[u8], wait: &mut dyn FnMut()) -> Result<(), BlkError> {
        if self.readonly() {
            return Err(BlkError::ReadOnly);
        }
        self.check(block, buf.len())?;
        let mut req = BlkReq::default();
        let mut resp = BlkResp::default();
        // SAFETY: as for `read`: the buffers stay borrowed and untouched
        // until the device hands this token back.
        let token = unsafe { self.dev.write_blocks_nb(block as usize, &mut req, buf, &mut resp)? };
        self.wait_for(token, wait);
        // SAFETY: the same buffers as the request's, now returned by the device.
        unsafe { self.dev.complete_write_blocks(token, &req, buf, &mut resp)? };
        Ok(())
    }

    /// Asks the device to make every completed write durable (virtio
    /// `VIRTIO_BLK_T_FLUSH`; a no-op for devices without a write cache).
    /// The device answers flushes quickly, so this one spins.
    pub fn flush(&mut self) -> Result<(), BlkError> {
        Ok(self.dev.flush()?)
    }
}

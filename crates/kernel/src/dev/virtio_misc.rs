//! virtio-rng (`rng0`) and virtio-console (`console0`). Both are small,
//! rarely used devices, so their calls run in the caller's thread and wait
//! for the device by polling its used ring (what `virtio-drivers` does).
use crate::sync::Mutex;
use alloc::sync::Arc;
use bareflow_hal::dev::{VirtioDevice, VirtioHal};
use core::fmt;
use virtio_drivers::device::console::VirtIOConsole;
use virtio_drivers::device::rng::VirtIORng;
use virtio_drivers::transport::SomeTransport;

/// A device call that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceError(pub virtio_drivers::Error);

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "virtio device error: {}", self.0)
    }
}

/// The host's entropy source (virtio-rng).
pub struct Rng {
    dev: Mutex<(VirtIORng<VirtioHal, SomeTransport<'static>>, u64)>,
}

impl Rng {
    /// Fills `buf` with entropy from the host.
    pub fn fill(&self, buf: &mut [u8]) -> Result<(), DeviceError> {
        let mut g = self.dev.lock();
        let mut at = 0;
        while at < buf.len() {
            let n = g.0.request_entropy(&mut buf[at..]).map_err(DeviceError)?;
            at += n;
            g.1 += n as u64;
        }
        Ok(())
    }

    /// Bytes delivered so far.
    pub fn bytes_delivered(&self) -> u64 {
        self.dev.lock().1
    }
}

/// A virtio console port (output to the host, input from it).
pub struct Console {
    dev: Mutex<VirtIOConsole<VirtioHal, SomeTransport<'static>>>,
}

impl Console {
    /// Writes `bytes` to the host side of the console.
    pub fn write(&self, bytes: &[u8]) -> Result<(), DeviceError> {
        self.dev.lock().send_bytes(bytes).map_err(DeviceError)
    }

    /// The next byte the host sent, if any has arrived.
    pub fn try_read(&self) -> Result<Option<u8>, DeviceError> {
        let mut d = self.dev.lock();
        let _ = d.ack_interrupt();
        d.recv(true).map_err(DeviceError)
    }
}

/// Initialises a virtio-rng device and registers it as `rng0`.
pub fn start_rng(dev: VirtioDevice) {
    match VirtIORng::new(dev.transport) {
        Ok(r) => super::register("rng0", "virtio-rng", Arc::new(Rng { dev: Mutex::new((r, 0)) })),
        Err(e) => log::error!("virtio-rng at {}: {e}", dev.location),
    }
}

/// Initialises a virtio-console device and registers it as `console0`.
pub fn start_console(dev: VirtioDevice) {
    match VirtIOConsole::new(dev.transport) {
        Ok(c) => super::register("console0", "virtio-console", Arc::new(Console { dev: Mutex::new(c) })),
        Err(e) => log::error!("virtio-console at {}: {e}", dev.location),
    }
}

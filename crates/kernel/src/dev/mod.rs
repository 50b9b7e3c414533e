//! Devices: the registry in which drivers register devices by name, and the
//! drivers (probed at boot, one thread per device).
//!
//! A consumer asks for a device by name and waits, with a deadline, until its
//! driver has registered it: there is no window in which a consumer that
//! starts before the driver finds an empty registry and fails. After the
//! deadline the error lists what is attached.
#[cfg(feature = "blk")]
pub mod virtio_blk;
#[cfg(any(feature = "net", feature = "blk"))]
pub mod virtio_misc;
#[cfg(feature = "net")]
pub mod virtio_net;

use crate::sync::{Condvar, Mutex};
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::fmt;
use core::time::Duration;

struct Entry {
    name: String,
    kind: &'static str,
    dev: Arc<dyn Any + Send + Sync>,
}

static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
static CHANGED: Condvar = Condvar::new();
/// Drivers still probing: a lookup for a missing name only waits while some are.
static PROBING: Mutex<usize> = Mutex::new(0);

/// A device that did not appear in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFound {
    /// The name asked for.
    pub name: String,
    /// What is attached (name and kind).
    pub attached: Vec<(String, &'static str)>,
    /// How long we waited.
    pub waited: Duration,
}

impl fmt::Display for NotFound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no device `{}` after waiting {} ms; attached: ", self.name, self.waited.as_millis())?;
        if self.attached.is_empty() {
            f.write_str("none (start QEMU with a device, e.g. `cargo bareflow run APP --net user`)")
        } else {
            let list: Vec<String> = self.attached.iter().map(|(n, k)| alloc::format!("{n} ({k})")).collect();
            f.write_str(&list.join(", "))
        }
    }
}

/// Registers `dev` under `name` and wakes everyone waiting for it.
pub fn register<T: Any + Send + Sync>(name: &str, kind: &'static str, dev: Arc<T>) {
    REGISTRY.lock().push(Entry { name: name.to_string(), kind, dev });
    CHANGED.notify_all();
    log::info!("device {name} ({kind}) registered");
}

/// The devices attached now.
pub fn attached() -> Vec<(String, &'static str)> {
    REGISTRY.lock().iter().map(|e| (e.name.clone(), e.kind)).collect()
}

/// The device named `name` with type `T`, waiting up to `deadline` for its driver to register it.
pub fn wait_for<T: Any + Send + Sync>(name: &str, deadline: Duration) -> Result<Arc<T>, NotFound> {
    let start = crate::time::monotonic_nanos();
    let end = start.saturating_add(deadline.as_nanos() as u64);
    let mut reg = REGISTRY.lock();
    loop {
        if let Some(e) = reg.iter().find(|e| e.name == name) {
            if let Ok(d) = e.dev.clone().downcast::<T>() {
                return Ok(d);
            }
        }
        let now = crate::time::monotonic_nanos();
        if now >= end {
            let attached = reg.iter().map(|e| (e.name.clone(), e.kind)).collect();
            return Err(NotFound { name: name.to_string(), attached, waited: Duration::from_nanos(now - start) });
        }
        reg = CHANGED.wait_timeout(reg, Duration::from_nanos(end - now)).0;
    }
}

/// Marks a driver as probing (until the guard drops).
pub struct Probing;

impl Probing {
    /// Starts a probe.
    pub fn start() -> Self {
        *PROBING.lock() += 1;
        Probing
    }
}

impl Drop for Probing {
    fn drop(&mut self) {
        *PROBING.lock() -= 1;
        CHANGED.notify_all();
    }
}

/// Probes every device the firmware describes (no device drivers are built in).
#[cfg(not(any(feature = "net", feature = "blk")))]
pub fn probe_all() {}

/// Probes every device the firmware describes (virtio-mmio windows, then PCI
/// functions), in a bootstrap thread so that boot goes on meanwhile; the
/// network driver gets a thread of its own, disks register as they come.
/// Consumers wait for names in the registry, so nothing races the probe.
#[cfg(any(feature = "net", feature = "blk"))]
pub fn probe_all() {
    let probing = Probing::start();
    let spawned = crate::task::spawn_on(0, "dev-probe", move || {
        let _probing = probing;
        for d in bareflow_hal::dev::virtio_devices() {
            use virtio_drivers::transport::{DeviceType, Transport};
            match d.transport.device_type() {
                #[cfg(feature = "net")]
                DeviceType::Network => virtio_net::start(d),
                #[cfg(feature = "blk")]
                DeviceType::Block => virtio_blk::start(d),
                DeviceType::EntropySource => virtio_misc::start_rng(d),
                DeviceType::Console => virtio_misc::start_console(d),
                other => log::info!("virtio device {other:?} at {}: no driver in this image", d.location),
            }
        }
    });
    if let Err(e) = spawned {
        log::error!("devices: no thread to probe them: {e:?}");
    }
}

//! The virtio-net driver: a thread that owns the device and the TCP/IP
//! stack's interface, polls it, and sleeps on the device's interrupt in
//! peace mode or polls continuously in war mode, as the governor says.
use crate::net::{self, NetIf};
use crate::task;
use alloc::sync::Arc;
use bareflow_hal::dev::{DeviceIrq, VirtioDevice};
use spin::Once;

/// Interrupt vector of the first network device.
const NET_VECTOR: u8 = 0x40;

/// Which thread the interrupt wakes, and what to mask.
static IRQ_TARGET: Once<(DeviceIrq, &'static task::Thread)> = Once::new();

fn on_irq(_vector: u8) {
    if let Some((irq, t)) = IRQ_TARGET.get() {
        irq.mask();
        net::count_irq();
        t.unpark();
    }
    bareflow_hal::dev::end_of_interrupt();
}

/// Starts the driver thread for `dev` (on CPU 0, which owns it and takes its interrupts).
pub fn start(dev: VirtioDevice) {
    if IRQ_TARGET.is_completed() {
        log::warn!("virtio-net at {}: only one network device is supported; ignoring it", dev.location);
        return;
    }
    let probing = super::Probing::start();
    let spawned = task::spawn_on(0, "virtio-net", move || {
        let _probing = probing;
        let irq = dev.irq;
        let nic = match net::VirtioNic::new(dev.transport) {
            Ok(n) => n,
            Err(e) => {
                log::error!("virtio-net at {}: {e}", dev.location);
                return;
            }
        };
        let netif = Arc::new(NetIf::new(nic, irq));
        IRQ_TARGET.call_once(|| (irq, task::current()));
        bareflow_hal::trap::set_irq_handler(NET_VECTOR, on_irq);
        match irq.route(NET_VECTOR, 0) {
            Ok(()) => log::info!("virtio-net at {}: interrupts by {}", dev.location, irq.kind()),
            Err(e) => log::warn!("virtio-net at {}: {e}; polling only", dev.location),
        }
        super::register("net0", "virtio-net", netif.clone());
        drop(_probing);
        netif.run()
    });
    if let Err(e) = spawned {
        log::error!("virtio-net: no thread for the driver: {e:?}");
    }
}

//! The virtio-net driver: a thread that owns the device and the TCP/IP
//! stack's interface, polls it, and sleeps on the device's interrupt in
//! peace mode or polls continuously in war mode, as the governor says.
use crate::net::{self, NetIf};
use crate::task;
use alloc::sync::Arc;
use bareflow_hal::dev::VirtioMmio;
use spin::Once;

/// Interrupt vector of the first network device.
const NET_VECTOR: u8 = 0x40;

/// Which thread the interrupt wakes, and which line to mask.
static IRQ_TARGET: Once<(u32, &'static task::Thread)> = Once::new();

fn on_irq(_vector: u8) {
    if let Some((gsi, t)) = IRQ_TARGET.get() {
        bareflow_hal::dev::mask_irq(*gsi);
        net::count_irq();
        t.unpark();
    }
    bareflow_hal::dev::end_of_interrupt();
}

/// Starts the driver thread for `dev` (on CPU 0, which owns it and takes its interrupts).
pub fn start(dev: VirtioMmio) {
    let probing = super::Probing::start();
    let spawned = task::spawn_on(0, "virtio-net", move || {
        let _probing = probing;
        let gsi = dev.gsi;
        let nic = match net::VirtioNic::new(dev.transport) {
            Ok(n) => n,
            Err(e) => {
                log::error!("virtio-net at {:#x}: {e}", dev.base);
                return;
            }
        };
        let netif = Arc::new(NetIf::new(nic, gsi));
        IRQ_TARGET.call_once(|| (gsi, task::current()));
        bareflow_hal::trap::set_irq_handler(NET_VECTOR, on_irq);
        if let Err(e) = bareflow_hal::dev::route_irq(gsi, NET_VECTOR, 0) {
            log::warn!("virtio-net: cannot route GSI {gsi} ({e:?}); polling only");
        }
        super::register("net0", "virtio-net", netif.clone());
        drop(_probing);
        netif.run()
    });
    if let Err(e) = spawned {
        log::error!("virtio-net: no thread for the driver: {e:?}");
    }
}

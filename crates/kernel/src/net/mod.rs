//! TCP/IP: smoltcp over virtio-net, and the blocking socket calls behind
//! `bareflow_sys::net`.
//!
//! One interface (`net0`) belongs to its driver thread, which polls it with an
//! explicit `now` from the monotonic clock. Socket calls from app threads
//! lock the stack briefly, try their operation, and otherwise wait on a
//! condition variable that the driver thread signals after every poll; they
//! kick the driver thread when they queued something to send.
//! Addresses: DHCPv4 from the network (QEMU's user network has a server), or
//! static ones from the command line (`net.ip=10.0.2.15/24 net.gw=10.0.2.2`);
//! IPv6 link-local from the MAC address.
mod socket;

pub use socket::{ping, poll, NetError, PollHandle, Readiness, TcpListener, TcpStream, UdpSocket};

use crate::sync::{Condvar, Mutex};
use crate::task;
use alloc::vec::Vec;
use bareflow_hal::dev::VirtioHal;
use bareflow_sched::governor::{Config, Governor, Mode};
use core::cell::RefCell;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use smoltcp::iface::{Config as IfaceConfig, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::socket::dhcpv4;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Address, Ipv4Cidr, Ipv6Address};
use virtio_drivers::device::net::VirtIONet;
use virtio_drivers::transport::SomeTransport;
use bareflow_hal::dev::DeviceIrq;

const QUEUE: usize = 64;
const BUF_LEN: usize = 2048;

type Net = VirtIONet<VirtioHal, SomeTransport<'static>, QUEUE>;

static IRQS: AtomicU64 = AtomicU64::new(0);

pub(crate) fn count_irq() {
    IRQS.fetch_add(1, Ordering::Relaxed);
}

fn now() -> Instant {
    Instant::from_micros((crate::time::monotonic_nanos() / 1000) as i64)
}

/// The NIC as smoltcp's `phy::Device`.
pub struct VirtioNic {
    net: RefCell<Net>,
    packets: core::cell::Cell<u64>,
}

impl VirtioNic {
    /// Brings the device up.
    pub fn new(transport: SomeTransport<'static>) -> Result<Self, virtio_drivers::Error> {
        Ok(VirtioNic { net: RefCell::new(Net::new(transport, BUF_LEN)?), packets: core::cell::Cell::new(0) })
    }
}

/// A received packet.
pub struct Rx<'a> {
    nic: &'a VirtioNic,
    buf: Option<virtio_drivers::device::net::RxBuffer>,
}

/// Room to send one packet.
pub struct Tx<'a> {
    nic: &'a VirtioNic,
}

impl phy::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(mut self, f: F) -> R {
        let buf = self.buf.take().expect("consumed once");
        let r = f(buf.packet());
        if let Err(e) = self.nic.net.borrow_mut().recycle_rx_buffer(buf) {
            log::warn!("virtio-net: cannot recycle a receive buffer: {e}");
        }
        r
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut net = self.nic.net.borrow_mut();
        let mut tx = net.new_tx_buffer(len);
        let r = f(tx.packet_mut());
        if let Err(e) = net.send(tx) {
            log::warn!("virtio-net: send failed: {e}");
        }
        self.nic.packets.set(self.nic.packets.get() + 1);
        r
    }
}

impl phy::Device for VirtioNic {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _t: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        let buf = self.net.borrow_mut().receive().ok()?;
        self.packets.set(self.packets.get() + 1);
        Some((Rx { nic: self, buf: Some(buf) }, Tx { nic: self }))
    }

    fn transmit(&mut self, _t: Instant) -> Option<Tx<'_>> {
        if self.net.borrow().can_send() { Some(Tx { nic: self }) } else { None }
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        c.max_transmission_unit = 1514;
        c.max_burst_size = Some(QUEUE / 2);
        c
    }
}

pub(crate) struct Stack {
    pub(crate) iface: Interface,
    pub(crate) sockets: SocketSet<'static>,
    nic: VirtioNic,
    dhcp: Option<SocketHandle>,
    /// Sockets whose owner dropped them: removed once closed.
    pub(crate) orphans: Vec<SocketHandle>,
    pub(crate) next_port: u16,
}

/// Network statistics, for status pages.
#[derive(Clone, Copy, Debug, Default)]
pub struct NetStats {
    /// Governor mode now: true when polling (war mode).
    pub polling: bool,
    /// Switches to polling.
    pub to_war: u64,
    /// Switches back to interrupts.
    pub to_peace: u64,
    /// Packets handled in interrupt mode.
    pub events_peace: u64,
    /// Packets handled in polling mode.
    pub events_war: u64,
    /// Interrupts taken.
    pub irqs: u64,
    /// How the device interrupts (`GSI`, `MSI-X` or `none`).
    pub irq_kind: &'static str,
    /// IPv4 address, if configured.
    pub ipv4: Option<[u8; 4]>,
}

/// A network interface and its stack.
pub struct NetIf {
    pub(crate) stack: Mutex<Stack>,
    pub(crate) changed: Condvar,
    governor: Mutex<Governor>,
    irq: DeviceIrq,
    driver: spin::Once<&'static task::Thread>,
    forced: Option<Mode>,
}

impl NetIf {
    /// Builds the interface over `nic`, interrupting through `irq`.
    pub fn new(nic: VirtioNic, irq: DeviceIrq) -> Self {
        let mac = EthernetAddress(nic.net.borrow().mac_address());
        let mut cfg = IfaceConfig::new(HardwareAddress::Ethernet(mac));
        cfg.random_seed = bareflow_hal::cpu::hardware_random().unwrap_or(bareflow_hal::cpu::rdtsc());
        let mut nic = nic;
        let mut iface = Interface::new(cfg, &mut nic, now());
        let mut sockets = SocketSet::new(Vec::new());
        let ll = link_local(mac);
        iface.update_ip_addrs(|a| {
            let _ = a.push(IpCidr::new(ll.into(), 64));
        });
        let dhcp = match static_ipv4() {
            Some((cidr, gw)) => {
                iface.update_ip_addrs(|a| {
                    let _ = a.push(IpCidr::Ipv4(cidr));
                });
                if let Some(gw) = gw {
                    let _ = iface.routes_mut().add_default_ipv4_route(gw);
                }
                log::info!("net0: static {cidr}");
                None
            }
            None => Some(sockets.add(dhcpv4::Socket::new())),
        };
        if let Some((cidr, gw)) = static_ipv6() {
            iface.update_ip_addrs(|a| {
                let _ = a.push(IpCidr::Ipv6(cidr));
            });
            if let Some(gw) = gw {
                let _ = iface.routes_mut().add_default_ipv6_route(gw);
            }
            log::info!("net0: static {cidr}");
        }
        let forced = match crate::env::kernel_option("bareflow.net.poll") {
            Some("on") => Some(Mode::War),
            Some("off") => Some(Mode::Peace),
            _ => None,
        };
        NetIf {
            stack: Mutex::new(Stack { iface, sockets, nic, dhcp, orphans: Vec::new(), next_port: 49152 }),
            changed: Condvar::new(),
            governor: Mutex::new(Governor::new(governor_config(), crate::time::monotonic_nanos())),
            irq,
            driver: spin::Once::new(),
            forced,
        }
    }

    /// Statistics.
    pub fn stats(&self) -> NetStats {
        let g = self.governor.lock();
        let st = self.stack.lock();
        NetStats {
            polling: g.mode() == Mode::War,
            to_war: g.stats.to_war,
            to_peace: g.stats.to_peace,
            events_peace: g.stats.events_peace,
            events_war: g.stats.events_war,
            irqs: IRQS.load(Ordering::Relaxed),
            irq_kind: self.irq.kind(),
            ipv4: st.iface.ipv4_addr().map(|a| a.octets()),
        }
    }

    /// Wakes the driver thread (something was queued to send).
    pub(crate) fn kick(&self) {
        if let Some(t) = self.driver.get() {
            t.unpark();
        }
    }

    /// The driver thread's loop; never returns.
    pub fn run(&self) -> ! {
        self.driver.call_once(task::current);
        loop {
            let (delay, packets) = {
                let mut guard = self.stack.lock();
                let st = &mut *guard;
                let _ = st.nic.net.borrow_mut().ack_interrupt();
                let t = now();
                st.iface.poll(t, &mut st.nic, &mut st.sockets);
                if let Some(h) = st.dhcp {
                    dhcp_event(&mut st.iface, &mut st.sockets, h);
                }
                socket::reap(st);
                let delay = st.iface.poll_delay(t, &st.sockets);
                (delay, st.nic.packets.replace(0))
            };
            self.changed.notify_all();
            let mode = {
                let mut g = self.governor.lock();
                let m = g.record(packets, crate::time::monotonic_nanos());
                self.forced.unwrap_or(m)
            };
            match mode {
                Mode::Peace => {
                    // Sleep until the device interrupts (the handler masks the
                    // line and wakes us), a socket call kicks us, or smoltcp's
                    // next timer is due.
                    if packets == 0 {
                        self.irq.unmask();
                        let wait = delay.map_or(Duration::from_millis(100), |d| Duration::from_micros(d.total_micros()));
                        task::park_timeout(wait.min(Duration::from_millis(100)));
                    }
                }
                Mode::War => {
                    self.irq.mask();
                    task::yield_now();
                }
            }
        }
    }
}

/// The governor's thresholds: the defaults, or `bareflow.net.high=N` and
/// `bareflow.net.low=N` (events per second; `low` must stay below `high`).
fn governor_config() -> Config {
    let mut c = Config::default();
    let num = |k: &'static str| crate::env::kernel_option(k).map(|v| (k, v, v.parse::<u64>().ok().filter(|&n| n > 0)));
    for (key, raw, v) in [num("bareflow.net.high"), num("bareflow.net.low")].into_iter().flatten() {
        match (key, v) {
            ("bareflow.net.high", Some(n)) => c.high = n,
            ("bareflow.net.low", Some(n)) => c.low = n,
            _ => log::warn!("{key}={raw}: expected a positive number of events per second; keeping the default"),
        }
    }
    if c.low >= c.high {
        log::warn!("governor: low {} >= high {}: using the defaults", c.low, c.high);
        c = Config::default();
    }
    c
}

fn dhcp_event(iface: &mut Interface, sockets: &mut SocketSet<'static>, h: SocketHandle) {
    match sockets.get_mut::<dhcpv4::Socket>(h).poll() {
        Some(dhcpv4::Event::Configured(c)) => {
            iface.update_ip_addrs(|a| {
                a.retain(|c| !matches!(c, IpCidr::Ipv4(_)));
                let _ = a.push(IpCidr::Ipv4(c.address));
            });
            if let Some(r) = c.router {
                let _ = iface.routes_mut().add_default_ipv4_route(r);
            }
            crate::kprintln!("net0: DHCP address {}", c.address);
        }
        Some(dhcpv4::Event::Deconfigured) => {
            iface.update_ip_addrs(|a| a.retain(|c| !matches!(c, IpCidr::Ipv4(_))));
            iface.routes_mut().remove_default_ipv4_route();
        }
        None => {}
    }
}

fn link_local(mac: EthernetAddress) -> Ipv6Address {
    let m = mac.0;
    Ipv6Address::new(
        0xfe80,
        0,
        0,
        0,
        u16::from_be_bytes([m[0] ^ 2, m[1]]),
        u16::from_be_bytes([m[2], 0xff]),
        u16::from_be_bytes([0xfe, m[3]]),
        u16::from_be_bytes([m[4], m[5]]),
    )
}

fn static_ipv4() -> Option<(Ipv4Cidr, Option<Ipv4Address>)> {
    let ip = crate::env::kernel_option("net.ip").or_else(|| crate::env::var_static("net.ip"))?;
    let cidr: Ipv4Cidr = ip.parse().ok()?;
    let gw = crate::env::kernel_option("net.gw").or_else(|| crate::env::var_static("net.gw")).and_then(|g| g.parse().ok());
    Some((cidr, gw))
}

/// `net.ip6=ADDR/LEN` and `net.gw6=ADDR` (QEMU's user network: `fec0::15/64`, gateway `fec0::2`).
fn static_ipv6() -> Option<(smoltcp::wire::Ipv6Cidr, Option<Ipv6Address>)> {
    let ip = crate::env::kernel_option("net.ip6").or_else(|| crate::env::var_static("net.ip6"))?;
    let Ok(cidr) = ip.parse::<smoltcp::wire::Ipv6Cidr>() else {
        log::warn!("net.ip6={ip}: not an IPv6 address with a prefix length (e.g. fec0::15/64); ignored");
        return None;
    };
    let gw = crate::env::kernel_option("net.gw6").or_else(|| crate::env::var_static("net.gw6")).and_then(|g| g.parse().ok());
    Some((cidr, gw))
}

/// The interface, waiting up to `deadline` for its driver.
pub fn netif(deadline: Duration) -> Result<alloc::sync::Arc<NetIf>, NetError> {
    crate::dev::wait_for::<NetIf>("net0", deadline).map_err(NetError::NoDevice)
}

//! Blocking TCP and UDP sockets over the stack in [`super`].
use super::{netif, NetIf, Stack};
use crate::dev::NotFound;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};

/// How long a socket call waits for the network device to appear.
const DEVICE_DEADLINE: Duration = Duration::from_secs(5);
const TCP_BUF: usize = 32 * 1024;
/// Listening sockets per listener: a SYN that finds none free is refused
/// (QEMU's user network then resets the host's connection), so this bounds
/// how many connections may arrive at once (each accept puts a fresh one in
/// its place). 32 × 64 KiB of buffers: at 128 these 8 MiB set httpd's
/// least memory (13 MiB); QEMU's user network passes the host's connects on
/// one at a time anyway (its host-side listen backlog is 1).
const BACKLOG: usize = 32;

/// Why a socket call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetError {
    /// No network device (with what is attached).
    NoDevice(NotFound),
    /// Not an address (`IP:PORT`).
    InvalidAddress,
    /// The port is taken or cannot be listened on.
    AddrInUse,
    /// The deadline passed.
    TimedOut,
    /// The peer refused or reset the connection.
    ConnectionReset,
    /// The connection is closed for writing.
    BrokenPipe,
    /// The connection is not established.
    NotConnected,
    /// Something smoltcp refused, with its reason.
    Stack(&'static str),
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::NoDevice(n) => write!(f, "{n}"),
            NetError::InvalidAddress => f.write_str("invalid socket address: expected IP:PORT"),
            NetError::AddrInUse => f.write_str("address in use"),
            NetError::TimedOut => f.write_str("timed out"),
            NetError::ConnectionReset => f.write_str("connection reset by peer"),
            NetError::BrokenPipe => f.write_str("connection closed for writing"),
            NetError::NotConnected => f.write_str("not connected"),
            NetError::Stack(m) => write!(f, "network stack: {m}"),
        }
    }
}

fn parse(addr: &str) -> Result<SocketAddr, NetError> {
    addr.parse().map_err(|_| NetError::InvalidAddress)
}

fn deadline_of(t: Option<Duration>) -> Option<u64> {
    t.map(|d| crate::time::monotonic_nanos().saturating_add(d.as_nanos() as u64))
}

/// Waits on the stack's condition variable until `f` returns `Some`, or the deadline.
fn block<T>(
    net: &NetIf,
    deadline: Option<u64>,
    mut f: impl FnMut(&mut Stack) -> Option<Result<T, NetError>>,
) -> Result<T, NetError> {
    let mut st = net.stack.lock();
    loop {
        if let Some(r) = f(&mut st) {
            drop(st);
            net.kick();
            return r;
        }
        let wait = match deadline {
            Some(d) => {
                let now = crate::time::monotonic_nanos();
                if now >= d {
                    return Err(NetError::TimedOut);
                }
                Duration::from_nanos(d - now).min(Duration::from_millis(50))
            }
            None => Duration::from_millis(50),
        };
        st = net.changed.wait_timeout(st, wait).0;
    }
}

fn new_tcp() -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(tcp::SocketBuffer::new(vec![0; TCP_BUF]), tcp::SocketBuffer::new(vec![0; TCP_BUF]));
    s.set_nagle_enabled(false);
    s
}

/// Removes sockets whose owners dropped them once they are closed.
pub(super) fn reap(st: &mut Stack) {
    let mut keep = Vec::new();
    for h in core::mem::take(&mut st.orphans) {
        let done = match st.sockets.get::<tcp::Socket>(h).state() {
            tcp::State::Closed => true,
            tcp::State::TimeWait => true,
            _ => false,
        };
        if done {
            st.sockets.remove(h);
        } else {
            keep.push(h);
        }
    }
    st.orphans = keep;
}

/// A listening TCP socket.
pub struct TcpListener {
    net: Arc<NetIf>,
    port: u16,
    backlog: Arc<spin::Mutex<Vec<SocketHandle>>>,
}

impl TcpListener {
    /// Listens on `addr` (`IP:PORT`; the IP may be unspecified).
    pub fn bind(addr: &str) -> Result<TcpListener, NetError> {
        let a = parse(addr)?;
        let net = netif(DEVICE_DEADLINE)?;
        let mut backlog = Vec::new();
        {
            let mut st = net.stack.lock();
            for _ in 0..BACKLOG {
                let mut s = new_tcp();
                s.listen(IpListenEndpoint { addr: None, port: a.port() }).map_err(|_| NetError::AddrInUse)?;
                backlog.push(st.sockets.add(s));
            }
        }
        Ok(TcpListener { net, port: a.port(), backlog: Arc::new(spin::Mutex::new(backlog)) })
    }

    /// The port listened on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Waits for a connection.
    pub fn accept(&mut self) -> Result<(TcpStream, SocketAddr), NetError> {
        let port = self.port;
        let backlog = self.backlog.clone();
        let (handle, peer) = block(&self.net, None, |st| {
            let mut backlog = backlog.lock();
            let i = backlog.iter().position(|h| {
                let s = st.sockets.get::<tcp::Socket>(*h);
                s.is_active() && s.state() != tcp::State::SynReceived
            })?;
            let h = backlog[i];
            let peer = st.sockets.get::<tcp::Socket>(h).remote_endpoint()?;
            // Replace it by a fresh listener.
            let mut s = new_tcp();
            if s.listen(IpListenEndpoint { addr: None, port }).is_ok() {
                backlog[i] = st.sockets.add(s);
            } else {
                backlog.remove(i);
            }
            Some(Ok((h, peer)))
        })?;
        let peer = SocketAddr::new(peer.addr.into(), peer.port);
        Ok((TcpStream::from_parts(self.net.clone(), handle), peer))
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        let mut st = self.net.stack.lock();
        for h in self.backlog.lock().drain(..) {
            st.sockets.remove(h);
        }
    }
}

/// A TCP connection.
pub struct TcpStream {
    net: Arc<NetIf>,
    handle: SocketHandle,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// False once dropped (its socket may then be removed from the set).
    alive: Arc<AtomicBool>,
    /// A read has seen the peer's FIN (so a later `Closed` is not a reset).
    fin_seen: bool,
    /// `shutdown_read` was called: reads return end of stream.
    read_shut: bool,
}

impl TcpStream {
    fn from_parts(net: Arc<NetIf>, handle: SocketHandle) -> Self {
        TcpStream {
            net,
            handle,
            read_timeout: None,
            write_timeout: None,
            alive: Arc::new(AtomicBool::new(true)),
            fin_seen: false,
            read_shut: false,
        }
    }

    /// A handle for readiness polling.
    pub fn poll_handle(&self) -> PollHandle {
        PollHandle { net: self.net.clone(), what: Polled::Tcp(self.handle, self.alive.clone()) }
    }

    /// Connects to `addr`.
    pub fn connect(addr: &str) -> Result<TcpStream, NetError> {
        let a = parse(addr)?;
        let net = netif(DEVICE_DEADLINE)?;
        let handle = {
            let mut guard = net.stack.lock();
            let st = &mut *guard;
            let local = st.next_port;
            st.next_port = if local == u16::MAX { 49152 } else { local + 1 };
            let mut s = new_tcp();
            s.connect(st.iface.context(), IpEndpoint::new(a.ip().into(), a.port()), local)
                .map_err(|_| NetError::Stack("cannot start the connection"))?;
            st.sockets.add(s)
        };
        net.kick();
        let stream = TcpStream::from_parts(net, handle);
        block(&stream.net, deadline_of(Some(Duration::from_secs(10))), |st| {
            let s = st.sockets.get::<tcp::Socket>(handle);
            match s.state() {
                tcp::State::Established => Some(Ok(())),
                tcp::State::Closed => Some(Err(NetError::ConnectionReset)),
                _ => None,
            }
        })?;
        Ok(stream)
    }

    /// Sets how long `read` waits (None: forever).
    pub fn set_read_timeout(&mut self, t: Option<Duration>) {
        self.read_timeout = t;
    }

    /// Sets how long `write` waits (None: forever).
    pub fn set_write_timeout(&mut self, t: Option<Duration>) {
        self.write_timeout = t;
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        let st = self.net.stack.lock();
        st.sockets.get::<tcp::Socket>(self.handle).remote_endpoint().map(|e| SocketAddr::new(e.addr.into(), e.port))
    }

    /// Reads what is there (at least one byte), 0 at end of stream. A
    /// connection the peer reset (without closing it first) is
    /// `ConnectionReset`, not end of stream. (One case cannot be told apart:
    /// a connection that both sides closed and that then sat unread past
    /// its TIME-WAIT reads as reset.)
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, NetError> {
        let h = self.handle;
        if self.read_shut {
            // Whatever still arrives is dropped, as after SHUT_RD.
            let mut st = self.net.stack.lock();
            let s = st.sockets.get_mut::<tcp::Socket>(h);
            while s.can_recv() && s.recv(|b| (b.len(), ())).is_ok() {}
            return Ok(0);
        }
        let fin_seen = &mut self.fin_seen;
        block(&self.net, deadline_of(self.read_timeout), |st| {
            let s = st.sockets.get_mut::<tcp::Socket>(h);
            if s.can_recv() {
                return Some(s.recv_slice(buf).map_err(|_| NetError::Stack("receive failed")));
            }
            if !s.may_recv() {
                if s.state() == tcp::State::Closed && !*fin_seen {
                    return Some(Err(NetError::ConnectionReset));
                }
                *fin_seen = true;
                return Some(Ok(0));
            }
            None
        })
    }

    /// Stops reading: later reads return end of stream and drop what arrives.
    pub fn shutdown_read(&mut self) {
        self.read_shut = true;
    }

    /// Writes some of `buf` (at least one byte).
    pub fn write(&mut self, buf: &[u8]) -> Result<usize, NetError> {
        let h = self.handle;
        block(&self.net, deadline_of(self.write_timeout), |st| {
            let s = st.sockets.get_mut::<tcp::Socket>(h);
            if !s.may_send() {
                return Some(Err(NetError::BrokenPipe));
            }
            if s.can_send() {
                return Some(s.send_slice(buf).map_err(|_| NetError::Stack("send failed")));
            }
            None
        })
    }

    /// Writes all of `buf`.
    pub fn write_all(&mut self, mut buf: &[u8]) -> Result<(), NetError> {
        while !buf.is_empty() {
            let n = self.write(buf)?;
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Waits until everything written was sent and acknowledged (or the write timeout).
    pub fn flush(&mut self) -> Result<(), NetError> {
        let h = self.handle;
        block(&self.net, deadline_of(self.write_timeout), |st| {
            let s = st.sockets.get::<tcp::Socket>(h);
            (s.send_queue() == 0 || !s.may_send()).then_some(Ok(()))
        })
    }

    /// Closes the sending half (the peer reads end of stream).
    pub fn shutdown_write(&mut self) {
        self.net.stack.lock().sockets.get_mut::<tcp::Socket>(self.handle).close();
        self.net.kick();
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        let mut st = self.net.stack.lock();
        self.alive.store(false, Ordering::Release);
        st.sockets.get_mut::<tcp::Socket>(self.handle).close();
        st.orphans.push(self.handle);
        drop(st);
        self.net.kick();
    }
}

/// A UDP socket.
pub struct UdpSocket {
    net: Arc<NetIf>,
    handle: SocketHandle,
    read_timeout: Option<Duration>,
    alive: Arc<AtomicBool>,
}

impl UdpSocket {
    /// Binds to `addr`.
    pub fn bind(addr: &str) -> Result<UdpSocket, NetError> {
        let a = parse(addr)?;
        let net = netif(DEVICE_DEADLINE)?;
        let mut s = udp::Socket::new(
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 64], vec![0; 64 * 1024]),
            udp::PacketBuffer::new(vec![udp::PacketMetadata::EMPTY; 64], vec![0; 64 * 1024]),
        );
        s.bind(a.port()).map_err(|_| NetError::AddrInUse)?;
        let handle = net.stack.lock().sockets.add(s);
        Ok(UdpSocket { net, handle, read_timeout: None, alive: Arc::new(AtomicBool::new(true)) })
    }

    /// Sets how long `recv_from` waits.
    pub fn set_read_timeout(&mut self, t: Option<Duration>) {
        self.read_timeout = t;
    }

    /// Sends a datagram.
    pub fn send_to(&self, buf: &[u8], addr: &str) -> Result<usize, NetError> {
        let a = parse(addr)?;
        let h = self.handle;
        block(&self.net, deadline_of(Some(Duration::from_secs(5))), |st| {
            let s = st.sockets.get_mut::<udp::Socket>(h);
            if s.can_send() {
                Some(
                    s.send_slice(buf, IpEndpoint::new(a.ip().into(), a.port()))
                        .map(|_| buf.len())
                        .map_err(|_| NetError::Stack("datagram too large or no route")),
                )
            } else {
                None
            }
        })
    }

    /// Receives a datagram.
    pub fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr), NetError> {
        let h = self.handle;
        block(&self.net, deadline_of(self.read_timeout), |st| {
            let s = st.sockets.get_mut::<udp::Socket>(h);
            if s.can_recv() {
                Some(
                    s.recv_slice(buf)
                        .map(|(n, meta)| (n, SocketAddr::new(meta.endpoint.addr.into(), meta.endpoint.port)))
                        .map_err(|_| NetError::Stack("datagram larger than the buffer")),
                )
            } else {
                None
            }
        })
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        let mut st = self.net.stack.lock();
        self.alive.store(false, Ordering::Release);
        st.sockets.remove(self.handle);
    }
}

impl UdpSocket {
    /// A handle for readiness polling.
    pub fn poll_handle(&self) -> PollHandle {
        PollHandle { net: self.net.clone(), what: Polled::Udp(self.handle, self.alive.clone()) }
    }
}

impl TcpListener {
    /// A handle for readiness polling (readable: a connection is waiting).
    pub fn poll_handle(&self) -> PollHandle {
        PollHandle { net: self.net.clone(), what: Polled::Listener(Arc::downgrade(&self.backlog)) }
    }
}

#[derive(Clone)]
enum Polled {
    Tcp(SocketHandle, Arc<AtomicBool>),
    Udp(SocketHandle, Arc<AtomicBool>),
    Listener(alloc::sync::Weak<spin::Mutex<Vec<SocketHandle>>>),
}

/// What a poller watches: one socket, without keeping it alive.
#[derive(Clone)]
pub struct PollHandle {
    net: Arc<NetIf>,
    what: Polled,
}

/// A socket's readiness.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// A read (or accept) would not block.
    pub readable: bool,
    /// A write would not block.
    pub writable: bool,
    /// The socket is gone or the connection is over.
    pub closed: bool,
}

impl PollHandle {
    fn readiness_in(&self, st: &Stack) -> Readiness {
        match &self.what {
            Polled::Tcp(h, alive) => {
                if !alive.load(Ordering::Acquire) {
                    return Readiness { closed: true, ..Readiness::default() };
                }
                let s = st.sockets.get::<tcp::Socket>(*h);
                Readiness {
                    readable: s.can_recv() || !s.may_recv(),
                    writable: s.can_send() || !s.may_send(),
                    closed: !s.is_open(),
                }
            }
            Polled::Udp(h, alive) => {
                if !alive.load(Ordering::Acquire) {
                    return Readiness { closed: true, ..Readiness::default() };
                }
                let s = st.sockets.get::<udp::Socket>(*h);
                Readiness { readable: s.can_recv(), writable: s.can_send(), closed: false }
            }
            Polled::Listener(w) => match w.upgrade() {
                Some(b) => Readiness {
                    readable: b.lock().iter().any(|h| {
                        let s = st.sockets.get::<tcp::Socket>(*h);
                        s.is_active() && s.state() != tcp::State::SynReceived
                    }),
                    writable: false,
                    closed: false,
                },
                None => Readiness { closed: true, ..Readiness::default() },
            },
        }
    }
}

/// Waits until one of `handles` is ready for what `want` says (readable,
/// writable) or `timeout` passes; returns the readiness of each.
pub fn poll(handles: &[(PollHandle, bool, bool)], timeout: Option<Duration>) -> Vec<Readiness> {
    let Some((first, _, _)) = handles.first() else { return Vec::new() };
    let net = first.net.clone();
    let deadline = deadline_of(timeout);
    let mut st = net.stack.lock();
    loop {
        let r: Vec<Readiness> = handles.iter().map(|(h, _, _)| h.readiness_in(&st)).collect();
        let any = r.iter().zip(handles).any(|(r, (_, rd, wr))| r.closed || (*rd && r.readable) || (*wr && r.writable));
        let now = crate::time::monotonic_nanos();
        if any || deadline.is_some_and(|d| now >= d) {
            return r;
        }
        let wait = deadline.map_or(Duration::from_millis(50), |d| Duration::from_nanos(d - now).min(Duration::from_millis(50)));
        st = net.changed.wait_timeout(st, wait).0;
    }
}

/// Sends one ICMP echo request (ICMPv4 or ICMPv6) to `dst` and waits up to
/// `timeout` for the matching reply; returns the round-trip time.
pub fn ping(dst: core::net::IpAddr, timeout: Duration) -> Result<Duration, NetError> {
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::socket::icmp;
    use smoltcp::wire::{IpAddress, Icmpv4Packet, Icmpv4Repr, Icmpv6Packet, Icmpv6Repr};
    const DATA: &[u8] = b"bareflow ping";
    let net = netif(DEVICE_DEADLINE)?;
    let ident = (bareflow_hal::cpu::rdtsc() as u16) | 1;
    let seq_no = 1;
    let to: IpAddress = dst.into();
    let caps = ChecksumCapabilities::default();
    let handle = {
        let mut guard = net.stack.lock();
        let st = &mut *guard;
        let buf = || icmp::PacketBuffer::new(alloc::vec![icmp::PacketMetadata::EMPTY; 4], alloc::vec![0u8; 1024]);
        let mut s = icmp::Socket::new(buf(), buf());
        s.bind(icmp::Endpoint::Ident(ident)).map_err(|_| NetError::Stack("cannot bind an ICMP socket"))?;
        let src6 = match to {
            IpAddress::Ipv6(d) => Some(st.iface.get_source_address_ipv6(&d)),
            IpAddress::Ipv4(_) => None,
        };
        let h = st.sockets.add(s);
        let s = st.sockets.get_mut::<icmp::Socket>(h);
        let sent = match (to, src6) {
            (IpAddress::Ipv4(_), _) => {
                let repr = Icmpv4Repr::EchoRequest { ident, seq_no, data: DATA };
                s.send(repr.buffer_len(), to).map(|b| repr.emit(&mut Icmpv4Packet::new_unchecked(b), &caps))
            }
            (IpAddress::Ipv6(d), Some(src)) => {
                let repr = Icmpv6Repr::EchoRequest { ident, seq_no, data: DATA };
                s.send(repr.buffer_len(), to).map(|b| repr.emit(&src, &d, &mut Icmpv6Packet::new_unchecked(b), &caps))
            }
            (IpAddress::Ipv6(_), None) => unreachable!("an IPv6 destination has a source"),
        };
        if sent.is_err() {
            st.sockets.remove(h);
            return Err(NetError::Stack("cannot queue the echo request"));
        }
        h
    };
    net.kick();
    let t0 = crate::time::monotonic_nanos();
    let r = block(&net, deadline_of(Some(timeout)), |st| {
        let local6 = match to {
            IpAddress::Ipv6(d) => Some(st.iface.get_source_address_ipv6(&d)),
            IpAddress::Ipv4(_) => None,
        };
        let s = st.sockets.get_mut::<icmp::Socket>(handle);
        while let Ok((data, from)) = s.recv() {
            let matched = match (from, local6) {
                (IpAddress::Ipv4(_), _) => Icmpv4Packet::new_checked(data)
                    .and_then(|p| Icmpv4Repr::parse(&p, &caps))
                    .is_ok_and(|r| matches!(r, Icmpv4Repr::EchoReply { ident: i, seq_no: q, data: d } if i == ident && q == seq_no && d == DATA)),
                (IpAddress::Ipv6(f), Some(l)) => Icmpv6Packet::new_checked(data)
                    .and_then(|p| Icmpv6Repr::parse(&f, &l, &p, &caps))
                    .is_ok_and(|r| matches!(r, Icmpv6Repr::EchoReply { ident: i, seq_no: q, data: d } if i == ident && q == seq_no && d == DATA)),
                _ => false,
            };
            if matched && from == to {
                return Some(Ok(Duration::from_nanos(crate::time::monotonic_nanos() - t0)));
            }
        }
        None
    });
    net.stack.lock().sockets.remove(handle);
    r
}

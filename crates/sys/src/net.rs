//! Networking: TCP listeners and streams, UDP sockets, and readiness polling
//! over many sockets. Addresses are `IP:PORT` text (`127.0.0.1:8080`,
//! `[::1]:8080`, plus `localhost:PORT`); there is no name resolution.
//!
//! Hosted, the calls go to `std::net`, and [`Poller`] to `poll(2)` through
//! `rustix` (safe bindings). In the image every call returns
//! [`Error::Unsupported`] until the virtio-net driver and its TCP/IP stack are
//! wired here; the types and signatures are already the ones both backends
//! implement, so apps build for the image today.
//!
//! Blocking calls park the calling thread; `set_read_timeout` and
//! `set_write_timeout` bound them, and a call that runs out of time fails with
//! [`ErrorKind::TimedOut`].
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
pub use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
pub use core::time::Duration;

/// Which halves of a connection [`TcpStream::shutdown`] closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// No more reads: later reads return 0.
    Read,
    /// No more writes: the peer sees end of stream (FIN).
    Write,
    /// Both.
    Both,
}

/// The class of a network [`Error`], for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The address text is not `IP:PORT`.
    InvalidAddress,
    /// The local address is taken (or not permitted).
    AddrInUse,
    /// Nothing listens at the remote address.
    ConnectionRefused,
    /// The peer reset or aborted the connection, or it is closed for writing.
    ConnectionReset,
    /// The socket is not connected.
    NotConnected,
    /// The call's timeout passed first.
    TimedOut,
    /// An argument is wrong (zero timeout, unknown poll token, ...).
    InvalidInput,
    /// This backend cannot do it (yet).
    Unsupported,
    /// Anything else the backend reported.
    Other,
}

/// Why a network call failed: a kind, and a message saying what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The address text is not `IP:PORT`; holds the text given.
    InvalidAddress(String),
    /// The local address is taken or not permitted; holds the details.
    AddrInUse(String),
    /// Nothing listens there; holds the details.
    ConnectionRefused(String),
    /// The peer reset the connection or it is closed for writing; holds the details.
    ConnectionReset(String),
    /// The socket is not connected; holds the details.
    NotConnected(String),
    /// The timeout passed; holds which call timed out.
    TimedOut(&'static str),
    /// A wrong argument; holds what was wrong.
    InvalidInput(String),
    /// This backend cannot do it; holds why and when it will.
    Unsupported(&'static str),
    /// Anything else, with the backend's message.
    Other(String),
}

impl Error {
    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidAddress(_) => ErrorKind::InvalidAddress,
            Error::AddrInUse(_) => ErrorKind::AddrInUse,
            Error::ConnectionRefused(_) => ErrorKind::ConnectionRefused,
            Error::ConnectionReset(_) => ErrorKind::ConnectionReset,
            Error::NotConnected(_) => ErrorKind::NotConnected,
            Error::TimedOut(_) => ErrorKind::TimedOut,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::Other(_) => ErrorKind::Other,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidAddress(a) => {
                write!(f, "{a:?} is not a socket address: write IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080")
            }
            Error::AddrInUse(m) => write!(f, "address in use: {m}"),
            Error::ConnectionRefused(m) => write!(f, "connection refused: {m}"),
            Error::ConnectionReset(m) => write!(f, "connection reset: {m}"),
            Error::NotConnected(m) => write!(f, "not connected: {m}"),
            Error::TimedOut(call) => write!(f, "{call} timed out"),
            Error::InvalidInput(m) => write!(f, "invalid argument: {m}"),
            Error::Unsupported(m) => write!(f, "not supported: {m}"),
            Error::Other(m) => f.write_str(m),
        }
    }
}

/// Parses `IP:PORT` (or `localhost:PORT`, taken as 127.0.0.1).
pub fn parse_addr(addr: &str) -> Result<SocketAddr, Error> {
    if let Some(port) = addr.strip_prefix("localhost:") {
        let port = port.parse::<u16>().map_err(|_| Error::InvalidAddress(addr.into()))?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    addr.parse().map_err(|_| Error::InvalidAddress(addr.into()))
}

/// Identifies a registration in a [`Poller`]; chosen by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub usize);

/// Which readiness a registration waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    /// Data to read, a connection to accept, or the peer's end of stream.
    pub readable: bool,
    /// Room to write.
    pub writable: bool,
}

impl Interest {
    /// Readable only.
    pub const READABLE: Interest = Interest { readable: true, writable: false };
    /// Writable only.
    pub const WRITABLE: Interest = Interest { readable: false, writable: true };
    /// Both.
    pub const BOTH: Interest = Interest { readable: true, writable: true };
}

/// One ready registration, reported by [`Poller::wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The registration's token.
    pub token: Token,
    /// A read (or accept) will not block.
    pub readable: bool,
    /// A write will not block.
    pub writable: bool,
    /// The peer hung up (reads return what is left, then 0).
    pub hangup: bool,
    /// The socket has a pending error.
    pub error: bool,
}

/// A socket that a [`Poller`] can watch: [`TcpListener`], [`TcpStream`], [`UdpSocket`].
pub trait Source: sealed::Sealed {}

mod sealed {
    pub trait Sealed {
        fn handle(&self) -> super::imp::Handle;
    }
}

impl Source for TcpListener {}
impl Source for TcpStream {}
impl Source for UdpSocket {}
impl sealed::Sealed for TcpListener {
    fn handle(&self) -> imp::Handle {
        self.0.handle()
    }
}
impl sealed::Sealed for TcpStream {
    fn handle(&self) -> imp::Handle {
        self.0.handle()
    }
}
impl sealed::Sealed for UdpSocket {
    fn handle(&self) -> imp::Handle {
        self.0.handle()
    }
}

/// A TCP socket that accepts connections.
pub struct TcpListener(imp::TcpListener);

impl TcpListener {
    /// Listens on `addr` (`IP:PORT`; port 0 picks a free port, see [`local_addr`](Self::local_addr)).
    pub fn bind(addr: &str) -> Result<TcpListener, Error> {
        imp::TcpListener::bind(parse_addr(addr)?).map(TcpListener)
    }

    /// Waits for a connection; returns it and the peer's address.
    pub fn accept(&mut self) -> Result<(TcpStream, SocketAddr), Error> {
        self.0.accept().map(|(s, a)| (TcpStream(s), a))
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.0.local_addr()
    }
}

/// A TCP connection.
pub struct TcpStream(imp::TcpStream);

impl TcpStream {
    /// Connects to `addr` (`IP:PORT`).
    pub fn connect(addr: &str) -> Result<TcpStream, Error> {
        imp::TcpStream::connect(parse_addr(addr)?).map(TcpStream)
    }

    /// Reads what has arrived into `buf` (waiting for at least one byte);
    /// returns the count, 0 at the end of the stream.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        self.0.read(buf)
    }

    /// Writes some of `buf`; returns how much was taken.
    pub fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        self.0.write(buf)
    }

    /// Writes all of `buf`.
    pub fn write_all(&mut self, mut buf: &[u8]) -> Result<(), Error> {
        while !buf.is_empty() {
            match self.0.write(buf)? {
                0 => return Err(Error::ConnectionReset("the connection took no more bytes".into())),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    /// Pushes buffered bytes towards the peer.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.0.flush()
    }

    /// Closes one or both halves.
    pub fn shutdown(&mut self, how: Shutdown) -> Result<(), Error> {
        self.0.shutdown(how)
    }

    /// Bounds how long `read` waits (`None`: forever; zero is refused).
    pub fn set_read_timeout(&mut self, t: Option<Duration>) -> Result<(), Error> {
        self.0.set_read_timeout(check_timeout(t)?)
    }

    /// Bounds how long `write` waits (`None`: forever; zero is refused).
    pub fn set_write_timeout(&mut self, t: Option<Duration>) -> Result<(), Error> {
        self.0.set_write_timeout(check_timeout(t)?)
    }

    /// Sends small writes at once instead of coalescing them (Nagle off).
    pub fn set_nodelay(&mut self, nodelay: bool) -> Result<(), Error> {
        self.0.set_nodelay(nodelay)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> Result<SocketAddr, Error> {
        self.0.peer_addr()
    }

    /// This end's address.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.0.local_addr()
    }
}

/// A UDP socket.
pub struct UdpSocket(imp::UdpSocket);

impl UdpSocket {
    /// Binds to `addr` (`IP:PORT`; port 0 picks a free port).
    pub fn bind(addr: &str) -> Result<UdpSocket, Error> {
        imp::UdpSocket::bind(parse_addr(addr)?).map(UdpSocket)
    }

    /// Sends one datagram to `addr`; returns the bytes sent.
    pub fn send_to(&self, buf: &[u8], addr: &str) -> Result<usize, Error> {
        self.0.send_to(buf, parse_addr(addr)?)
    }

    /// Waits for one datagram; returns its length (cut to `buf`) and sender.
    pub fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr), Error> {
        self.0.recv_from(buf)
    }

    /// Bounds how long `recv_from` waits (`None`: forever; zero is refused).
    pub fn set_read_timeout(&mut self, t: Option<Duration>) -> Result<(), Error> {
        self.0.set_read_timeout(check_timeout(t)?)
    }

    /// The address it is bound to.
    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        self.0.local_addr()
    }
}

fn check_timeout(t: Option<Duration>) -> Result<Option<Duration>, Error> {
    match t {
        Some(d) if d.is_zero() => Err(Error::InvalidInput("a zero timeout: pass None to wait without limit".into())),
        t => Ok(t),
    }
}

/// Readiness polling over many sockets (level-triggered, like `poll(2)`):
/// register sockets with a [`Token`] and an [`Interest`], then
/// [`wait`](Poller::wait) reports every registration that is ready now.
///
/// The poller does not keep a socket alive: a socket dropped while registered
/// is forgotten at the next `wait`.
pub struct Poller {
    entries: Vec<(Token, Interest, imp::Handle)>,
    inner: imp::Poller,
}

impl Poller {
    /// An empty poller.
    pub fn new() -> Result<Poller, Error> {
        Ok(Poller { entries: Vec::new(), inner: imp::Poller::new()? })
    }

    /// Watches `source` under `token` (which must not be registered already).
    pub fn register(&mut self, source: &impl Source, token: Token, interest: Interest) -> Result<(), Error> {
        if self.entries.iter().any(|e| e.0 == token) {
            return Err(Error::InvalidInput(alloc::format!("token {} is registered already", token.0)));
        }
        self.entries.push((token, interest, source.handle()));
        Ok(())
    }

    /// Changes what `token` waits for.
    pub fn reregister(&mut self, token: Token, interest: Interest) -> Result<(), Error> {
        match self.entries.iter_mut().find(|e| e.0 == token) {
            Some(e) => {
                e.1 = interest;
                Ok(())
            }
            None => Err(unknown_token(token)),
        }
    }

    /// Stops watching `token`.
    pub fn deregister(&mut self, token: Token) -> Result<(), Error> {
        let before = self.entries.len();
        self.entries.retain(|e| e.0 != token);
        if self.entries.len() == before { Err(unknown_token(token)) } else { Ok(()) }
    }

    /// How many registrations there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Waits until at least one registration is ready or `timeout` passes
    /// (`None`: no limit). Replaces `events` with the ready ones and returns
    /// their count (0 on timeout).
    pub fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> Result<usize, Error> {
        events.clear();
        self.inner.wait(&mut self.entries, events, timeout)?;
        Ok(events.len())
    }
}

/// The network device's adaptive I/O governor, as the kernel counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoStats {
    /// True while the driver polls the device (war mode); false while it sleeps on interrupts (peace mode).
    pub polling: bool,
    /// Switches from interrupts to polling.
    pub to_polling: u64,
    /// Switches from polling back to interrupts.
    pub to_interrupts: u64,
    /// Packets handled in interrupt mode.
    pub events_interrupts: u64,
    /// Packets handled in polling mode.
    pub events_polling: u64,
    /// Device interrupts taken.
    pub irqs: u64,
}

/// The governor of the first network device, or `None` where there is none to
/// report: hosted (the host kernel drives the NIC) or an image without a NIC.
pub fn io_stats() -> Option<IoStats> {
    imp::io_stats()
}

fn unknown_token(token: Token) -> Error {
    Error::InvalidInput(alloc::format!("token {} is not registered", token.0))
}

#[cfg(not(target_os = "none"))]
mod imp {
    use super::{Error, Event, Interest, Shutdown, SocketAddr, Token};
    use alloc::string::ToString;
    use alloc::sync::{Arc, Weak};
    use alloc::vec::Vec;
    use core::time::Duration;
    use rustix::event::{PollFd, PollFlags, Timespec};

    pub fn io_stats() -> Option<super::IoStats> {
        None
    }
    use std::io::{self, Read, Write};
    use std::os::fd::AsFd;

    /// What a poller keeps of a socket: a weak reference, so that dropping the
    /// socket closes it even while registered.
    pub type Handle = Weak<dyn AsFd + Send + Sync>;

    fn map(e: io::Error, call: &'static str) -> Error {
        use io::ErrorKind as K;
        let m = alloc::format!("{call}: {e}");
        match e.kind() {
            K::WouldBlock | K::TimedOut => Error::TimedOut(call),
            K::AddrInUse | K::AddrNotAvailable | K::PermissionDenied => Error::AddrInUse(m),
            K::ConnectionRefused => Error::ConnectionRefused(m),
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Error::ConnectionReset(m),
            K::NotConnected => Error::NotConnected(m),
            K::InvalidInput => Error::InvalidInput(m),
            _ => Error::Other(m),
        }
    }

    fn retry<T>(call: &'static str, mut f: impl FnMut() -> io::Result<T>) -> Result<T, Error> {
        loop {
            match f() {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r.map_err(|e| map(e, call)),
            }
        }
    }

    pub struct TcpListener(Arc<std::net::TcpListener>);

    impl TcpListener {
        pub fn bind(addr: SocketAddr) -> Result<Self, Error> {
            std::net::TcpListener::bind(addr)
                .map(|l| TcpListener(Arc::new(l)))
                .map_err(|e| map(e, "bind"))
                .map_err(|e| match e {
                    Error::AddrInUse(m) => Error::AddrInUse(alloc::format!("{addr}: {m}")),
                    e => e,
                })
        }
        pub fn accept(&mut self) -> Result<(TcpStream, SocketAddr), Error> {
            retry("accept", || self.0.accept()).map(|(s, a)| (TcpStream(Arc::new(s)), a))
        }
        pub fn local_addr(&self) -> Result<SocketAddr, Error> {
            self.0.local_addr().map_err(|e| map(e, "local_addr"))
        }
        pub fn handle(&self) -> Handle {
            let w: Weak<std::net::TcpListener> = Arc::downgrade(&self.0);
            w
        }
    }

    pub struct TcpStream(Arc<std::net::TcpStream>);

    impl TcpStream {
        pub fn connect(addr: SocketAddr) -> Result<Self, Error> {
            retry("connect", || std::net::TcpStream::connect(addr))
                .map(|s| TcpStream(Arc::new(s)))
                .map_err(|e| match e {
                    Error::ConnectionRefused(_) => Error::ConnectionRefused(alloc::format!("nothing listens at {addr}")),
                    e => e,
                })
        }
        pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
            retry("read", || (&*self.0).read(buf))
        }
        pub fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
            retry("write", || (&*self.0).write(buf))
        }
        pub fn flush(&mut self) -> Result<(), Error> {
            retry("flush", || (&*self.0).flush())
        }
        pub fn shutdown(&mut self, how: Shutdown) -> Result<(), Error> {
            let how = match how {
                Shutdown::Read => std::net::Shutdown::Read,
                Shutdown::Write => std::net::Shutdown::Write,
                Shutdown::Both => std::net::Shutdown::Both,
            };
            self.0.shutdown(how).map_err(|e| map(e, "shutdown"))
        }
        pub fn set_read_timeout(&mut self, t: Option<Duration>) -> Result<(), Error> {
            self.0.set_read_timeout(t).map_err(|e| map(e, "set_read_timeout"))
        }
        pub fn set_write_timeout(&mut self, t: Option<Duration>) -> Result<(), Error> {
            self.0.set_write_timeout(t).map_err(|e| map(e, "set_write_timeout"))
        }
        pub fn set_nodelay(&mut self, nodelay: bool) -> Result<(), Error> {
            self.0.set_nodelay(nodelay).map_err(|e| map(e, "set_nodelay"))
        }
        pub fn peer_addr(&self) -> Result<SocketAddr, Error> {
            self.0.peer_addr().map_err(|e| map(e, "peer_addr"))
        }
        pub fn local_addr(&self) -> Result<SocketAddr, Error> {
            self.0.local_addr().map_err(|e| map(e, "local_addr"))
        }
        pub fn handle(&self) -> Handle {
            let w: Weak<std::net::TcpStream> = Arc::downgrade(&self.0);
            w
        }
    }

    pub struct UdpSocket(Arc<std::net::UdpSocket>);

    impl UdpSocket {
        pub fn bind(addr: SocketAddr) -> Result<Self, Error> {
            std::net::UdpSocket::bind(addr).map(|s| UdpSocket(Arc::new(s))).map_err(|e| match map(e, "bind") {
                Error::AddrInUse(m) => Error::AddrInUse(alloc::format!("{addr}: {m}")),
                e => e,
            })
        }
        pub fn send_to(&self, buf: &[u8], addr: SocketAddr) -> Result<usize, Error> {
            retry("send_to", || self.0.send_to(buf, addr))
        }
        pub fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr), Error> {
            retry("recv_from", || self.0.recv_from(buf))
        }
        pub fn set_read_timeout(&mut self, t: Option<Duration>) -> Result<(), Error> {
            self.0.set_read_timeout(t).map_err(|e| map(e, "set_read_timeout"))
        }
        pub fn local_addr(&self) -> Result<SocketAddr, Error> {
            self.0.local_addr().map_err(|e| map(e, "local_addr"))
        }
        pub fn handle(&self) -> Handle {
            let w: Weak<std::net::UdpSocket> = Arc::downgrade(&self.0);
            w
        }
    }

    pub struct Poller;

    impl Poller {
        pub fn new() -> Result<Self, Error> {
            Ok(Poller)
        }

        pub fn wait(
            &mut self,
            entries: &mut Vec<(Token, Interest, Handle)>,
            events: &mut Vec<Event>,
            timeout: Option<Duration>,
        ) -> Result<(), Error> {
            // Forget sockets that were dropped; hold the rest alive for the call.
            entries.retain(|e| e.2.strong_count() > 0);
            let live: Vec<(Token, Interest, Arc<dyn AsFd + Send + Sync>)> =
                entries.iter().filter_map(|(t, i, h)| Some((*t, *i, h.upgrade()?))).collect();
            let mut fds: Vec<PollFd<'_>> = live
                .iter()
                .map(|(_, interest, s)| {
                    let mut flags = PollFlags::empty();
                    if interest.readable {
                        flags |= PollFlags::IN;
                    }
                    if interest.writable {
                        flags |= PollFlags::OUT;
                    }
                    PollFd::new(s, flags)
                })
                .collect();
            let ts = match timeout {
                Some(d) => Some(
                    Timespec::try_from(d).map_err(|_| Error::InvalidInput("the poll timeout is too long".to_string()))?,
                ),
                None => None,
            };
            match rustix::event::poll(&mut fds, ts.as_ref()) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => return Ok(()),
                Err(e) => return Err(Error::Other(alloc::format!("poll: {e}"))),
            }
            for (fd, (token, _, _)) in fds.iter().zip(&live) {
                let r = fd.revents();
                if r.is_empty() {
                    continue;
                }
                events.push(Event {
                    token: *token,
                    readable: r.intersects(PollFlags::IN | PollFlags::HUP),
                    writable: r.contains(PollFlags::OUT),
                    hangup: r.contains(PollFlags::HUP),
                    error: r.intersects(PollFlags::ERR | PollFlags::NVAL),
                });
            }
            Ok(())
        }
    }
}

#[cfg(all(target_os = "none", feature = "net"))]
mod imp {
    //! The image backend: the kernel's smoltcp stack over virtio-net.
    use super::{Error, Event, Interest, Shutdown, SocketAddr, Token};
    use alloc::string::ToString;
    use alloc::vec::Vec;
    use bareflow_kernel::net as k;
    use core::time::Duration;

    pub fn io_stats() -> Option<super::IoStats> {
        let st = k::netif(Duration::ZERO).ok()?.stats();
        Some(super::IoStats {
            polling: st.polling,
            to_polling: st.to_war,
            to_interrupts: st.to_peace,
            events_interrupts: st.events_peace,
            events_polling: st.events_war,
            irqs: st.irqs,
        })
    }

    fn err(e: k::NetError) -> Error {
        match e {
            k::NetError::NoDevice(n) => Error::Other(n.to_string()),
            k::NetError::InvalidAddress => Error::InvalidAddress("?".into()),
            k::NetError::AddrInUse => Error::AddrInUse("the port is taken".into()),
            k::NetError::TimedOut => Error::TimedOut("the socket call"),
            k::NetError::ConnectionReset => Error::ConnectionReset("by the peer".into()),
            k::NetError::BrokenPipe => Error::ConnectionReset("closed for writing".into()),
            k::NetError::NotConnected => Error::NotConnected("no connection".into()),
            k::NetError::Stack(m) => Error::Other(m.into()),
        }
    }

    pub type Handle = k::PollHandle;

    pub struct TcpListener(k::TcpListener);

    impl TcpListener {
        pub fn bind(a: SocketAddr) -> Result<Self, Error> {
            k::TcpListener::bind(&a.to_string()).map(TcpListener).map_err(err)
        }
        pub fn accept(&mut self) -> Result<(TcpStream, SocketAddr), Error> {
            self.0.accept().map(|(s, a)| (TcpStream(s), a)).map_err(err)
        }
        pub fn local_addr(&self) -> Result<SocketAddr, Error> {
            Ok(SocketAddr::new(core::net::IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED), self.0.port()))
        }
        pub fn handle(&self) -> Handle {
            self.0.poll_handle()
        }
    }

    pub struct TcpStream(k::TcpStream);

    impl TcpStream {
        pub fn connect(a: SocketAddr) -> Result<Self, Error> {
            k::TcpStream::connect(&a.to_string()).map(TcpStream).map_err(err)
        }
        pub fn read(&mut self, b: &mut [u8]) -> Result<usize, Error> {
            self.0.read(b).map_err(err)
        }
        pub fn write(&mut self, b: &[u8]) -> Result<usize, Error> {
            self.0.write(b).map_err(err)
        }
        pub fn flush(&mut self) -> Result<(), Error> {
            self.0.flush().map_err(err)
        }
        pub fn shutdown(&mut self, how: Shutdown) -> Result<(), Error> {
            if matches!(how, Shutdown::Write | Shutdown::Both) {
                self.0.shutdown_write();
            }
            if matches!(how, Shutdown::Read | Shutdown::Both) {
                self.0.shutdown_read();
            }
            Ok(())
        }
        pub fn set_read_timeout(&mut self, t: Option<Duration>) -> Result<(), Error> {
            self.0.set_read_timeout(t);
            Ok(())
        }
        pub fn set_write_timeout(&mut self, t: Option<Duration>) -> Result<(), Error> {
            self.0.set_write_timeout(t);
            Ok(())
        }
        pub fn set_nodelay(&mut self, _: bool) -> Result<(), Error> {
            Ok(()) // Nagle is always off here
        }
        pub fn peer_addr(&self) -> Result<SocketAddr, Error> {
            self.0.peer_addr().ok_or(Error::NotConnected("no peer".into()))
        }
        pub fn local_addr(&self) -> Result<SocketAddr, Error> {
            Err(Error::Unsupported("local_addr of a connection in the image"))
        }
        pub fn handle(&self) -> Handle {
            self.0.poll_handle()
        }
    }

    pub struct UdpSocket(k::UdpSocket);

    impl UdpSocket {
        pub fn bind(a: SocketAddr) -> Result<Self, Error> {
            k::UdpSocket::bind(&a.to_string()).map(UdpSocket).map_err(err)
        }
        pub fn send_to(&self, b: &[u8], a: SocketAddr) -> Result<usize, Error> {
            self.0.send_to(b, &a.to_string()).map_err(err)
        }
        pub fn recv_from(&self, b: &mut [u8]) -> Result<(usize, SocketAddr), Error> {
            self.0.recv_from(b).map_err(err)
        }
        pub fn set_read_timeout(&mut self, t: Option<Duration>) -> Result<(), Error> {
            self.0.set_read_timeout(t);
            Ok(())
        }
        pub fn local_addr(&self) -> Result<SocketAddr, Error> {
            Err(Error::Unsupported("local_addr of a UDP socket in the image"))
        }
        pub fn handle(&self) -> Handle {
            self.0.poll_handle()
        }
    }

    pub struct Poller;

    impl Poller {
        pub fn new() -> Result<Self, Error> {
            Ok(Poller)
        }
        pub fn wait(
            &mut self,
            entries: &mut Vec<(Token, Interest, Handle)>,
            events: &mut Vec<Event>,
            timeout: Option<Duration>,
        ) -> Result<(), Error> {
            let want: Vec<(k::PollHandle, bool, bool)> =
                entries.iter().map(|(_, i, h)| (h.clone(), i.readable, i.writable)).collect();
            let ready = k::poll(&want, timeout);
            let mut keep = Vec::new();
            for ((t, i, h), r) in entries.drain(..).zip(ready) {
                if r.closed || (i.readable && r.readable) || (i.writable && r.writable) {
                    events.push(Event { token: t, readable: r.readable || r.closed, writable: r.writable, hangup: r.closed, error: false });
                }
                if !r.closed {
                    keep.push((t, i, h));
                }
            }
            *entries = keep;
            Ok(())
        }
    }
}

#[cfg(all(target_os = "none", not(feature = "net")))]
mod imp {
    use super::{Error, Event, Interest, Shutdown, SocketAddr, Token};
    use alloc::vec::Vec;
    use core::time::Duration;

    pub fn io_stats() -> Option<super::IoStats> {
        None
    }

    const NOT_YET: Error =
        Error::Unsupported("this app was built without networking: enable bareflow-sys's `net` feature");

    pub type Handle = ();

    pub struct TcpListener;

    impl TcpListener {
        pub fn bind(_: SocketAddr) -> Result<Self, Error> {
            Err(NOT_YET)
        }
        pub fn accept(&mut self) -> Result<(TcpStream, SocketAddr), Error> {
            Err(NOT_YET)
        }
        pub fn local_addr(&self) -> Result<SocketAddr, Error> {
            Err(NOT_YET)
        }
        pub fn handle(&self) -> Handle {}
    }

    pub struct TcpStream;

    impl TcpStream {
        pub fn connect(_: SocketAddr) -> Result<Self, Error> {
            Err(NOT_YET)
        }
        pub fn read(&mut self, _: &mut [u8]) -> Result<usize, Error> {
            Err(NOT_YET)
        }
        pub fn write(&mut self, _: &[u8]) -> Result<usize, Error> {
            Err(NOT_YET)
        }
        pub fn flush(&mut self) -> Result<(), Error> {
            Err(NOT_YET)
        }
        pub fn shutdown(&mut self, _: Shutdown) -> Result<(), Error> {
            Err(NOT_YET)
        }
        pub fn set_read_timeout(&mut self, _: Option<Duration>) -> Result<(), Error> {
            Err(NOT_YET)
        }
        pub fn set_write_timeout(&mut self, _: Option<Duration>) -> Result<(), Error> {
            Err(NOT_YET)
        }
        pub fn set_nodelay(&mut self, _: bool) -> Result<(), Error> {
            Err(NOT_YET)
        }
        pub fn peer_addr(&self) -> Result<SocketAddr, Error> {
            Err(NOT_YET)
        }
        pub fn local_addr(&self) -> Result<SocketAddr, Error> {
            Err(NOT_YET)
        }
        pub fn handle(&self) -> Handle {}
    }

    pub struct UdpSocket;

    impl UdpSocket {
        pub fn bind(_: SocketAddr) -> Result<Self, Error> {
            Err(NOT_YET)
        }
        pub fn send_to(&self, _: &[u8], _: SocketAddr) -> Result<usize, Error> {
            Err(NOT_YET)
        }
        pub fn recv_from(&self, _: &mut [u8]) -> Result<(usize, SocketAddr), Error> {
            Err(NOT_YET)
        }
        pub fn set_read_timeout(&mut self, _: Option<Duration>) -> Result<(), Error> {
            Err(NOT_YET)
        }
        pub fn local_addr(&self) -> Result<SocketAddr, Error> {
            Err(NOT_YET)
        }
        pub fn handle(&self) -> Handle {}
    }

    pub struct Poller;

    impl Poller {
        pub fn new() -> Result<Self, Error> {
            Err(NOT_YET)
        }
        pub fn wait(
            &mut self,
            _: &mut Vec<(Token, Interest, Handle)>,
            _: &mut Vec<Event>,
            _: Option<Duration>,
        ) -> Result<(), Error> {
            Err(NOT_YET)
        }
    }
}

#[cfg(all(test, not(target_os = "none")))]
mod tests {
    use super::*;
    use std::thread;

    fn pair() -> (TcpStream, TcpStream) {
        let mut l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let c = thread::spawn(move || TcpStream::connect(&addr).unwrap());
        let (s, peer) = l.accept().unwrap();
        let c = c.join().unwrap();
        assert_eq!(peer, c.local_addr().unwrap());
        (s, c)
    }

    #[test]
    fn tcp_round_trip_and_shutdown() {
        let (mut s, mut c) = pair();
        c.write_all(b"ping").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 3];
        loop {
            match s.read(&mut buf).unwrap() {
                0 => break,
                n => got.extend_from_slice(&buf[..n]),
            }
        }
        assert_eq!(got, b"ping");
        s.write_all(b"pong").unwrap();
        let mut buf = [0u8; 8];
        let n = c.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"pong");
    }

    #[test]
    fn read_timeout_is_timed_out() {
        let (mut s, _c) = pair();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let t = std::time::Instant::now();
        let e = s.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
        assert!(t.elapsed() >= Duration::from_millis(40));
        assert_eq!(s.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn addresses_are_checked_with_a_useful_message() {
        let e = TcpStream::connect("example.com:80").err().unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidAddress);
        assert!(e.to_string().contains("IP:PORT"), "{e}");
        assert_eq!(parse_addr("localhost:8080").unwrap(), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(parse_addr("[::1]:1").unwrap().port(), 1);
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = l.local_addr().unwrap().to_string();
        assert_eq!(TcpListener::bind(&taken).err().unwrap().kind(), ErrorKind::AddrInUse);
        drop(l);
    }

    #[test]
    fn connect_to_closed_port_is_refused() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        drop(l);
        let e = TcpStream::connect(&addr).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    }

    #[test]
    fn udp_echo() {
        let mut a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let b_addr = b.local_addr().unwrap().to_string();
        a.send_to(b"hello", &b_addr).unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = b.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"hello"[..], a.local_addr().unwrap()));
        b.send_to(&buf[..n], &from.to_string()).unwrap();
        let (n, _) = a.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
    }

    #[test]
    fn poller_reports_accept_read_write_and_hangup() {
        let mut l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let mut p = Poller::new().unwrap();
        p.register(&l, Token(1), Interest::READABLE).unwrap();
        assert!(p.register(&l, Token(1), Interest::READABLE).is_err());
        let mut ev = Vec::new();
        // Nothing pending: times out with no events.
        assert_eq!(p.wait(&mut ev, Some(Duration::from_millis(20))).unwrap(), 0);
        let mut c = TcpStream::connect(&addr).unwrap();
        assert_eq!(p.wait(&mut ev, Some(Duration::from_secs(5))).unwrap(), 1);
        assert_eq!((ev[0].token, ev[0].readable), (Token(1), true));
        let (s, _) = l.accept().unwrap();
        p.register(&s, Token(2), Interest::BOTH).unwrap();
        // A fresh stream is writable, not readable.
        p.wait(&mut ev, Some(Duration::from_secs(5))).unwrap();
        let e2 = ev.iter().find(|e| e.token == Token(2)).copied().unwrap();
        assert!(e2.writable && !e2.readable, "{e2:?}");
        p.reregister(Token(2), Interest::READABLE).unwrap();
        c.write_all(b"x").unwrap();
        p.wait(&mut ev, Some(Duration::from_secs(5))).unwrap();
        assert!(ev.iter().any(|e| e.token == Token(2) && e.readable));
        // Level-triggered: still readable while the byte is unread.
        p.wait(&mut ev, Some(Duration::from_secs(5))).unwrap();
        assert!(ev.iter().any(|e| e.token == Token(2) && e.readable));
        drop(c);
        p.wait(&mut ev, Some(Duration::from_secs(5))).unwrap();
        assert!(ev.iter().any(|e| e.token == Token(2) && e.readable));
        // A dropped socket is forgotten.
        drop(s);
        p.wait(&mut ev, Some(Duration::from_millis(10))).unwrap();
        assert_eq!(p.len(), 1);
        assert!(p.deregister(Token(2)).is_err());
        p.deregister(Token(1)).unwrap();
        assert!(p.is_empty());
    }
}

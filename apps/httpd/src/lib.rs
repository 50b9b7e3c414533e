//! `httpd`: a static-file HTTP/1.1 server written once against `bareflow-sys`,
//! so it runs hosted (Linux, for development and tests) and as a BareFlow image.
//!
//! What it serves: `GET`/`HEAD` of files under the root (hosted: `--root DIR`;
//! in the image: the files handed over at boot), `GET /status` (JSON: uptime,
//! connection counts, requests served, the I/O governor's mode), and
//! `POST /echo` (the request body back, for transfer tests; bounded by the body
//! limit). Requests are parsed by `bareflow-http`, with keep-alive and
//! pipelining (the responses to pipelined requests go out in one write).
//!
//! Limits it keeps, each a [`Config`] field: concurrent connections (one more
//! is answered `503` and closed at once, on the accept thread, so a flood costs
//! no thread), idle time (between requests, per read of a body, and for a
//! whole request head from its first byte, so a client trickling bytes is
//! timed out with `408`), head size and header count (`431`), body size (`413`).
//!
//! Why a thread per connection (with the cap) rather than one poller loop:
//! blocking reads with timeouts are the simplest correct code, the kernel's
//! threads are cheap and spread over every CPU, and the cap bounds the thread
//! count. A poller loop would serve more idle connections per byte of memory;
//! `bareflow_sys::net::Poller` is there for it when that matters.
#![cfg_attr(target_os = "none", no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use bareflow_http::{Limits, Method, Parsed, Request, ResponseHead, Status, Version, error_response, parse_request, write_head};
use bareflow_sys::net::{self, Shutdown, SocketAddr, TcpListener, TcpStream};
use bareflow_sys::time::{Duration, Instant};
use bareflow_sys::{fs, thread};
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Bodies up to this size are copied after their head into one write; larger
/// ones are written straight from the file's buffer.
const INLINE_BODY: usize = 64 * 1024;
/// How much a connection reads at a time.
const READ_CHUNK: usize = 64 * 1024;

/// The server's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where to listen (`IP:PORT`).
    pub addr: String,
    /// The directory files are served from, joined in front of the request
    /// path (empty in the image: the boot-time files).
    pub root: String,
    /// Connections served at once; one more gets `503`.
    pub max_conns: usize,
    /// How long a connection may be idle, and how long a request head may take.
    pub idle: Duration,
    /// Request size limits.
    pub limits: Limits,
    /// Exit (code 0) once this many requests were answered; 0: never. For
    /// tests and benchmarks that boot the server as an image.
    pub exit_after: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: format!("{}:8080", DEFAULT_BIND),
            root: DEFAULT_ROOT.to_string(),
            max_conns: 256,
            idle: Duration::from_secs(5),
            limits: Limits::DEFAULT,
            exit_after: 0,
        }
    }
}

#[cfg(not(target_os = "none"))]
const DEFAULT_BIND: &str = "127.0.0.1";
#[cfg(target_os = "none")]
const DEFAULT_BIND: &str = "0.0.0.0";
#[cfg(not(target_os = "none"))]
const DEFAULT_ROOT: &str = ".";
#[cfg(target_os = "none")]
const DEFAULT_ROOT: &str = "";
/// The command-line usage.
pub const USAGE: &str = "usage: httpd [--port N] [--bind IP] [--root DIR] [--max-conns N] [--idle-ms N] \
[--max-header-bytes N] [--max-headers N] [--max-body-bytes N]";

/// A command line the server cannot run with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// An option it does not know.
    UnknownOption(String),
    /// An option without its value.
    MissingValue(&'static str),
    /// A value that is not what the option takes.
    BadValue {
        /// The option.
        option: &'static str,
        /// The value given.
        value: String,
        /// What it takes.
        expected: &'static str,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::UnknownOption(o) => write!(f, "unknown option {o:?}\n{USAGE}"),
            ConfigError::MissingValue(o) => write!(f, "{o} needs a value\n{USAGE}"),
            ConfigError::BadValue { option, value, expected } => {
                write!(f, "{option} {value:?}: expected {expected}")
            }
        }
    }
}

impl Config {
    /// Reads options (without the program name).
    pub fn from_args(args: &[String]) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        let mut port: u16 = 8080;
        let mut bind = DEFAULT_BIND.to_string();
        let mut it = args.iter();
        while let Some(opt) = it.next() {
            let name: &'static str = match opt.as_str() {
                "--port" => "--port",
                "--bind" => "--bind",
                "--root" => "--root",
                "--max-conns" => "--max-conns",
                "--idle-ms" => "--idle-ms",
                "--max-header-bytes" => "--max-header-bytes",
                "--max-headers" => "--max-headers",
                "--max-body-bytes" => "--max-body-bytes",
                "--exit-after" => "--exit-after",
                other => return Err(ConfigError::UnknownOption(other.to_string())),
            };
            let value = it.next().ok_or(ConfigError::MissingValue(name))?;
            let bad = |expected| ConfigError::BadValue { option: name, value: value.clone(), expected };
            let positive = || value.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| bad("a positive integer"));
            match name {
                "--port" => port = value.parse().map_err(|_| bad("a port number 0..=65535"))?,
                "--bind" => {
                    value.parse::<net::IpAddr>().map_err(|_| bad("an IP address such as 0.0.0.0"))?;
                    bind = value.clone();
                }
                "--root" => c.root = value.trim_end_matches('/').to_string(),
                "--max-conns" => c.max_conns = positive()?,
                "--idle-ms" => c.idle = Duration::from_millis(positive()? as u64),
                "--max-header-bytes" => c.limits.max_head_bytes = positive()?,
                "--max-headers" => c.limits.max_headers = positive()?,
                "--exit-after" => c.exit_after = positive()? as u64,
                _ => c.limits.max_body_bytes = value.parse().map_err(|_| bad("a byte count"))?,
            }
        }
        c.addr = if bind.contains(':') { format!("[{bind}]:{port}") } else { format!("{bind}:{port}") };
        Ok(c)
    }
}

/// Counters, updated by every connection.
#[derive(Debug)]
struct Stats {
    start: Instant,
    active: AtomicUsize,
    accepted: AtomicU64,
    rejected: AtomicU64,
    timed_out: AtomicU64,
    requests: AtomicU64,
    bad_requests: AtomicU64,
}

/// A copy of the server's counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Since the server started.
    pub uptime: Duration,
    /// Connections being served now.
    pub active: usize,
    /// Connections accepted and served (not counting rejected ones).
    pub accepted: u64,
    /// Connections refused with 503 because `max_conns` were being served.
    pub rejected: u64,
    /// Connections closed for idling or a too-slow request.
    pub timed_out: u64,
    /// Requests answered (any status but refusals of malformed input).
    pub requests: u64,
    /// Requests refused as malformed or over a limit.
    pub bad_requests: u64,
    /// The network device's I/O governor (`None` hosted).
    pub io: Option<net::IoStats>,
}

impl Stats {
    fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            uptime: self.start.elapsed(),
            active: self.active.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            bad_requests: self.bad_requests.load(Ordering::Relaxed),
            io: net::io_stats(),
        }
    }
}

impl StatsSnapshot {
    /// The `/status` document. `governor` is the kernel's I/O governor of the
    /// network device (`"polling"` or `"interrupts"`, with its counters), or
    /// `"none"` where there is none to report (hosted: the host kernel drives the NIC).
    pub fn to_json(&self) -> String {
        format!(
            "{{\"uptime_ms\":{},\"connections\":{{\"active\":{},\"accepted\":{},\"rejected\":{},\"timed_out\":{}}},\
\"requests\":{{\"served\":{},\"bad\":{}}},{}}}\n",
            self.uptime.as_millis(),
            self.active,
            self.accepted,
            self.rejected,
            self.timed_out,
            self.requests,
            self.bad_requests,
            governor_json(self.io)
        )
    }
}

fn governor_json(io: Option<net::IoStats>) -> String {
    match io {
        None => "\"governor\":\"none\"".into(),
        Some(g) => format!(
            "\"governor\":\"{}\",\"io\":{{\"to_polling\":{},\"to_interrupts\":{},\"events_polling\":{},\"events_interrupts\":{},\"irqs\":{}}}",
            if g.polling { "polling" } else { "interrupts" },
            g.to_polling,
            g.to_interrupts,
            g.events_polling,
            g.events_interrupts,
            g.irqs
        ),
    }
}

struct Shared {
    config: Config,
    stats: Stats,
    /// A signed handler payload (`handler.bfp` under the root), answering `/handler`.
    handler: Option<bareflow_sys::payload::Handler>,
    stop: AtomicBool,
    addr: SocketAddr,
}

/// A bound server; [`run`](Server::run) serves until [`ServerHandle::stop`].
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

/// Controls a running server from another thread.
#[derive(Clone)]
pub struct ServerHandle(Arc<Shared>);

impl Server {
    /// Listens on `config.addr`.
    pub fn bind(config: Config) -> Result<Server, net::Error> {
        let listener = TcpListener::bind(&config.addr)?;
        let addr = listener.local_addr()?;
        let stats = Stats {
            start: Instant::now(),
            active: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            bad_requests: AtomicU64::new(0),
        };
        let handler = file_path(&config.root, "/handler.bfp").and_then(|p| {
            if fs::metadata(&p).is_err() {
                return None;
            }
            match bareflow_sys::payload::Handler::load(&p) {
                Ok(h) => {
                    bareflow_sys::println!("httpd: /handler is served by the signed payload `{}`", h.name());
                    Some(h)
                }
                Err(e) => {
                    bareflow_sys::println!("httpd: not loading the handler: {e}");
                    None
                }
            }
        });
        Ok(Server { listener, shared: Arc::new(Shared { config, stats, handler, stop: AtomicBool::new(false), addr }) })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// A handle to read counters and stop the server.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle(self.shared.clone())
    }

    /// Accepts and serves connections until stopped.
    pub fn run(mut self) -> Result<(), net::Error> {
        let shared = self.shared;
        let mut failures = 0u32;
        loop {
            let accepted = self.listener.accept();
            if shared.stop.load(Ordering::Acquire) {
                return Ok(());
            }
            let (stream, _peer) = match accepted {
                Ok(a) => {
                    failures = 0;
                    a
                }
                Err(e) => {
                    // Out of descriptors or memory: back off instead of spinning,
                    // and give up only when it persists.
                    failures += 1;
                    if failures > 1000 {
                        return Err(e);
                    }
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            let active = shared.stats.active.fetch_add(1, Ordering::AcqRel);
            if active >= shared.config.max_conns {
                shared.stats.active.fetch_sub(1, Ordering::AcqRel);
                shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
                refuse_busy(stream);
                continue;
            }
            shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
            let conn_shared = shared.clone();
            thread::spawn(move || {
                let _slot = Slot(&conn_shared);
                Connection::new(stream, &conn_shared).serve();
            });
        }
    }
}

impl ServerHandle {
    /// The server's counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.0.stats.snapshot()
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.0.addr
    }

    /// Makes [`Server::run`] return (connections being served finish on their own).
    pub fn stop(&self) {
        self.0.stop.store(true, Ordering::Release);
        // Wake the accept call with a connection of our own.
        let mut addr = self.0.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(net::IpAddr::V4(net::Ipv4Addr::LOCALHOST));
        }
        let _ = TcpStream::connect(&addr.to_string());
    }
}

/// Frees a connection slot when its thread ends, however it ends.
struct Slot<'a>(&'a Shared);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.stats.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Answers an over-the-cap connection with 503 without blocking the accept loop for long.
fn refuse_busy(mut stream: TcpStream) {
    let body = b"too many connections: try again shortly\n";
    let mut out = Vec::with_capacity(160);
    let head = ResponseHead {
        status: Status::SERVICE_UNAVAILABLE,
        version: Version::Http11,
        keep_alive: false,
        content_length: body.len() as u64,
        headers: &[("Retry-After", "1"), ("Content-Type", "text/plain")],
    };
    if write_head(&mut out, &head).is_ok() {
        out.extend_from_slice(body);
        let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
        let _ = stream.write_all(&out);
        let _ = stream.shutdown(Shutdown::Write);
    }
}

struct Connection<'a> {
    stream: TcpStream,
    shared: &'a Shared,
    /// Bytes read and not yet parsed into requests.
    buf: Vec<u8>,
    /// Responses not yet written (pipelined responses go out together).
    out: Vec<u8>,
}

/// Why a connection ends.
enum End {
    /// The peer closed, or we decided to close after a response.
    Done,
    /// A read or write timed out.
    TimedOut,
    /// The socket failed.
    Failed,
}

impl<'a> Connection<'a> {
    fn new(stream: TcpStream, shared: &'a Shared) -> Self {
        Connection { stream, shared, buf: Vec::new(), out: Vec::new() }
    }

    fn serve(mut self) {
        let idle = self.shared.config.idle;
        let _ = self.stream.set_nodelay(true);
        let _ = self.stream.set_write_timeout(Some(idle));
        let end = self.serve_requests();
        if let End::TimedOut = end {
            self.shared.stats.timed_out.fetch_add(1, Ordering::Relaxed);
            // A half-sent request gets told why; an idle keep-alive connection just closes.
            if !self.buf.is_empty() {
                let mut out = Vec::new();
                let head = ResponseHead {
                    status: Status::REQUEST_TIMEOUT,
                    version: Version::Http11,
                    keep_alive: false,
                    content_length: 0,
                    headers: &[],
                };
                if write_head(&mut out, &head).is_ok() {
                    let _ = self.stream.set_write_timeout(Some(Duration::from_millis(100)));
                    let _ = self.stream.write_all(&out);
                }
            }
        }
        if !matches!(end, End::Failed) {
            let _ = self.stream.shutdown(Shutdown::Write);
            self.drain_before_close();
        }
    }

    /// Reads (briefly) what the peer still sends after we closed our side,
    /// so that closing does not reset the connection and destroy the last
    /// response before the peer has read it.
    fn drain_before_close(&mut self) {
        let _ = self.stream.set_read_timeout(Some(Duration::from_millis(200)));
        let mut scratch = [0u8; 512];
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            match self.stream.read(&mut scratch) {
                Ok(n) if n > 0 => continue,
                _ => break,
            }
        }
    }

    fn serve_requests(&mut self) -> End {
        let config = &self.shared.config;
        let mut head_deadline: Option<Instant> = None;
        let mut sent_continue = false;
        loop {
            // Answer every complete request in the buffer.
            let mut used = 0;
            let mut close = false;
            let mut need_total = None;
            loop {
                match parse_request(&self.buf[used..], &config.limits) {
                    Ok(Parsed::Complete { request, consumed }) => {
                        used += consumed;
                        sent_continue = false;
                        self.shared.stats.requests.fetch_add(1, Ordering::Relaxed);
                        let keep_alive = request.keep_alive;
                        if let Err(end) = respond(&request, config, &self.shared.stats, self.shared.handler.as_ref(), &mut self.out, &mut self.stream) {
                            return end;
                        }
                        let answered = self.shared.stats.requests.load(Ordering::Relaxed);
                        if config.exit_after > 0 && answered >= config.exit_after {
                            // This response (and any pipelined before it) is still in
                            // `out`: send it and wait for the peer's ack before leaving.
                            let _ = self.stream.write_all(&self.out);
                            let _ = self.stream.flush();
                            bareflow_sys::process::exit(0);
                        }
                        if !keep_alive {
                            close = true;
                            break;
                        }
                    }
                    Ok(Parsed::Incomplete { total, expect_continue }) => {
                        if expect_continue && !sent_continue {
                            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                            sent_continue = true;
                        }
                        need_total = total;
                        break;
                    }
                    Err(e) => {
                        self.shared.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
                        self.out.extend_from_slice(&error_response(&e));
                        close = true;
                        break;
                    }
                }
            }
            self.buf.drain(..used);
            if !self.out.is_empty() {
                if let Err(e) = self.stream.write_all(&self.out) {
                    return end_of(&e);
                }
                self.out.clear();
            }
            if close {
                self.buf.clear();
                return End::Done;
            }

            // Wait for more bytes: the whole head must arrive within `idle` of
            // its first byte; a body (size known) must progress every `idle`.
            let timeout = if self.buf.is_empty() || need_total.is_some() {
                head_deadline = None;
                config.idle
            } else {
                let now = Instant::now();
                let deadline = *head_deadline.get_or_insert(now + config.idle);
                if now >= deadline {
                    return End::TimedOut;
                }
                deadline.duration_since(now)
            };
            if self.stream.set_read_timeout(Some(timeout.max(Duration::from_millis(1)))).is_err() {
                return End::Failed;
            }
            if let Some(total) = need_total {
                self.buf.reserve(total.saturating_sub(self.buf.len()));
            }
            let len = self.buf.len();
            self.buf.resize(len + READ_CHUNK, 0);
            let r = self.stream.read(&mut self.buf[len..]);
            match r {
                Ok(0) => {
                    self.buf.truncate(len);
                    // The peer is done; a half request is dropped.
                    self.buf.clear();
                    return End::Done;
                }
                Ok(n) => self.buf.truncate(len + n),
                Err(e) => {
                    self.buf.truncate(len);
                    return end_of(&e);
                }
            }
        }
    }
}

fn end_of(e: &net::Error) -> End {
    if e.kind() == net::ErrorKind::TimedOut { End::TimedOut } else { End::Failed }
}

/// Answers one request: appends the response to `out`, or, for a large body,
/// writes what is pending in `out` and then the body straight to the stream.
fn respond(
    req: &Request<'_>,
    config: &Config,
    stats: &Stats,
    handler: Option<&bareflow_sys::payload::Handler>,
    out: &mut Vec<u8>,
    stream: &mut TcpStream,
) -> Result<(), End> {
    let head_only = req.method == Method::Head;
    let (status, content_type, body): (Status, &str, Body) = match (req.method, req.path()) {
        (Method::Get | Method::Head, "/status") => {
            (Status::OK, "application/json", Body::Owned(stats.snapshot().to_json().into_bytes()))
        }
        (Method::Post, "/echo") => (Status::OK, "application/octet-stream", Body::Borrowed(req.body)),
        (Method::Get | Method::Head, "/handler") => match handler.map(|h| h.call(stats.requests.load(Ordering::Relaxed))) {
            Some(Ok((_, reply))) => (Status::OK, "text/plain", Body::Owned(reply)),
            Some(Err(_)) => (Status::INTERNAL_SERVER_ERROR, "text/plain", Body::Static(b"the handler payload failed\n")),
            None => (Status::NOT_FOUND, "text/plain", Body::Static(b"no handler payload (pack a signed handler.bfp)\n")),
        },
        (Method::Get | Method::Head, path) => match file_path(&config.root, path) {
            Some(file) => match fs::read(&file) {
                Ok(bytes) => (Status::OK, content_type_of(&file), Body::Owned(bytes)),
                Err(fs::Error::NotFound(_)) => (Status::NOT_FOUND, "text/plain", Body::Static(b"not found\n")),
                Err(_) => {
                    (Status::FORBIDDEN, "text/plain", Body::Static(b"cannot read this path\n"))
                }
            },
            None => (Status::BAD_REQUEST, "text/plain", Body::Static(b"bad path\n")),
        },
        _ => (Status::METHOD_NOT_ALLOWED, "text/plain", Body::Static(b"use GET or HEAD (POST for /echo)\n")),
    };
    let body = body.bytes();
    let extra: &[(&str, &str)] = if status == Status::METHOD_NOT_ALLOWED {
        &[("Content-Type", "text/plain"), ("Allow", "GET, HEAD, POST")]
    } else {
        &[("Content-Type", content_type)]
    };
    let headers: Vec<(&str, &str)> = [("Server", "bareflow-httpd")].into_iter().chain(extra.iter().copied()).collect();
    let head = ResponseHead {
        status,
        version: req.version,
        keep_alive: req.keep_alive,
        content_length: body.len() as u64,
        headers: &headers,
    };
    if write_head(out, &head).is_err() {
        // Only a content type with a control byte could do this; none of ours has one.
        return Err(End::Failed);
    }
    if head_only {
        return Ok(());
    }
    if body.len() <= INLINE_BODY {
        out.extend_from_slice(body);
        return Ok(());
    }
    stream.write_all(out).map_err(|e| end_of(&e))?;
    out.clear();
    stream.write_all(body).map_err(|e| end_of(&e))
}

enum Body<'b> {
    Static(&'static [u8]),
    Borrowed(&'b [u8]),
    Owned(Vec<u8>),
}

impl Body<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Body::Static(b) => b,
            Body::Borrowed(b) => b,
            Body::Owned(v) => v,
        }
    }
}

/// The file a request path names under `root`, or `None` if the path tries to
/// leave the root or cannot name a file. `/` and paths ending in `/` mean
/// `index.html` there.
pub fn file_path(root: &str, path: &str) -> Option<String> {
    let decoded = percent_decode(path)?;
    if !decoded.starts_with('/') || decoded.contains('\0') || decoded.contains('\\') {
        return None;
    }
    if decoded.split('/').any(|seg| seg == "..") {
        return None;
    }
    let mut file = String::with_capacity(root.len() + decoded.len() + 10);
    file.push_str(root);
    file.push_str(&decoded);
    if file.ends_with('/') {
        file.push_str("index.html");
    }
    Some(file)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = core::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn content_type_of(file: &str) -> &'static str {
    let ext = file.rsplit_once('.').map_or("", |(_, e)| e);
    match ext {
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "css" => "text/css",
        "js" => "text/javascript",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "svg" => "image/svg+xml",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options_parse_and_refuse_bad_values() {
        let c = Config::from_args(&args("--port 9000 --root /srv/www/ --max-conns 3 --idle-ms 250 --max-body-bytes 10"))
            .unwrap();
        assert_eq!(c.addr, format!("{DEFAULT_BIND}:9000"));
        assert_eq!((c.root.as_str(), c.max_conns, c.idle), ("/srv/www", 3, Duration::from_millis(250)));
        assert_eq!(c.limits.max_body_bytes, 10);
        assert_eq!(Config::from_args(&args("--bind ::1 --port 1")).unwrap().addr, "[::1]:1");
        assert!(matches!(Config::from_args(&args("--port 70000")), Err(ConfigError::BadValue { .. })));
        assert!(matches!(Config::from_args(&args("--max-conns 0")), Err(ConfigError::BadValue { .. })));
        assert_eq!(Config::from_args(&args("--idle-ms")), Err(ConfigError::MissingValue("--idle-ms")));
        let e = Config::from_args(&args("--verbose")).unwrap_err();
        assert!(e.to_string().contains("usage"), "{e}");
    }

    #[test]
    fn paths_stay_under_the_root() {
        assert_eq!(file_path("/srv", "/").as_deref(), Some("/srv/index.html"));
        assert_eq!(file_path("/srv", "/a%20b.txt").as_deref(), Some("/srv/a b.txt"));
        assert_eq!(file_path("", "/docs/").as_deref(), Some("/docs/index.html"));
        for bad in ["/../etc/passwd", "/a/%2e%2e/b", "/%2e%2e/x", "x", "/a%00", "/a%zz", "/a%4", "/a\\..\\b"] {
            assert_eq!(file_path("/srv", bad), None, "{bad}");
        }
    }

    #[test]
    fn status_json_has_every_field() {
        let s = StatsSnapshot {
            uptime: Duration::from_millis(1500),
            active: 2,
            accepted: 7,
            rejected: 1,
            timed_out: 3,
            requests: 40,
            bad_requests: 4,
            io: None,
        };
        let j = s.to_json();
        for want in [
            "\"uptime_ms\":1500",
            "\"active\":2",
            "\"accepted\":7",
            "\"rejected\":1",
            "\"timed_out\":3",
            "\"served\":40",
            "\"bad\":4",
            "\"governor\":\"none\"",
        ] {
            assert!(j.contains(want), "{want} missing in {j}");
        }
        let io = net::IoStats { polling: true, to_polling: 2, to_interrupts: 1, events_polling: 900, events_interrupts: 30, irqs: 25 };
        let j = StatsSnapshot { io: Some(io), ..s }.to_json();
        assert!(
            j.contains("\"governor\":\"polling\",\"io\":{\"to_polling\":2,\"to_interrupts\":1,\"events_polling\":900,\"events_interrupts\":30,\"irqs\":25}"),
            "{j}"
        );
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type_of("/a/b.html"), "text/html; charset=utf-8");
        assert_eq!(content_type_of("/a/b"), "application/octet-stream");
    }
}

//! The server in this process on an ephemeral 127.0.0.1 port, against real
//! TCP clients (raw `std::net::TcpStream`, so that pipelining and malformed
//! input can be sent as bytes). Every client read has a timeout, so a hang
//! fails the test instead of stalling it.
use httpd::{Config, Server, ServerHandle};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);
const BIG: usize = 64 << 20;

/// A directory of small files shared by every test (the 64 MiB test adds its own file).
fn www() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("bareflow-httpd-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("index.html"), b"<h1>BareFlow</h1>\n").unwrap();
        std::fs::write(dir.join("a.txt"), b"alpha\n").unwrap();
        dir
    })
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

fn start(tune: impl FnOnce(&mut Config)) -> (ServerHandle, String) {
    let mut c = Config { addr: "127.0.0.1:0".into(), root: www().to_string_lossy().into_owned(), ..Config::default() };
    tune(&mut c);
    let server = Server::bind(c).unwrap();
    let handle = server.handle();
    let addr = server.local_addr().to_string();
    thread::spawn(move || server.run());
    (handle, addr)
}

struct Client {
    r: BufReader<TcpStream>,
}

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl Client {
    fn connect(addr: &str) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        Client { r: BufReader::with_capacity(64 * 1024, s) }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.r.get_mut().write_all(bytes).unwrap();
    }

    fn get(&mut self, path: &str) -> Response {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
        self.response(false)
    }

    /// Reads one response; `head_only` for answers to HEAD.
    fn response(&mut self, head_only: bool) -> Response {
        self.try_response(head_only).expect("a response")
    }

    fn try_response(&mut self, head_only: bool) -> Option<Response> {
        let mut line = String::new();
        if self.r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let status = line.split(' ').nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut l = String::new();
            self.r.read_line(&mut l).ok()?;
            let l = l.trim_end();
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':')?;
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let mut resp = Response { status, headers, body: Vec::new() };
        let len: usize = resp.header("content-length")?.parse().ok()?;
        if !head_only {
            resp.body = vec![0; len];
            self.r.read_exact(&mut resp.body).ok()?;
        }
        Some(resp)
    }

    /// True if the server closed the connection (end of stream, or reset).
    fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.r.read(&mut b), Ok(0) | Err(_))
    }
}

fn sha(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < limit, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn files_status_head_and_errors() {
    let (h, addr) = start(|_| {});
    let mut c = Client::connect(&addr);
    let r = c.get("/");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"<h1>BareFlow</h1>\n"[..]));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let r = c.get("/a.txt?x=1");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"alpha\n"[..]));
    c.send(b"HEAD /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.response(true);
    assert_eq!((r.status, r.header("content-length")), (200, Some("6")));
    assert_eq!(c.get("/missing").status, 404);
    assert_eq!(c.get("/../etc/passwd").status, 400);
    assert_eq!(c.get("/%2e%2e/etc/passwd").status, 400);
    c.send(b"DELETE /a.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.response(false);
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD, POST")));
    let r = c.get("/status");
    assert_eq!(r.status, 200);
    let json = String::from_utf8(r.body).unwrap();
    assert!(json.contains("\"governor\":\"none\""), "{json}");
    assert!(json.contains("\"active\":1"), "{json}");
    // The 7 requests before this one and this one were counted.
    let served: u64 = json.split("\"served\":").nth(1).unwrap().split(&[',', '}'][..]).next().unwrap().parse().unwrap();
    assert_eq!(served, 8, "{json}");
    // HTTP/1.0 without keep-alive: one response, then the server closes.
    let mut c10 = Client::connect(&addr);
    c10.send(b"GET /a.txt HTTP/1.0\r\n\r\n");
    let r = c10.response(false);
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    assert!(c10.closed());
    // HTTP/1.0 with keep-alive stays open.
    let mut c10 = Client::connect(&addr);
    for _ in 0..2 {
        c10.send(b"GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = c10.response(false);
        assert_eq!((r.status, r.header("connection")), (200, Some("keep-alive")));
    }
    h.stop();
}

#[test]
fn hundred_concurrent_keep_alive_clients() {
    let (h, addr) = start(|c| c.max_conns = 256);
    const CLIENTS: usize = 100;
    const REQUESTS: usize = 20;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(CLIENTS));
    let workers: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let addr = addr.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                let mut c = Client::connect(&addr);
                // Every client holds its connection open at the same time.
                barrier.wait();
                for j in 0..REQUESTS {
                    let path = if (i + j) % 2 == 0 { "/a.txt" } else { "/index.html" };
                    let r = c.get(path);
                    assert_eq!(r.status, 200);
                    let want: &[u8] = if path == "/a.txt" { b"alpha\n" } else { b"<h1>BareFlow</h1>\n" };
                    assert_eq!(r.body, want);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let s = h.stats();
    // One connection per client: keep-alive held.
    assert_eq!(s.accepted, CLIENTS as u64);
    assert_eq!(s.requests, (CLIENTS * REQUESTS) as u64);
    assert_eq!(s.rejected, 0);
    h.stop();
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (h, addr) = start(|_| {});
    let mut c = Client::connect(&addr);
    c.send(
        b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\nGET /index.html HTTP/1.1\r\nHost: t\r\n\r\n\
POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
GET /missing HTTP/1.1\r\nHost: t\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let got: Vec<(u16, Vec<u8>)> = (0..5).map(|_| c.response(false)).map(|r| (r.status, r.body)).collect();
    assert_eq!(got[0], (200, b"alpha\n".to_vec()));
    assert_eq!(got[1], (200, b"<h1>BareFlow</h1>\n".to_vec()));
    assert_eq!(got[2], (200, b"hello".to_vec()));
    assert_eq!(got[3].0, 404);
    assert_eq!(got[4], (200, b"alpha\n".to_vec()));
    assert!(c.closed(), "Connection: close ends the connection");
    // A request split in odd places still parses.
    let mut c = Client::connect(&addr);
    for part in [&b"GE"[..], b"T /a.t", b"xt HTTP/1.1\r", b"\nHost: t\r\n", b"\r"] {
        c.send(part);
        thread::sleep(Duration::from_millis(10));
    }
    c.send(b"\n");
    assert_eq!(c.response(false).body, b"alpha\n");
    h.stop();
}

#[test]
fn bad_input_gets_its_status_and_the_server_goes_on() {
    let (h, addr) = start(|c| {
        c.limits.max_head_bytes = 4096;
        c.limits.max_body_bytes = 1000;
    });
    let long_header = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", "a".repeat(5000));
    let many_headers =
        format!("GET / HTTP/1.1\r\nHost: t\r\n{}\r\n", (0..100).map(|i| format!("X-{i}: v\r\n")).collect::<String>());
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"HELLO\r\n\r\n".to_vec(), 400),
        (b"\x16\x03\x01\x00\xa5\x01\x00".to_vec(), 400), // a TLS client hello
        (b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400),        // no Host
        (b"GET / HTTP/1.1\r\nHost: t\r\n bad fold\r\n\r\n".to_vec(), 400),
        (long_header.into_bytes(), 431),
        (many_headers.into_bytes(), 431),
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n".to_vec(), 413),
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(), 501),
        (b"GET / HTTP/2.0\r\nHost: t\r\n\r\n".to_vec(), 505),
    ];
    for (bytes, want) in &cases {
        let mut c = Client::connect(&addr);
        c.send(bytes);
        let r = c.response(false);
        assert_eq!(r.status, *want, "for {:?}", String::from_utf8_lossy(&bytes[..bytes.len().min(40)]));
        assert_eq!(r.header("connection"), Some("close"));
        assert!(c.closed());
    }
    // A good request after a good one and before a bad one is answered first.
    let mut c = Client::connect(&addr);
    c.send(b"GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\nBAD REQUEST LINE HERE\r\n\r\n");
    assert_eq!(c.response(false).status, 200);
    assert_eq!(c.response(false).status, 400);
    assert_eq!(h.stats().bad_requests, cases.len() as u64 + 1);
    // And the server still serves.
    assert_eq!(Client::connect(&addr).get("/a.txt").status, 200);
    h.stop();
}

#[test]
fn slow_and_idle_clients_are_timed_out_while_others_are_served() {
    let idle = Duration::from_millis(400);
    let (h, addr) = start(|c| c.idle = idle);
    // Slowloris: a byte every 50 ms keeps each read short of the idle time,
    // but the whole head must arrive within `idle` of its first byte.
    let slow = {
        let addr = addr.clone();
        thread::spawn(move || {
            let mut c = Client::connect(&addr);
            let t = Instant::now();
            c.send(b"GET /a.txt HTTP/1.1\r\n");
            c.r.get_ref().set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            for b in b"X-Slow: ".iter().chain([b'a'; 200].iter()) {
                if c.r.get_mut().write_all(&[*b]).is_err() {
                    break;
                }
                // Wait 50 ms for the next byte, watching for the server's answer.
                if matches!(c.r.fill_buf(), Ok(buf) if !buf.is_empty()) {
                    break;
                }
            }
            c.r.get_ref().set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
            let r = c.try_response(false).map(|r| r.status);
            (r, t.elapsed())
        })
    };
    // An idle client that never sends.
    let mut idler = Client::connect(&addr);
    let t = Instant::now();
    // Meanwhile a normal client is served at once, many times.
    for _ in 0..20 {
        let t = Instant::now();
        assert_eq!(Client::connect(&addr).get("/a.txt").status, 200);
        assert!(t.elapsed() < Duration::from_secs(1), "served in {:?}", t.elapsed());
        thread::sleep(Duration::from_millis(20));
    }
    assert!(idler.closed());
    let idle_closed = t.elapsed();
    assert!(idle_closed >= idle - Duration::from_millis(50) && idle_closed < idle * 5, "{idle_closed:?}");
    let (status, slow_took) = slow.join().unwrap();
    assert_eq!(status, Some(408));
    // 200 bytes at 50 ms would take 10 s: it was cut near the idle time.
    assert!(slow_took < idle * 5, "slow client lasted {slow_took:?}");
    assert!(h.stats().timed_out >= 2);
    h.stop();
}

#[test]
fn connection_flood_is_capped_and_the_server_keeps_serving() {
    const CAP: usize = 8;
    let (h, addr) = start(|c| {
        c.max_conns = CAP;
        c.idle = Duration::from_secs(10);
    });
    let mut keeper = Client::connect(&addr);
    assert_eq!(keeper.get("/a.txt").status, 200);
    let holders: Vec<Client> = (1..CAP).map(|_| Client::connect(&addr)).collect();
    wait_until("every slot taken", Duration::from_secs(5), || h.stats().active == CAP);
    // The flood: every one past the cap is answered 503 and closed.
    let flood: Vec<_> = (0..4)
        .map(|_| {
            let addr = addr.clone();
            thread::spawn(move || {
                let mut refused = 0;
                for _ in 0..25 {
                    let mut c = Client::connect(&addr);
                    let r = c.response(false);
                    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")));
                    assert!(c.closed());
                    refused += 1;
                }
                refused
            })
        })
        .collect();
    // The connection being served keeps being served during the flood.
    for _ in 0..50 {
        assert_eq!(keeper.get("/a.txt").status, 200);
    }
    let refused: usize = flood.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(refused, 100);
    assert_eq!(h.stats().rejected, 100);
    // When holders leave, their slots serve new clients.
    drop(holders);
    wait_until("slots freed", Duration::from_secs(5), || h.stats().active == 1);
    assert_eq!(Client::connect(&addr).get("/index.html").status, 200);
    h.stop();
}

#[test]
fn sixty_four_mib_down_and_up_with_checksums() {
    /// Removes the generated file however the test ends.
    struct Remove(PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let big = noise(BIG, 7);
    let file = Remove(www().join("big.bin"));
    std::fs::write(&file.0, &big).unwrap();
    let want = sha(&big);
    drop(big);
    let (h, addr) = start(|c| c.limits.max_body_bytes = BIG);
    let mut c = Client::connect(&addr);
    let t = Instant::now();
    let r = c.get("/big.bin");
    let down = t.elapsed();
    assert_eq!((r.status, r.body.len()), (200, BIG));
    assert_eq!(sha(&r.body), want);
    // Up and back: the body is echoed (the connection stays usable afterwards).
    let up = noise(BIG, 99);
    let writer = {
        let mut s = c.r.get_ref().try_clone().unwrap();
        let up = up.clone();
        thread::spawn(move || {
            s.write_all(format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", up.len()).as_bytes())
                .unwrap();
            s.write_all(&up).unwrap();
        })
    };
    let t = Instant::now();
    let r = c.response(false);
    writer.join().unwrap();
    let round = t.elapsed();
    assert_eq!((r.status, r.body.len()), (200, BIG));
    assert_eq!(sha(&r.body), sha(&up));
    assert_eq!(c.get("/a.txt").body, b"alpha\n");
    eprintln!("64 MiB down {down:?}, 64 MiB up+back {round:?}");
    c.r.get_ref().shutdown(Shutdown::Both).ok();
    h.stop();
}

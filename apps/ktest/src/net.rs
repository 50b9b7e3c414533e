//! Network cases (issue 5): a real peer on the host talks to these through
//! QEMU's user network (`--net user --port HOST:GUEST`).
use bareflow_kernel::net::{TcpListener, UdpSocket};
use bareflow_kernel::{dev, task};
use bareflow_sys::prelude::*;
use bareflow_sys::time::{Duration, Instant};

/// Serves `n` TCP connections on port 80 (each: read a request up to the blank
/// line or EOF, reply with a checksum of what was read, close), and echoes UDP
/// datagrams on port 7 meanwhile. Prints the governor's statistics at the end.
pub fn serve(n: usize) -> i32 {
    let net = match bareflow_kernel::net::netif(Duration::from_secs(5)) {
        Ok(n) => n,
        Err(e) => {
            println!("net: {e}");
            return 1;
        }
    };
    let t0 = Instant::now();
    while net.stats().ipv4.is_none() && t0.elapsed() < Duration::from_secs(10) {
        task::sleep(Duration::from_millis(20));
    }
    let ip = net.stats().ipv4;
    println!("net: address {ip:?} after {} ms; devices {:?}", t0.elapsed().as_millis(), dev::attached());
    let mut listener = match TcpListener::bind("0.0.0.0:80") {
        Ok(l) => l,
        Err(e) => {
            println!("net: bind: {e}");
            return 1;
        }
    };
    let udp = task::spawn(|| {
        let Ok(mut s) = UdpSocket::bind("0.0.0.0:7") else { return 0 };
        s.set_read_timeout(Some(Duration::from_secs(60)));
        let mut buf = [0u8; 2048];
        let mut echoed = 0;
        while let Ok((len, from)) = s.recv_from(&mut buf) {
            if s.send_to(&buf[..len], &alloc::format!("{from}")).is_ok() {
                echoed += 1;
            }
        }
        echoed
    })
    .expect("spawn");
    println!("net: listening on :80 (tcp) and :7 (udp)");
    for i in 0..n {
        let (mut conn, peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                println!("net: accept: {e}");
                return 1;
            }
        };
        let mut total = 0u64;
        let mut sum = 0u64;
        let mut buf = vec![0u8; 16384];
        let mut tail = Vec::new();
        let mut first = Vec::new();
        loop {
            match conn.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => {
                    total += k as u64;
                    sum = buf[..k].iter().fold(sum, |a, &b| a.wrapping_mul(31).wrapping_add(b as u64));
                    if first.len() < 64 {
                        first.extend_from_slice(&buf[..k.min(64 - first.len())]);
                    }
                    tail.extend_from_slice(&buf[..k]);
                    if tail.len() > 4 {
                        tail.drain(..tail.len() - 4);
                    }
                    if tail == b"\r\n\r\n" {
                        break;
                    }
                }
                Err(e) => {
                    println!("net: read: {e}");
                    break;
                }
            }
        }
        // `DOWNLOAD <n>` as the request: send n bytes of a known pattern back.
        let text = String::from_utf8_lossy(&first).into_owned();
        let download = text.strip_prefix("DOWNLOAD ").and_then(|r| r.split("\r\n").next()).and_then(|n| n.parse::<usize>().ok());
        let result = match download {
            Some(n) if total < 64 => {
                let head = alloc::format!("HTTP/1.0 200 OK\r\nContent-Length: {n}\r\n\r\n");
                let chunk: Vec<u8> = (0..65536usize).map(|i| (i % 251) as u8).collect();
                let mut r = conn.write_all(head.as_bytes());
                let mut left = n;
                while r.is_ok() && left > 0 {
                    let k = left.min(chunk.len());
                    r = conn.write_all(&chunk[..k]);
                    left -= k;
                }
                r.and_then(|_| conn.flush())
            }
            _ => {
                let body = alloc::format!("bytes={total} sum={sum}\n");
                let reply = alloc::format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
                conn.write_all(reply.as_bytes()).and_then(|_| conn.flush())
            }
        };
        if let Err(e) = result {
            println!("net: write: {e}");
        }
        drop(conn);
        println!("net: connection {} from {peer}: {total} bytes", i + 1);
    }
    let st = net.stats();
    println!(
        "net: governor polling={} to_war={} to_peace={} events_peace={} events_war={} irqs={} ({})",
        st.polling, st.to_war, st.to_peace, st.events_peace, st.events_war, st.irqs, st.irq_kind
    );
    let _ = udp;
    println!("net: done");
    0
}

/// Asks for a device that is not there: a clear error after the deadline.
pub fn missing() -> i32 {
    match dev::wait_for::<u32>("blk7", Duration::from_millis(300)) {
        Ok(_) => 1,
        Err(e) => {
            println!("registry: {e}");
            0
        }
    }
}

/// `net6 PORT`: IPv4 and IPv6 over QEMU's user network (static
/// `net.ip6`/`net.gw6` from the command line): ICMP echo to the gateway on
/// both, then a TCP exchange with the host over IPv6 (the host listens on
/// `[::1]:PORT`, which the user network shows the guest as `[fec0::2]:PORT`).
pub fn v6(port: &str) -> i32 {
    use bareflow_kernel::net;
    let n = match net::netif(Duration::from_secs(5)) {
        Ok(n) => n,
        Err(e) => {
            println!("net6: {e}");
            return 1;
        }
    };
    let t0 = Instant::now();
    while n.stats().ipv4.is_none() && t0.elapsed() < Duration::from_secs(10) {
        task::sleep(Duration::from_millis(20));
    }
    let mut ok = true;
    for dst in ["10.0.2.2", "fec0::2"] {
        let ip: core::net::IpAddr = dst.parse().expect("a literal address");
        // The first echo may wait for ARP/NDP; give it three tries.
        let r = (0..3).find_map(|_| net::ping(ip, Duration::from_secs(2)).ok());
        match r {
            Some(rtt) => println!("net6: ping {dst}: reply in {} us", rtt.as_micros()),
            None => {
                println!("net6: ping {dst}: no reply");
                ok = false;
            }
        }
    }
    let addr = alloc::format!("[fec0::2]:{port}");
    match bareflow_kernel::net::TcpStream::connect(&addr) {
        Ok(mut s) => {
            let msg = b"hello over IPv6\n";
            let mut back = [0u8; 64];
            let r = s.write_all(msg).and_then(|()| s.flush()).and_then(|()| {
                let mut got = 0;
                while got < msg.len() {
                    match s.read(&mut back[got..])? {
                        0 => break,
                        k => got += k,
                    }
                }
                Ok(got)
            });
            match r {
                Ok(k) => println!("net6: tcp {addr}: echoed {:?}", String::from_utf8_lossy(&back[..k])),
                Err(e) => {
                    println!("net6: tcp {addr}: {e}");
                    ok = false;
                }
            }
        }
        Err(e) => {
            println!("net6: tcp connect {addr}: {e}");
            ok = false;
        }
    }
    println!("net6: {}", if ok { "ok" } else { "FAILED" });
    if ok { 0 } else { 1 }
}

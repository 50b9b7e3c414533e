//! Request parsing: head (request line and header lines), then the body that
//! `Content-Length` declares.
use crate::response::Status;
use alloc::vec::Vec;
use core::fmt;

/// Bounds on what one request may hold. Every field is a hard limit: a request
/// over it is refused with the status [`Error::status`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes from the request's first byte to the end of the blank line that
    /// ends its head (empty lines before the request line count too). Over it: 431.
    pub max_head_bytes: usize,
    /// Header lines in one request. Over it: 431.
    pub max_headers: usize,
    /// Body bytes that `Content-Length` may declare. Over it: 413.
    pub max_body_bytes: usize,
}

impl Limits {
    /// 8 KiB of head, 64 header lines, 1 MiB of body.
    pub const DEFAULT: Limits = Limits { max_head_bytes: 8 * 1024, max_headers: 64, max_body_bytes: 1 << 20 };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The bytes are not an HTTP/1.x request; the text says which part is wrong.
    Malformed(&'static str),
    /// The head grew past [`Limits::max_head_bytes`] before its blank line.
    HeadTooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// More header lines than [`Limits::max_headers`].
    TooManyHeaders {
        /// The limit in force.
        limit: usize,
    },
    /// `Content-Length` declares more than [`Limits::max_body_bytes`].
    BodyTooLarge {
        /// What the request declared.
        declared: u64,
        /// The limit in force.
        limit: usize,
    },
    /// The request has a `Transfer-Encoding` (chunked bodies are not accepted).
    TransferEncodingUnsupported,
    /// The request's HTTP major version is not 1.
    VersionUnsupported,
}

impl Error {
    /// The response status for this refusal.
    pub fn status(&self) -> Status {
        match self {
            Error::Malformed(_) => Status::BAD_REQUEST,
            Error::HeadTooLarge { .. } | Error::TooManyHeaders { .. } => Status::HEADER_FIELDS_TOO_LARGE,
            Error::BodyTooLarge { .. } => Status::PAYLOAD_TOO_LARGE,
            Error::TransferEncodingUnsupported => Status::NOT_IMPLEMENTED,
            Error::VersionUnsupported => Status::VERSION_NOT_SUPPORTED,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed(what) => write!(f, "malformed request: {what}"),
            Error::HeadTooLarge { limit } => {
                write!(f, "request head is over {limit} bytes: send fewer or shorter headers")
            }
            Error::TooManyHeaders { limit } => write!(f, "request has more than {limit} header lines: send fewer"),
            Error::BodyTooLarge { declared, limit } => {
                write!(f, "request body of {declared} bytes is over the {limit}-byte limit")
            }
            Error::TransferEncodingUnsupported => {
                f.write_str("Transfer-Encoding (chunked bodies) is not supported: send the body with Content-Length")
            }
            Error::VersionUnsupported => f.write_str("only HTTP/1.0 and HTTP/1.1 are supported"),
        }
    }
}

/// The HTTP version a request was sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: connections close after each response unless the client asks for keep-alive.
    Http10,
    /// HTTP/1.1 (and 1.x for x > 1, treated as 1.1): connections persist unless closed.
    Http11,
}

/// A request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method<'b> {
    /// `GET`
    Get,
    /// `HEAD`: like `GET`, the response has no body.
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// Any other token.
    Other(&'b str),
}

impl<'b> Method<'b> {
    fn from_token(t: &'b str) -> Self {
        match t {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            other => Method::Other(other),
        }
    }
}

/// One header line: a name (a token, case as sent) and its value with
/// surrounding whitespace removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'b> {
    /// The field name.
    pub name: &'b str,
    /// The field value (may hold bytes over 0x7f, never control characters).
    pub value: &'b [u8],
}

/// A parsed request, borrowing from the buffer it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'b> {
    /// The method.
    pub method: Method<'b>,
    /// The request target as sent (`/path?query`, or an absolute URI).
    pub target: &'b str,
    /// The version.
    pub version: Version,
    /// Header lines in the order sent.
    pub headers: Vec<Header<'b>>,
    /// The body (`Content-Length` bytes; empty without it).
    pub body: &'b [u8],
    /// Whether the connection may carry another request after the response.
    pub keep_alive: bool,
    /// Whether the client waits for `100 Continue` before sending its body.
    pub expect_continue: bool,
}

impl<'b> Request<'b> {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value)
    }

    /// The target's path (before any `?`).
    pub fn path(&self) -> &'b str {
        self.target.split_once('?').map_or(self.target, |(p, _)| p)
    }

    /// The target's query (after the first `?`), if any.
    pub fn query(&self) -> Option<&'b str> {
        self.target.split_once('?').map(|(_, q)| q)
    }
}

/// What [`parse_request`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<'b> {
    /// A whole request, and how many bytes of the buffer it used (the next
    /// pipelined request starts there).
    Complete {
        /// The request.
        request: Request<'b>,
        /// Bytes used, head and body.
        consumed: usize,
    },
    /// More bytes are needed.
    Incomplete {
        /// The total request size once known (the head is complete and the
        /// body is not): the buffer must grow to this many bytes.
        total: Option<usize>,
        /// The head is complete and asks for `100 Continue` before its body.
        expect_continue: bool,
    },
}

const INCOMPLETE: Parsed<'static> = Parsed::Incomplete { total: None, expect_continue: false };

/// Parses one request from the start of `buf`.
///
/// Returns [`Parsed::Incomplete`] while the buffer holds a valid prefix of a
/// request within the limits, and an [`Error`] as soon as the bytes cannot be
/// a valid request or pass a limit. Lines may end in CRLF or a bare LF; empty
/// lines before the request line are skipped. HTTP/1.1 requests must carry
/// exactly one `Host` header.
pub fn parse_request<'b>(buf: &'b [u8], limits: &Limits) -> Result<Parsed<'b>, Error> {
    // Skip empty lines before the request line (RFC 9112, section 2.2).
    let mut start = 0;
    loop {
        match buf.get(start..) {
            Some([b'\r', b'\n', ..]) => start += 2,
            Some([b'\n', ..]) => start += 1,
            _ => break,
        }
        if start > limits.max_head_bytes {
            return Err(Error::HeadTooLarge { limit: limits.max_head_bytes });
        }
    }

    // Split the head into lines until the blank line.
    let mut lines: Vec<&'b [u8]> = Vec::new();
    let mut pos = start;
    let head_end = loop {
        let rest = &buf[pos..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
            if buf.len() > limits.max_head_bytes {
                return Err(Error::HeadTooLarge { limit: limits.max_head_bytes });
            }
            // Refuse an impossible request line early instead of waiting for its end.
            if lines.is_empty() {
                check_request_line_prefix(rest)?;
            }
            return Ok(INCOMPLETE);
        };
        let end = pos + nl + 1;
        if end > limits.max_head_bytes {
            return Err(Error::HeadTooLarge { limit: limits.max_head_bytes });
        }
        let line = &rest[..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos = end;
        if line.is_empty() {
            break end;
        }
        // The request line plus at most `max_headers` header lines.
        if lines.len() > limits.max_headers {
            return Err(Error::TooManyHeaders { limit: limits.max_headers });
        }
        lines.push(line);
    };

    let Some((&request_line, header_lines)) = lines.split_first() else {
        return Err(Error::Malformed("no request line"));
    };
    let (method, target, version) = parse_request_line(request_line)?;

    let mut headers = Vec::with_capacity(header_lines.len());
    for &line in header_lines {
        headers.push(parse_header(line)?);
    }

    let mut content_length: Option<u64> = None;
    let mut hosts = 0usize;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expect_continue = false;
    for h in &headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Error::TransferEncodingUnsupported);
        } else if h.name.eq_ignore_ascii_case("content-length") {
            // A list of equal values is allowed (RFC 9110, 8.6); anything else is not.
            for part in h.value.split(|&b| b == b',') {
                let n = parse_decimal(trim_ows(part)).ok_or(Error::Malformed("Content-Length is not a decimal number"))?;
                match content_length {
                    Some(prev) if prev != n => return Err(Error::Malformed("conflicting Content-Length values")),
                    _ => content_length = Some(n),
                }
            }
        } else if h.name.eq_ignore_ascii_case("host") {
            hosts += 1;
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',').map(trim_ows) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive_token = true;
                }
            }
        } else if h.name.eq_ignore_ascii_case("expect") {
            if h.value.eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            } else {
                return Err(Error::Malformed("unknown Expect value (only 100-continue is known)"));
            }
        }
    }
    if version == Version::Http11 && hosts != 1 {
        return Err(Error::Malformed("an HTTP/1.1 request needs exactly one Host header"));
    }
    if hosts > 1 {
        return Err(Error::Malformed("more than one Host header"));
    }
    let keep_alive = !close && (version == Version::Http11 || keep_alive_token);

    let body_len = content_length.unwrap_or(0);
    if body_len > limits.max_body_bytes as u64 {
        return Err(Error::BodyTooLarge { declared: body_len, limit: limits.max_body_bytes });
    }
    // Fits in usize: it is at most `max_body_bytes`.
    let total = head_end + body_len as usize;
    let Some(body) = buf.get(head_end..total) else {
        return Ok(Parsed::Incomplete { total: Some(total), expect_continue });
    };
    Ok(Parsed::Complete {
        request: Request { method, target, version, headers, body, keep_alive, expect_continue },
        consumed: total,
    })
}

/// `tchar` of RFC 9110: the bytes of a token.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_target_byte(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

/// Rejects a partial request line that no more bytes could make valid.
fn check_request_line_prefix(line: &[u8]) -> Result<(), Error> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.splitn(3, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    if !method.iter().all(|&b| is_tchar(b)) {
        return Err(Error::Malformed("the method is not a token"));
    }
    if let Some(target) = parts.next() {
        if method.is_empty() {
            return Err(Error::Malformed("empty method"));
        }
        if !target.iter().all(|&b| is_target_byte(b)) {
            return Err(Error::Malformed("the request target holds a space or control byte"));
        }
    }
    if let Some(version) = parts.next() {
        let n = version.len().min(5);
        if version[..n] != b"HTTP/"[..n] {
            return Err(Error::Malformed("the version is not HTTP/x.y"));
        }
    }
    Ok(())
}

fn parse_request_line(line: &[u8]) -> Result<(Method<'_>, &str, Version), Error> {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::Malformed("the request line is not METHOD SP TARGET SP VERSION"));
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(Error::Malformed("the method is not a token"));
    }
    if target.is_empty() || !target.iter().all(|&b| is_target_byte(b)) {
        return Err(Error::Malformed("the request target is empty or holds a control byte"));
    }
    let version = match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] if major.is_ascii_digit() && minor.is_ascii_digit() => {
            match (major, minor) {
                (b'1', b'0') => Version::Http10,
                (b'1', _) => Version::Http11,
                _ => return Err(Error::VersionUnsupported),
            }
        }
        _ => return Err(Error::Malformed("the version is not HTTP/x.y")),
    };
    // Every byte checked above is ASCII, so these cannot fail.
    let method = core::str::from_utf8(method).map_err(|_| Error::Malformed("the method is not ASCII"))?;
    let target = core::str::from_utf8(target).map_err(|_| Error::Malformed("the target is not ASCII"))?;
    Ok((Method::from_token(method), target, version))
}

fn parse_header(line: &[u8]) -> Result<Header<'_>, Error> {
    let colon = line.iter().position(|&b| b == b':').ok_or(Error::Malformed("a header line has no colon"))?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        // Covers obsolete line folding (a line starting with whitespace) and
        // whitespace before the colon, both refused by RFC 9112.
        return Err(Error::Malformed("a header name is not a token (folded line or space before colon?)"));
    }
    let value = trim_ows(value);
    if !value.iter().all(|&b| b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80) {
        return Err(Error::Malformed("a header value holds a control byte"));
    }
    let name = core::str::from_utf8(name).map_err(|_| Error::Malformed("a header name is not ASCII"))?;
    Ok(Header { name, value })
}

fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// A non-empty run of ASCII digits as a u64, `None` on anything else or overflow.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() { acc.checked_mul(10)?.checked_add(u64::from(b - b'0')) } else { None }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::String;
    use alloc::vec;

    fn complete(buf: &[u8]) -> (Request<'_>, usize) {
        match parse_request(buf, &Limits::DEFAULT) {
            Ok(Parsed::Complete { request, consumed }) => (request, consumed),
            other => panic!("expected a complete request, got {other:?}"),
        }
    }

    fn err(buf: &[u8]) -> Error {
        match parse_request(buf, &Limits::DEFAULT) {
            Err(e) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn simple_get() {
        let buf = b"GET /a/b?x=1 HTTP/1.1\r\nHost: example\r\nUser-Agent:  t  \r\n\r\n";
        let (r, n) = complete(buf);
        assert_eq!(n, buf.len());
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.target, "/a/b?x=1");
        assert_eq!(r.path(), "/a/b");
        assert_eq!(r.query(), Some("x=1"));
        assert_eq!(r.version, Version::Http11);
        assert_eq!(r.header("user-agent"), Some(&b"t"[..]));
        assert_eq!(r.header("HOST"), Some(&b"example"[..]));
        assert!(r.keep_alive);
        assert!(r.body.is_empty());
    }

    #[test]
    fn every_prefix_is_incomplete_then_complete() {
        let buf = b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
        for cut in 0..buf.len() {
            match parse_request(&buf[..cut], &Limits::DEFAULT) {
                Ok(Parsed::Incomplete { total, .. }) => {
                    if cut >= buf.len() - 5 {
                        assert_eq!(total, Some(buf.len()), "cut {cut}");
                    }
                }
                other => panic!("prefix of {cut} bytes: {other:?}"),
            }
        }
        let (r, n) = complete(buf);
        assert_eq!((r.body, n, r.method), (&b"hello"[..], buf.len(), Method::Post));
    }

    #[test]
    fn pipelined_requests_parse_in_turn() {
        let one = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n";
        let two = "PUT /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
        let three = "GET /3 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
        let all = format!("{one}{two}{three}GET /4");
        let mut rest = all.as_bytes();
        let mut seen = vec![];
        while let Ok(Parsed::Complete { request, consumed }) = parse_request(rest, &Limits::DEFAULT) {
            seen.push((String::from(request.target), request.body.len(), request.keep_alive));
            rest = &rest[consumed..];
        }
        assert_eq!(seen, vec![("/1".into(), 0, true), ("/2".into(), 3, true), ("/3".into(), 0, false)]);
        assert_eq!(rest, b"GET /4");
    }

    #[test]
    fn keep_alive_rules() {
        let ka = |s: &str| complete(s.as_bytes()).0.keep_alive;
        assert!(ka("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade, close\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
        assert!(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
        assert!(!ka("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"));
        // HTTP/1.2 is treated as 1.1.
        assert!(ka("GET / HTTP/1.2\r\nHost: h\r\n\r\n"));
    }

    #[test]
    fn bare_lf_and_leading_blank_lines() {
        let buf = b"\r\n\nGET /x HTTP/1.1\nHost: h\n\n";
        let (r, n) = complete(buf);
        assert_eq!((r.target, n), ("/x", buf.len()));
    }

    #[test]
    fn malformed_requests_are_400() {
        for bad in [
            &b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n"[..],
            b"GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n",
            b"GET /\r\nHost: h\r\n\r\n",
            b"G@T / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET / HTTX/1.1\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\x01\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n",
            b"GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n",
        ] {
            let e = err(bad);
            assert_eq!(e.status(), Status::BAD_REQUEST, "{:?}: {e}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn garbage_is_refused_before_the_line_ends() {
        assert_eq!(err(b"\x16\x03\x01\x02\x00").status(), Status::BAD_REQUEST); // a TLS hello
        assert_eq!(err(b"GET /a\x00").status(), Status::BAD_REQUEST);
        assert_eq!(err(b"GET / XTTP").status(), Status::BAD_REQUEST);
        assert!(matches!(parse_request(b"GET / HTT", &Limits::DEFAULT), Ok(Parsed::Incomplete { .. })));
    }

    #[test]
    fn equal_content_lengths_are_one() {
        let (r, _) = complete(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nok");
        assert_eq!(r.body, b"ok");
    }

    #[test]
    fn limits_map_to_431_and_413() {
        let limits = Limits { max_head_bytes: 64, max_headers: 2, max_body_bytes: 10 };
        let long = format!("GET /{} HTTP/1.1\r\nHost: h\r\n\r\n", "a".repeat(100));
        // Refused from the first bytes past the limit, complete or not.
        for cut in [65, 80, long.len()] {
            assert_eq!(
                parse_request(&long.as_bytes()[..cut], &limits),
                Err(Error::HeadTooLarge { limit: 64 }),
                "cut {cut}"
            );
        }
        let many = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(parse_request(many.as_bytes(), &limits), Err(Error::TooManyHeaders { limit: 2 }));
        let two = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n";
        assert!(matches!(parse_request(two.as_bytes(), &limits), Ok(Parsed::Complete { .. })));
        let big = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n";
        let e = parse_request(big.as_bytes(), &limits).unwrap_err();
        assert_eq!((e, e.status()), (Error::BodyTooLarge { declared: 11, limit: 10 }, Status::PAYLOAD_TOO_LARGE));
        // Endless blank lines count against the head limit too.
        assert_eq!(parse_request(&[b'\n'; 100], &limits), Err(Error::HeadTooLarge { limit: 64 }));
    }

    #[test]
    fn chunked_is_501_and_http2_is_505() {
        let e = err(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(e.status(), Status::NOT_IMPLEMENTED);
        assert_eq!(err(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n").status(), Status::VERSION_NOT_SUPPORTED);
        assert_eq!(err(b"GET / HTTP/0.9\r\n\r\n").status(), Status::VERSION_NOT_SUPPORTED);
    }

    #[test]
    fn expect_continue_is_reported_before_the_body() {
        let head = b"PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
        let p = parse_request(head, &Limits::DEFAULT).unwrap();
        assert_eq!(p, Parsed::Incomplete { total: Some(head.len() + 4), expect_continue: true });
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let m = format!("{}", Error::TransferEncodingUnsupported);
        assert!(m.contains("Content-Length"), "{m}");
        let m = format!("{}", Error::HeadTooLarge { limit: 10 });
        assert!(m.contains("10 bytes"), "{m}");
    }
}

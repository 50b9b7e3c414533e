//! Response heads: a status line, checked header lines, `Content-Length` and
//! the `Connection` header that the keep-alive decision needs.
use crate::request::{Error, Version};
use alloc::format;
use alloc::vec::Vec;
use core::fmt;

/// A response status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Status(pub u16);

impl Status {
    /// 100
    pub const CONTINUE: Status = Status(100);
    /// 200
    pub const OK: Status = Status(200);
    /// 400
    pub const BAD_REQUEST: Status = Status(400);
    /// 403
    pub const FORBIDDEN: Status = Status(403);
    /// 404
    pub const NOT_FOUND: Status = Status(404);
    /// 405
    pub const METHOD_NOT_ALLOWED: Status = Status(405);
    /// 408
    pub const REQUEST_TIMEOUT: Status = Status(408);
    /// 413
    pub const PAYLOAD_TOO_LARGE: Status = Status(413);
    /// 431
    pub const HEADER_FIELDS_TOO_LARGE: Status = Status(431);
    /// 500
    pub const INTERNAL_SERVER_ERROR: Status = Status(500);
    /// 501
    pub const NOT_IMPLEMENTED: Status = Status(501);
    /// 503
    pub const SERVICE_UNAVAILABLE: Status = Status(503);
    /// 505
    pub const VERSION_NOT_SUPPORTED: Status = Status(505);

    /// The reason phrase sent after the code.
    pub fn reason(self) -> &'static str {
        match self.0 {
            100 => "Continue",
            200 => "OK",
            204 => "No Content",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            413 => "Content Too Large",
            431 => "Request Header Fields Too Large",
            500 => "Internal Server Error",
            501 => "Not Implemented",
            503 => "Service Unavailable",
            505 => "HTTP Version Not Supported",
            _ => "Status",
        }
    }
}

/// Why a response head could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// A header name is not a token.
    InvalidHeaderName,
    /// A header value holds CR, LF or another control byte (response splitting).
    InvalidHeaderValue,
    /// The status code is not three digits (100..=999).
    InvalidStatus,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResponseError::InvalidHeaderName => "response header name is not a token",
            ResponseError::InvalidHeaderValue => "response header value holds a control byte (CR/LF?): escape it",
            ResponseError::InvalidStatus => "response status is not a three-digit code",
        })
    }
}

/// What goes into a response head.
#[derive(Debug, Clone, Copy)]
pub struct ResponseHead<'a> {
    /// The status.
    pub status: Status,
    /// The request's version (decides how keep-alive is spelled).
    pub version: Version,
    /// Whether the connection stays open after this response.
    pub keep_alive: bool,
    /// The body length that follows the head (sent as `Content-Length`).
    pub content_length: u64,
    /// More header lines (`Content-Length` and `Connection` are added here, do not pass them).
    pub headers: &'a [(&'a str, &'a str)],
}

/// Appends the response head (status line, headers, blank line) to `out`.
/// On error nothing is appended.
pub fn write_head(out: &mut Vec<u8>, head: &ResponseHead<'_>) -> Result<(), ResponseError> {
    if !(100..=999).contains(&head.status.0) {
        return Err(ResponseError::InvalidStatus);
    }
    for (name, value) in head.headers {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
            return Err(ResponseError::InvalidHeaderName);
        }
        if !value.bytes().all(|b| b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80) {
            return Err(ResponseError::InvalidHeaderValue);
        }
    }
    out.extend_from_slice(format!("HTTP/1.1 {} {}\r\n", head.status.0, head.status.reason()).as_bytes());
    for (name, value) in head.headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n", head.content_length).as_bytes());
    match (head.keep_alive, head.version) {
        (false, _) => out.extend_from_slice(b"Connection: close\r\n"),
        (true, Version::Http10) => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        (true, Version::Http11) => {}
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// A whole response for a refused request: the status, a one-line text body
/// saying what was wrong, and `Connection: close` (the stream cannot be trusted
/// after a bad request).
pub fn error_response(err: &Error) -> Vec<u8> {
    let body = format!("{err}\n");
    let mut out = Vec::with_capacity(128 + body.len());
    let head = ResponseHead {
        status: err.status(),
        version: Version::Http11,
        keep_alive: false,
        content_length: body.len() as u64,
        headers: &[("Content-Type", "text/plain; charset=utf-8")],
    };
    // The fixed header above is valid, so this cannot fail; ignore the impossible error.
    let _ = write_head(&mut out, &head);
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    #[test]
    fn head_for_each_keep_alive_case() {
        let mut out = Vec::new();
        let h = |keep_alive, version| ResponseHead {
            status: Status::OK,
            version,
            keep_alive,
            content_length: 5,
            headers: &[("Content-Type", "text/plain")],
        };
        write_head(&mut out, &h(true, Version::Http11)).unwrap();
        assert_eq!(out, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n");
        out.clear();
        write_head(&mut out, &h(true, Version::Http10)).unwrap();
        assert!(String::from_utf8_lossy(&out).contains("Connection: keep-alive\r\n"));
        out.clear();
        write_head(&mut out, &h(false, Version::Http11)).unwrap();
        assert!(String::from_utf8_lossy(&out).contains("Connection: close\r\n"));
    }

    #[test]
    fn header_injection_is_refused_and_writes_nothing() {
        let mut out = Vec::new();
        let head = ResponseHead {
            status: Status::OK,
            version: Version::Http11,
            keep_alive: true,
            content_length: 0,
            headers: &[("X-Ok", "1"), ("Location", "/a\r\nSet-Cookie: x=1")],
        };
        assert_eq!(write_head(&mut out, &head), Err(ResponseError::InvalidHeaderValue));
        assert!(out.is_empty());
        let head = ResponseHead { headers: &[("Bad Name", "v")], ..head };
        assert_eq!(write_head(&mut out, &head), Err(ResponseError::InvalidHeaderName));
        let head = ResponseHead { headers: &[], status: Status(42), ..head };
        assert_eq!(write_head(&mut out, &head), Err(ResponseError::InvalidStatus));
    }

    #[test]
    fn error_response_has_status_length_and_close() {
        let out = error_response(&Error::HeadTooLarge { limit: 8192 });
        let text = String::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{head}");
        assert!(head.contains("Connection: close"));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert!(body.contains("8192"));
    }
}

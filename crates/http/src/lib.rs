//! `bareflow-http`: an HTTP/1.1 request parser and response writer over byte
//! buffers, for `apps/httpd` (hosted and in the image) and anyone else.
//!
//! Principles it keeps:
//! - **Bytes in, borrowed views out.** [`parse_request`] looks at a buffer and
//!   either returns a [`Request`] that borrows from it plus how many bytes it
//!   used, or says it needs more bytes ([`Parsed::Incomplete`]). It never
//!   reads a socket, so it is deterministic and tested on the host. Several
//!   requests in one buffer (pipelining) are parsed by calling it again on
//!   the rest.
//! - **Named limits, checked before work.** [`Limits`] bounds the head (request
//!   line plus header lines), the number of header lines and the body
//!   (declared by `Content-Length`). An oversized head is refused as soon as
//!   the buffer passes the limit, without waiting for its end.
//! - **Every refusal maps to a status.** [`Error::status`] gives 400
//!   (malformed), 431 (head or header count too large), 413 (body too large),
//!   501 (any `Transfer-Encoding`, chunked included: bodies must be sent with
//!   `Content-Length`), 505 (an HTTP major version other than 1).
//! - **No panics on input.** Random and hostile bytes are covered by unit
//!   tests, property tests and the `http_request` fuzz target.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod request;
mod response;

pub use request::{Error, Header, Limits, Method, Parsed, Request, Version, parse_request};
pub use response::{ResponseError, ResponseHead, Status, error_response, write_head};

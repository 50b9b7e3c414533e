//! An HTTP handler payload: `apps/httpd` loads it from the initfs at start
//! and answers `GET /handler` with what it replies. Its argument is the
//! number of requests httpd has served.
#![no_std]
#![forbid(unsafe_code)]

use bareflow_payload::{Line, entry, respond, time_nanos};
use core::fmt::Write as _;

entry!(handle);

fn handle(served: u64) -> u64 {
    let mut l = Line::new();
    let _ = writeln!(l, "hello from a signed handler payload: request {served}, uptime {} ms", time_nanos() / 1_000_000);
    respond(l.as_bytes());
    served
}

//! Fuzzes the HTTP/1.1 request parser: any bytes, tight limits, pipelined
//! parsing until the buffer is used up. It must never panic, and whatever it
//! accepts must lie inside the buffer and the limits.
#![no_main]

use bareflow_http::{Limits, Parsed, parse_request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_head_bytes: 1024, max_headers: 16, max_body_bytes: 4096 };
    let mut rest = data;
    while let Ok(Parsed::Complete { request, consumed }) = parse_request(rest, &limits) {
        assert!(consumed > 0 && consumed <= rest.len());
        assert!(request.body.len() <= limits.max_body_bytes);
        assert!(request.headers.len() <= limits.max_headers);
        rest = &rest[consumed..];
    }
});

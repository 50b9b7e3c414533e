//! Property tests: random and mutated bytes never panic the parser, and
//! whatever it accepts is consistent with the bytes it was given.
use bareflow_http::{Limits, Parsed, parse_request};
use proptest::prelude::*;

fn valid_request() -> impl Strategy<Value = (Vec<u8>, usize)> {
    (
        prop::sample::select(vec!["GET", "HEAD", "POST", "PUT", "X-CUSTOM"]),
        "/[a-zA-Z0-9._~/-]{0,40}",
        prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,15}", "[ -~]{0,30}"), 0..8),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(method, target, headers, body)| {
            let mut s = format!("{method} {target} HTTP/1.1\r\nHost: h\r\n");
            for (n, v) in headers {
                let lower = n.to_ascii_lowercase();
                if ["host", "content-length", "transfer-encoding", "expect"].contains(&lower.as_str()) {
                    continue;
                }
                s.push_str(&format!("{n}: {}\r\n", v.trim()));
            }
            s.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            let mut bytes = s.into_bytes();
            bytes.extend_from_slice(&body);
            (bytes, body.len())
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..600)) {
        let limits = Limits { max_head_bytes: 256, max_headers: 8, max_body_bytes: 64 };
        if let Ok(Parsed::Complete { request, consumed }) = parse_request(&buf, &limits) {
            prop_assert!(consumed <= buf.len());
            prop_assert!(request.body.len() <= 64);
            prop_assert!(request.headers.len() <= 8);
        }
    }

    #[test]
    fn valid_requests_parse_whole_and_prefixes_are_incomplete((buf, body_len) in valid_request(), cut in any::<prop::sample::Index>()) {
        match parse_request(&buf, &Limits::DEFAULT) {
            Ok(Parsed::Complete { request, consumed }) => {
                prop_assert_eq!(consumed, buf.len());
                prop_assert_eq!(request.body.len(), body_len);
                prop_assert_eq!(request.body, &buf[buf.len() - body_len..]);
            }
            other => prop_assert!(false, "not complete: {:?}", other),
        }
        let cut = cut.index(buf.len());
        let incomplete = matches!(parse_request(&buf[..cut], &Limits::DEFAULT), Ok(Parsed::Incomplete { .. }));
        prop_assert!(incomplete, "prefix of {} bytes", cut);
    }

    #[test]
    fn mutated_requests_never_panic((mut buf, _) in valid_request(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        for (i, b) in edits {
            let i = i.index(buf.len());
            buf[i] = b;
        }
        if let Ok(Parsed::Complete { consumed, .. }) = parse_request(&buf, &Limits::DEFAULT) {
            prop_assert!(consumed <= buf.len());
        }
    }

    #[test]
    fn pipelined_sequences_split_exactly(reqs in prop::collection::vec(valid_request(), 1..5)) {
        let all: Vec<u8> = reqs.iter().flat_map(|(b, _)| b.clone()).collect();
        let mut rest = &all[..];
        for (one, body_len) in &reqs {
            match parse_request(rest, &Limits::DEFAULT) {
                Ok(Parsed::Complete { request, consumed }) => {
                    prop_assert_eq!(consumed, one.len());
                    prop_assert_eq!(request.body.len(), *body_len);
                    rest = &rest[consumed..];
                }
                other => prop_assert!(false, "not complete: {:?}", other),
            }
        }
        prop_assert!(rest.is_empty());
    }
}

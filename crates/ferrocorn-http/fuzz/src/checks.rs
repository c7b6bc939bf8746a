//! The properties every fuzz target checks, shared by the cargo-fuzz targets (`fuzz_targets/`)
//! and by the stable-toolchain replay test (`tests/fuzz_corpus.rs`), which includes this file
//! with `#[path]`. Each function takes arbitrary bytes and panics if a property fails.

use ferrocorn_http::response::{self, BodyFraming, ResponsePlan};
use ferrocorn_http::{
    ChunkedDecoder, HeaderMap, HttpError, ParseOptions, Parsed, ProxyParsed, UwsgiParsed, Version, parse_proxy_header,
    parse_request_head, parse_uwsgi_request,
};

fn options(selector: u8) -> ParseOptions {
    match selector % 3 {
        0 => ParseOptions::default(),
        1 => ParseOptions {
            permit_obsolete_folding: true,
            strip_header_spaces: true,
            permit_unconventional_http_method: true,
            permit_unconventional_http_version: true,
            casefold_http_method: true,
            header_map: HeaderMap::Dangerous,
            limit_request_line: 40,
            limit_request_fields: 3,
            limit_request_field_size: 30,
            forwarder_headers: vec![b"SCRIPT_NAME".to_vec().into()],
        },
        _ => ParseOptions {
            header_map: HeaderMap::Refuse,
            limit_request_line: 0,
            limit_request_fields: 0,
            limit_request_field_size: 0,
            forwarder_headers: vec![b"*".to_vec().into()],
            ..ParseOptions::default()
        },
    }
}

fn outcome(r: Result<Parsed, HttpError>) -> Result<Option<usize>, HttpError> {
    r.map(|p| match p {
        Parsed::Complete { consumed, .. } => Some(consumed),
        Parsed::Partial => None,
    })
}

/// Request heads: the first byte picks the options, the rest is the input. Complete heads are
/// stable under extra trailing bytes and under re-parsing exactly what was consumed; no shorter
/// prefix of a complete head is complete; framing fields never survive as both CL and TE.
pub fn head(data: &[u8]) {
    let Some((&sel, input)) = data.split_first() else { return };
    let opts = options(sel);
    let whole = parse_request_head(input, &opts);
    if let Ok(Parsed::Complete { head, consumed }) = &whole {
        let consumed = *consumed;
        assert!(consumed <= input.len());
        match parse_request_head(&input[..consumed], &opts) {
            Ok(Parsed::Complete { head: again, consumed: c }) => {
                assert_eq!(c, consumed);
                assert_eq!(&again, head);
            }
            other => panic!("re-parsing the consumed bytes gave {other:?}"),
        }
        for cut in [0, consumed / 2, consumed.saturating_sub(1)] {
            if cut < consumed {
                let p = outcome(parse_request_head(&input[..cut], &opts));
                assert!(matches!(p, Ok(None) | Err(_)), "prefix {cut} complete: {p:?}");
            }
        }
        for h in &head.headers {
            assert!(!h.value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0), "CR/LF/NUL in a value");
            assert!(!h.name.is_empty());
        }
        let named = |n: &[u8]| head.headers.iter().any(|h| h.name.eq_ignore_ascii_case(n));
        assert!(!(named(b"content-length") && named(b"transfer-encoding")), "CL and TE both kept");
        // Whatever follows a CONNECT is tunnel data, never a request to read.
        assert!(!(head.keep_alive && head.method.eq_ignore_ascii_case("CONNECT")), "keep-alive after CONNECT");
    }
}

/// Chunked bodies: decoding the whole input and decoding it in pieces (sizes from the first
/// byte) give the same result, the same data and the same end state.
pub fn chunked(data: &[u8]) {
    let Some((&sel, body)) = data.split_first() else { return };
    let (max_line, max_fields) = if sel & 1 == 0 { (0, 0) } else { (16, 2) };
    let mut a = ChunkedDecoder::with_limits(max_line, max_fields);
    let mut out_a = Vec::new();
    let ra = a.decode(body, &mut out_a);
    if let Ok(n) = ra {
        assert!(n <= body.len());
        assert!(out_a.len() <= n, "more data out than bytes in");
    }
    let step = usize::from(sel >> 1).max(1);
    let mut b = ChunkedDecoder::with_limits(max_line, max_fields);
    let mut out_b = Vec::new();
    let mut used = 0;
    let mut rb = Ok(0);
    while used < body.len() {
        let end = (used + step).min(body.len());
        match b.decode(&body[used..end], &mut out_b) {
            Ok(n) => {
                let took_all = n == end - used;
                used += n;
                rb = Ok(used);
                // Stopped short: the body ended; what follows is the next request.
                if !took_all {
                    break;
                }
            }
            Err(e) => {
                rb = Err(e);
                break;
            }
        }
    }
    assert_eq!(ra, rb, "whole vs pieces of {step}");
    if ra.is_ok() {
        assert_eq!(out_a, out_b);
        assert_eq!(a.is_done(), b.is_done());
    }
}

/// Response heads from the app: whatever status and header pass validation, the written head
/// has exactly one line per field and no injected CR, LF or NUL.
pub fn response(data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == 0xff);
    let (Some(status), Some(name), value) = (parts.next(), parts.next(), parts.next()) else { return };
    let value = value.unwrap_or(b"");
    let Ok(code) = response::validate_status(status) else { return };
    assert!((100..=999).contains(&code));
    if response::validate_header(name, value).is_err() {
        return;
    }
    let plan = ResponsePlan { framing: BodyFraming::Length(0), keep_alive: true };
    let mut out = Vec::new();
    let headers: [(&[u8], &[u8]); 1] = [(name, value)];
    response::write_head(&mut out, Version::Http11, status, &headers, &plan, b"Thu, 01 Jan 1970 00:00:00 GMT", b"f");
    assert!(out.ends_with(b"\r\n\r\n"));
    // Every line of the head, the last field included, ends in CRLF.
    let lines = &out[..out.len() - 3];
    for line in lines.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or_else(|| panic!("bare LF in {out:?}"));
        assert!(!line.is_empty(), "empty line inside the head {out:?}");
        assert!(!line.contains(&b'\r') && !line.contains(&0), "CR or NUL inside a line {out:?}");
    }
}

/// PROXY headers: never consume past the input, and a complete header parses the same from
/// exactly its own bytes; shorter prefixes are never complete.
pub fn proxy(data: &[u8]) {
    match parse_proxy_header(data) {
        Ok(ProxyParsed::Complete { info, consumed }) => {
            assert!(consumed <= data.len());
            match parse_proxy_header(&data[..consumed]) {
                Ok(ProxyParsed::Complete { info: again, consumed: c }) => {
                    assert_eq!(c, consumed);
                    assert_eq!(format!("{again:?}"), format!("{info:?}"));
                }
                other => panic!("re-parsing the consumed bytes gave {other:?}"),
            }
            if consumed > 0 {
                assert!(!matches!(parse_proxy_header(&data[..consumed - 1]), Ok(ProxyParsed::Complete { .. })));
            }
        }
        Ok(ProxyParsed::NotProxy) | Ok(ProxyParsed::Partial) | Err(_) => {}
    }
}

/// uwsgi packets: the first byte picks the options; never consume past the input; a complete
/// packet parses the same from exactly its own bytes and no shorter prefix is complete; what
/// comes out holds no byte that could split a head (CR, LF, NUL) in a name, value or target,
/// and the body framing agrees with the Content-Length field.
pub fn uwsgi(data: &[u8]) {
    let Some((&sel, data)) = data.split_first() else { return };
    let opts = options(sel);
    let Ok(UwsgiParsed::Complete { request, consumed }) = parse_uwsgi_request(data, &opts) else { return };
    assert!(consumed <= data.len());
    match parse_uwsgi_request(&data[..consumed], &opts) {
        Ok(UwsgiParsed::Complete { request: again, consumed: c }) => {
            assert_eq!(c, consumed);
            assert_eq!(again, request);
        }
        other => panic!("re-parsing the consumed bytes gave {other:?}"),
    }
    assert!(!matches!(parse_uwsgi_request(&data[..consumed - 1], &opts), Ok(UwsgiParsed::Complete { .. })));
    let bad = |s: &[u8]| s.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0);
    let head = &request.head;
    assert!(!bad(&head.target) && !bad(&head.path) && !bad(&head.query) && !bad(head.method.as_bytes()));
    assert_eq!(head.version, Version::Http10);
    assert!(!head.expect_continue);
    let mut length = None;
    for h in &head.headers {
        assert!(!h.name.is_empty() && !bad(&h.name) && !bad(&h.value) && !h.name.contains(&b':'));
        assert!(!h.name.eq_ignore_ascii_case(b"transfer-encoding"));
        if h.name.eq_ignore_ascii_case(b"content-length") {
            assert!(length.is_none(), "two Content-Length fields");
            length = Some(std::str::from_utf8(&h.value).unwrap().parse::<u64>().unwrap());
        }
    }
    match head.framing {
        ferrocorn_http::Framing::Length(n) => assert_eq!(length, Some(n)),
        ferrocorn_http::Framing::None => assert_eq!(length, None),
        ferrocorn_http::Framing::Chunked => panic!("uwsgi bodies are never chunked"),
    }
}

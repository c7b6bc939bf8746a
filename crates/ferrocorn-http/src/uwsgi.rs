//! The uwsgi binary protocol, as nginx's `uwsgi_pass` speaks it, read into the same
//! [`RequestHead`] the HTTP/1 parser produces, so nothing after the head knows which protocol
//! carried a request.
//!
//! A packet is a 4-byte header, `modifier1` (u8), `datasize` (u16 little-endian), `modifier2`
//! (u8), then `datasize` bytes of vars: pairs of a u16-LE-sized key and a u16-LE-sized value,
//! the CGI environment the front end built (RFC 3875 names). The request body follows the
//! packet, `CONTENT_LENGTH` bytes long. As in Gunicorn 27, only `modifier1 = 0` (a WSGI
//! request) is served and `modifier2` is ignored.
//!
//! The limits are HTTP/1's: header-carrying vars (`HTTP_*`, `CONTENT_*`) count against
//! `limit_request_fields` and `limit_request_field_size`, and the request target against
//! `limit_request_line`. The whole packet is at most 64 KiB by construction.

use crate::HttpError;
use crate::chars::{FIELD_VALUE, TCHAR, is_field_value, trim_ows};
use crate::head::{Framing, Header, Limits, ParseOptions, RequestHead, Version, parse_method};
use std::net::{IpAddr, SocketAddr};

/// Bytes before the vars block.
const HEADER_LEN: usize = 4;

/// The scheme the front end says the client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// One request read from a uwsgi packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UwsgiRequest {
    /// Method, target, path, query and headers, as the HTTP/1 parser would give them.
    ///
    /// `version` is always [`Version::Http10`]: the uwsgi hop has no transfer codings, so a
    /// response without a length must end at close, which is HTTP/1.0 framing (Gunicorn turns
    /// chunking off for uwsgi for the same reason: nginx would pass the chunk markers on as
    /// body bytes). `keep_alive` is still true unless `HTTP_CONNECTION` says `close`.
    pub head: RequestHead,
    /// `REMOTE_ADDR`/`REMOTE_PORT`: the client as the front end saw it, when it sent a valid
    /// address (a missing or invalid port reads as 0).
    pub remote: Option<SocketAddr>,
    /// From `UWSGI_SCHEME`, else `HTTPS` (`on`, `1`, `true`), else `wsgi.url_scheme`.
    pub scheme: Option<Scheme>,
}

/// Result of feeding bytes to [`parse_uwsgi_request`].
#[derive(Debug)]
pub enum UwsgiParsed {
    /// A whole packet; `consumed` bytes of the buffer belong to it (the body follows).
    Complete { request: UwsgiRequest, consumed: usize },
    /// More bytes are needed (at most 64 KiB in all).
    Partial,
}

/// Parses one uwsgi packet from the start of `buf`. Bytes after `consumed` (the body, or the
/// next packet) are not looked at.
pub fn parse_uwsgi_request(buf: &[u8], opts: &ParseOptions) -> Result<UwsgiParsed, HttpError> {
    // The modifier is checked on the first byte, so a client speaking HTTP to a uwsgi
    // listener is answered at once instead of waiting for a size that will never come.
    match buf.first() {
        None => return Ok(UwsgiParsed::Partial),
        Some(0) => {}
        Some(_) => return Err(HttpError::UnsupportedUwsgiModifier),
    }
    let [_, lo, hi, _modifier2, ..] = *buf else {
        return Ok(UwsgiParsed::Partial);
    };
    let end = HEADER_LEN + usize::from(u16::from_le_bytes([lo, hi]));
    let Some(block) = buf.get(HEADER_LEN..end) else {
        return Ok(UwsgiParsed::Partial);
    };
    let request = parse_vars(block, opts)?;
    Ok(UwsgiParsed::Complete { request, consumed: end })
}

/// Takes one u16-LE-sized string off the front of `rest`.
fn take<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], HttpError> {
    let &[lo, hi, ref tail @ ..] = *rest else {
        return Err(HttpError::InvalidUwsgiPacket);
    };
    let n = usize::from(u16::from_le_bytes([lo, hi]));
    let (s, tail) = tail.split_at_checked(n).ok_or(HttpError::InvalidUwsgiPacket)?;
    *rest = tail;
    Ok(s)
}

/// The vars the head is built from; each may appear once.
#[derive(Default)]
struct Cgi<'a> {
    method: Option<&'a [u8]>,
    path_info: Option<&'a [u8]>,
    script_name: Option<&'a [u8]>,
    query: Option<&'a [u8]>,
    request_uri: Option<&'a [u8]>,
    content_length: Option<&'a [u8]>,
    content_type: Option<&'a [u8]>,
    uwsgi_scheme: Option<&'a [u8]>,
    https: Option<&'a [u8]>,
    url_scheme: Option<&'a [u8]>,
    remote_addr: Option<&'a [u8]>,
    remote_port: Option<&'a [u8]>,
}

/// Records a var that may appear once: two different values for, say, `REQUEST_METHOD` would
/// let two readers of the same packet disagree about the request, so a repeat is refused.
fn once<'a>(slot: &mut Option<&'a [u8]>, value: &'a [u8]) -> Result<(), HttpError> {
    match slot.replace(value) {
        Some(_) => Err(HttpError::DuplicateField),
        None => Ok(()),
    }
}

fn parse_vars(block: &[u8], opts: &ParseOptions) -> Result<UwsgiRequest, HttpError> {
    let lim = Limits::new(opts);
    let mut cgi = Cgi::default();
    let mut headers: Vec<Header> = Vec::new();
    let (mut fields, mut host, mut close) = (0usize, false, false);
    let mut rest = block;
    while !rest.is_empty() {
        let key = take(&mut rest)?;
        let value = take(&mut rest)?;
        let header_name = key.strip_prefix(b"HTTP_");
        if header_name.is_some() || key.starts_with(b"CONTENT_") {
            fields += 1;
            if fields > lim.fields {
                return Err(HttpError::TooManyFields);
            }
            // Counted as the field line it stands for: `name: value` and its CRLF.
            if key.len().saturating_add(value.len()).saturating_add(4) > lim.field_size {
                return Err(HttpError::FieldTooLarge);
            }
        }
        match key {
            b"REQUEST_METHOD" => once(&mut cgi.method, value)?,
            b"PATH_INFO" => once(&mut cgi.path_info, value)?,
            b"SCRIPT_NAME" => once(&mut cgi.script_name, value)?,
            b"QUERY_STRING" => once(&mut cgi.query, value)?,
            b"REQUEST_URI" => once(&mut cgi.request_uri, value)?,
            b"CONTENT_LENGTH" => {
                if cgi.content_length.replace(value).is_some() {
                    return Err(HttpError::DuplicateContentLength);
                }
            }
            b"CONTENT_TYPE" => once(&mut cgi.content_type, value)?,
            b"UWSGI_SCHEME" => once(&mut cgi.uwsgi_scheme, value)?,
            b"HTTPS" => once(&mut cgi.https, value)?,
            b"wsgi.url_scheme" => once(&mut cgi.url_scheme, value)?,
            b"REMOTE_ADDR" => once(&mut cgi.remote_addr, value)?,
            b"REMOTE_PORT" => once(&mut cgi.remote_port, value)?,
            _ => {
                let Some(name) = header_name else {
                    // Other CGI vars (SERVER_NAME, DOCUMENT_ROOT, ...) describe the front end,
                    // not the request; the environ takes them from this server's own sockets.
                    continue;
                };
                if let Some(h) = header(name, value, &mut host, &mut close)? {
                    headers.push(h);
                }
            }
        }
    }
    build(cgi, headers, close, opts, &lim)
}

/// Turns `HTTP_X_FOO` into the field `X-FOO`, checked like an HTTP/1 field. `None` for the
/// fields this hop must not carry.
fn header(name: &[u8], value: &[u8], host: &mut bool, close: &mut bool) -> Result<Option<Header>, HttpError> {
    // The mapping back is lossy (CGI turned `-` into `_`), as in Gunicorn.
    let name: Vec<u8> = name.iter().map(|&b| if b == b'_' { b'-' } else { b }).collect();
    if name.is_empty() || !name.iter().all(|&b| TCHAR[usize::from(b)]) {
        return Err(HttpError::InvalidHeaderName);
    }
    if !is_field_value(value) {
        return Err(if value.contains(&0) { HttpError::NulByte } else { HttpError::InvalidHeaderValue });
    }
    if name.eq_ignore_ascii_case(b"content-length")
        || name.eq_ignore_ascii_case(b"content-type")
        || name.eq_ignore_ascii_case(b"transfer-encoding")
    {
        // RFC 3875 section 4.1.18: a CGI environment carries these only as CONTENT_LENGTH and
        // CONTENT_TYPE, and the body on this hop is framed by CONTENT_LENGTH alone (the front
        // end has already removed any chunking). An `HTTP_CONTENT_LENGTH` var would otherwise
        // become the app's CONTENT_LENGTH and disagree with the bytes actually sent.
        return Ok(None);
    }
    if name.eq_ignore_ascii_case(b"host") && std::mem::replace(host, true) {
        return Err(HttpError::DuplicateField);
    }
    if name.eq_ignore_ascii_case(b"connection") {
        *close |= value.split(|&b| b == b',').any(|t| trim_ows(t).eq_ignore_ascii_case(b"close"));
    }
    Ok(Some(Header { name: name.into(), value: value.into() }))
}

/// True if `s` has no control characters (nor DEL); `space` says whether SP is allowed.
fn clean(s: &[u8], space: bool) -> bool {
    s.iter().all(|&b| FIELD_VALUE[usize::from(b)] && b != b'\t' && (space || b != b' '))
}

fn build(
    cgi: Cgi<'_>,
    mut headers: Vec<Header>,
    close: bool,
    opts: &ParseOptions,
    lim: &Limits,
) -> Result<UwsgiRequest, HttpError> {
    let method = parse_method(cgi.method.unwrap_or(b"GET"), opts)?;

    // PATH_INFO and SCRIPT_NAME are already percent-decoded (CGI), so they may hold spaces;
    // QUERY_STRING and REQUEST_URI are as the client sent them.
    let path_info = cgi.path_info.unwrap_or(b"/");
    let script_name = cgi.script_name.unwrap_or(b"");
    let query = cgi.query.unwrap_or(b"");
    if !clean(path_info, true) || !clean(script_name, true) || !clean(query, false) {
        return Err(HttpError::InvalidTarget);
    }
    let mut path = Vec::with_capacity(script_name.len() + path_info.len());
    path.extend_from_slice(script_name);
    path.extend_from_slice(path_info);
    let target: Box<[u8]> = match cgi.request_uri {
        Some(uri) => {
            if !clean(uri, false) {
                return Err(HttpError::InvalidTarget);
            }
            uri.into()
        }
        None if query.is_empty() => path.clone().into(),
        None => [&path[..], b"?", query].concat().into(),
    };
    if target.len() > lim.line || path.len().saturating_add(query.len()) > lim.line {
        return Err(HttpError::RequestLineTooLarge);
    }
    if !script_name.is_empty() {
        // Passed on as the forwarded SCRIPT_NAME field, which the environ honours only from a
        // peer in `forwarded_allow_ips` that lists it in `forwarder_headers`, as for HTTP/1.
        headers.push(Header { name: b"SCRIPT_NAME"[..].into(), value: script_name.into() });
    }

    // nginx's uwsgi_params sends CONTENT_LENGTH and CONTENT_TYPE empty when the client sent
    // none: that means "absent", not "zero" or "no type".
    let mut framing = Framing::None;
    if let Some(cl) = cgi.content_length.filter(|v| !v.is_empty()) {
        framing = Framing::Length(parse_length(cl)?);
        headers.push(Header { name: b"Content-Length"[..].into(), value: cl.into() });
    }
    if let Some(ct) = cgi.content_type.filter(|v| !v.is_empty()) {
        if !is_field_value(ct) {
            return Err(if ct.contains(&0) { HttpError::NulByte } else { HttpError::InvalidHeaderValue });
        }
        headers.push(Header { name: b"Content-Type"[..].into(), value: ct.into() });
    }

    let remote = cgi.remote_addr.and_then(|a| std::str::from_utf8(a).ok()?.parse::<IpAddr>().ok()).map(|ip| {
        let port = cgi.remote_port.and_then(|p| std::str::from_utf8(p).ok()?.parse::<u16>().ok()).unwrap_or(0);
        SocketAddr::new(ip, port)
    });
    let scheme = scheme_word(cgi.uwsgi_scheme)
        .or_else(|| {
            cgi.https.filter(|v| [&b"on"[..], b"1", b"true"].iter().any(|t| v.eq_ignore_ascii_case(t))).map(|_| Scheme::Https)
        })
        .or_else(|| scheme_word(cgi.url_scheme));

    // RFC 9110 section 9.3.6: after a CONNECT the bytes are a tunnel's, never another request.
    let keep_alive = !close && !method.eq_ignore_ascii_case("CONNECT");
    let head = RequestHead {
        method,
        target,
        path: path.into(),
        query: query.into(),
        fragment: Box::default(),
        version: Version::Http10,
        headers,
        framing,
        keep_alive,
        // The front end answers `Expect: 100-continue` itself before it sends the packet.
        expect_continue: false,
    };
    Ok(UwsgiRequest { head, remote, scheme })
}

fn scheme_word(v: Option<&[u8]>) -> Option<Scheme> {
    match v? {
        s if s.eq_ignore_ascii_case(b"https") => Some(Scheme::Https),
        s if s.eq_ignore_ascii_case(b"http") => Some(Scheme::Http),
        _ => None,
    }
}

/// `CONTENT_LENGTH` as HTTP/1 reads `Content-Length` (RFC 9110 section 8.6): digits only.
/// Gunicorn reads anything else as 0, which would leave the body's bytes to be taken for the
/// next packet; here it is refused.
fn parse_length(v: &[u8]) -> Result<u64, HttpError> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::InvalidContentLength);
    }
    v.iter().try_fold(0u64, |n, &b| n.checked_mul(10)?.checked_add(u64::from(b - b'0'))).ok_or(HttpError::InvalidContentLength)
}

/// Encodes a uwsgi packet (modifier1 0) from vars; for tests and fuzz seeds. `None` if the
/// vars do not fit the protocol's 16-bit sizes.
pub fn encode_packet(vars: &[(&[u8], &[u8])]) -> Option<Vec<u8>> {
    let mut block = Vec::new();
    for (k, v) in vars {
        block.extend_from_slice(&u16::try_from(k.len()).ok()?.to_le_bytes());
        block.extend_from_slice(k);
        block.extend_from_slice(&u16::try_from(v.len()).ok()?.to_le_bytes());
        block.extend_from_slice(v);
    }
    let mut out = vec![0];
    out.extend_from_slice(&u16::try_from(block.len()).ok()?.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&block);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `input` whole and checks that every shorter prefix is `Partial` or fails with the
    /// same error, as a caller reading it one piece at a time (split at every byte) would see.
    fn parse_all_ways(input: &[u8], opts: &ParseOptions) -> Result<(UwsgiRequest, usize), HttpError> {
        let whole = match parse_uwsgi_request(input, opts) {
            Ok(UwsgiParsed::Complete { request, consumed }) => Ok((request, consumed)),
            Ok(UwsgiParsed::Partial) => panic!("whole input is partial: {input:?}"),
            Err(e) => Err(e),
        };
        let stop = whole.as_ref().map_or(input.len(), |(_, n)| *n);
        for cut in 0..stop {
            match parse_uwsgi_request(&input[..cut], opts) {
                Ok(UwsgiParsed::Partial) => {}
                Ok(UwsgiParsed::Complete { .. }) => panic!("prefix of {cut} bytes complete"),
                Err(e) => assert_eq!(Err(e), whole.as_ref().map(|_| ()).map_err(|e| *e), "prefix {cut}"),
            }
        }
        whole
    }

    fn packet(vars: &[(&str, &str)]) -> Vec<u8> {
        let v: Vec<(&[u8], &[u8])> = vars.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())).collect();
        encode_packet(&v).unwrap()
    }

    fn ok(vars: &[(&str, &str)]) -> UwsgiRequest {
        let mut input = packet(vars);
        let n = input.len();
        input.extend_from_slice(b"body");
        let (req, consumed) = parse_all_ways(&input, &ParseOptions::default()).expect("valid packet");
        assert_eq!(consumed, n);
        req
    }

    fn err(vars: &[(&str, &str)]) -> HttpError {
        err_with(vars, &ParseOptions::default())
    }

    fn err_with(vars: &[(&str, &str)], opts: &ParseOptions) -> HttpError {
        parse_all_ways(&packet(vars), opts).map(|_| ()).expect_err("invalid packet")
    }

    fn header<'a>(r: &'a UwsgiRequest, name: &str) -> Option<&'a [u8]> {
        r.head.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name.as_bytes())).map(|h| &*h.value)
    }

    /// What nginx's stock `uwsgi_params` sends for `POST /a%20b?x=1` with a body.
    const NGINX: &[(&str, &str)] = &[
        ("QUERY_STRING", "x=1"),
        ("REQUEST_METHOD", "POST"),
        ("CONTENT_TYPE", "text/plain"),
        ("CONTENT_LENGTH", "4"),
        ("REQUEST_URI", "/a%20b?x=1"),
        ("PATH_INFO", "/a b"),
        ("DOCUMENT_ROOT", "/usr/share/nginx/html"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REQUEST_SCHEME", "http"),
        ("HTTPS", ""),
        ("REMOTE_ADDR", "203.0.113.7"),
        ("REMOTE_PORT", "51234"),
        ("SERVER_PORT", "80"),
        ("SERVER_NAME", "localhost"),
        ("HTTP_HOST", "example.com"),
        ("HTTP_X_FORWARDED_FOR", "198.51.100.1"),
        ("HTTP_USER_AGENT", "curl/8"),
    ];

    #[test]
    fn nginx_request() {
        let r = ok(NGINX);
        assert_eq!(&*r.head.method, "POST");
        assert_eq!(&*r.head.target, b"/a%20b?x=1");
        assert_eq!(&*r.head.path, b"/a b");
        assert_eq!(&*r.head.query, b"x=1");
        assert_eq!(r.head.framing, Framing::Length(4));
        assert!(r.head.keep_alive);
        assert!(!r.head.expect_continue);
        assert_eq!(r.head.version, Version::Http10);
        assert_eq!(header(&r, "host"), Some(&b"example.com"[..]));
        assert_eq!(header(&r, "X-FORWARDED-FOR"), Some(&b"198.51.100.1"[..]));
        assert_eq!(header(&r, "content-length"), Some(&b"4"[..]));
        assert_eq!(header(&r, "content-type"), Some(&b"text/plain"[..]));
        assert_eq!(r.remote, Some("203.0.113.7:51234".parse().unwrap()));
        assert_eq!(r.scheme, None);
    }

    #[test]
    fn defaults_and_empty_cgi_values() {
        let r = ok(&[("CONTENT_LENGTH", ""), ("CONTENT_TYPE", "")]);
        assert_eq!(&*r.head.method, "GET");
        assert_eq!(&*r.head.path, b"/");
        assert_eq!(&*r.head.target, b"/");
        assert_eq!(r.head.framing, Framing::None);
        assert!(r.head.headers.is_empty());
        // An empty packet is a GET of `/`.
        let (r, n) = parse_all_ways(&[0, 0, 0, 0], &ParseOptions::default()).unwrap();
        assert_eq!((n, &*r.head.path), (4, &b"/"[..]));
        let r = ok(&[("PATH_INFO", "/p"), ("QUERY_STRING", "a=b")]);
        assert_eq!(&*r.head.target, b"/p?a=b");
    }

    #[test]
    fn script_name_is_the_mount_point() {
        let r = ok(&[("SCRIPT_NAME", "/app"), ("PATH_INFO", "/x")]);
        assert_eq!(&*r.head.path, b"/app/x");
        assert_eq!(header(&r, "SCRIPT_NAME"), Some(&b"/app"[..]));
    }

    #[test]
    fn scheme_sources_in_order() {
        assert_eq!(ok(&[("UWSGI_SCHEME", "https")]).scheme, Some(Scheme::Https));
        assert_eq!(ok(&[("UWSGI_SCHEME", "http"), ("HTTPS", "on")]).scheme, Some(Scheme::Http));
        assert_eq!(ok(&[("HTTPS", "on")]).scheme, Some(Scheme::Https));
        assert_eq!(ok(&[("HTTPS", "1")]).scheme, Some(Scheme::Https));
        assert_eq!(ok(&[("HTTPS", "off")]).scheme, None);
        assert_eq!(ok(&[("wsgi.url_scheme", "https")]).scheme, Some(Scheme::Https));
        assert_eq!(ok(&[("UWSGI_SCHEME", "gopher")]).scheme, None);
    }

    #[test]
    fn remote_address() {
        assert_eq!(ok(&[("REMOTE_ADDR", "::1"), ("REMOTE_PORT", "9")]).remote, Some("[::1]:9".parse().unwrap()));
        assert_eq!(ok(&[("REMOTE_ADDR", "10.0.0.1")]).remote, Some("10.0.0.1:0".parse().unwrap()));
        assert_eq!(ok(&[("REMOTE_ADDR", "not an ip")]).remote, None);
        assert_eq!(ok(&[("REMOTE_ADDR", "10.0.0.1"), ("REMOTE_PORT", "70000")]).remote, Some("10.0.0.1:0".parse().unwrap()));
    }

    #[test]
    fn connection_close_and_connect() {
        assert!(!ok(&[("HTTP_CONNECTION", "keep-alive, close")]).head.keep_alive);
        assert!(ok(&[("HTTP_CONNECTION", "keep-alive")]).head.keep_alive);
        assert!(!ok(&[("REQUEST_METHOD", "CONNECT")]).head.keep_alive);
    }

    #[test]
    fn hop_fields_dropped() {
        let r = ok(&[("HTTP_CONTENT_LENGTH", "99"), ("HTTP_TRANSFER_ENCODING", "chunked"), ("HTTP_CONTENT_TYPE", "x/y")]);
        assert!(r.head.headers.is_empty());
        assert_eq!(r.head.framing, Framing::None);
    }

    #[test]
    fn modifiers() {
        // modifier1 other than 0 is refused from the first byte; modifier2 is ignored.
        for m in 1..=255u8 {
            assert_eq!(parse_uwsgi_request(&[m], &ParseOptions::default()).unwrap_err(), HttpError::UnsupportedUwsgiModifier);
        }
        assert_eq!(
            parse_all_ways(b"GET / HTTP/1.1\r\n\r\n", &ParseOptions::default()).unwrap_err(),
            HttpError::UnsupportedUwsgiModifier
        );
        let mut p = packet(&[("PATH_INFO", "/m")]);
        p[3] = 7;
        assert_eq!(&*parse_all_ways(&p, &ParseOptions::default()).unwrap().0.head.path, b"/m");
    }

    #[test]
    fn truncated_vars() {
        let o = ParseOptions::default();
        // datasize says 3 bytes: a key size, then a key that runs past the block.
        assert_eq!(parse_all_ways(&[0, 3, 0, 0, 5, 0, b'a'], &o).unwrap_err(), HttpError::InvalidUwsgiPacket);
        // A lone byte where a size should be.
        assert_eq!(parse_all_ways(&[0, 1, 0, 0, 5], &o).unwrap_err(), HttpError::InvalidUwsgiPacket);
        // A key without its value size.
        assert_eq!(parse_all_ways(&[0, 3, 0, 0, 1, 0, b'k'], &o).unwrap_err(), HttpError::InvalidUwsgiPacket);
        // A value that runs past the block.
        assert_eq!(parse_all_ways(&[0, 6, 0, 0, 1, 0, b'k', 2, 0, b'v'], &o).unwrap_err(), HttpError::InvalidUwsgiPacket);
    }

    #[test]
    fn bad_values_refused() {
        assert_eq!(err(&[("REQUEST_METHOD", "get")]), HttpError::InvalidMethod);
        assert_eq!(err(&[("REQUEST_METHOD", "G T")]), HttpError::InvalidMethod);
        assert_eq!(err(&[("REQUEST_METHOD", "")]), HttpError::InvalidMethod);
        assert_eq!(err(&[("PATH_INFO", "/a\r\nX: y")]), HttpError::InvalidTarget);
        assert_eq!(err(&[("PATH_INFO", "/a\0")]), HttpError::InvalidTarget);
        assert_eq!(err(&[("QUERY_STRING", "a b")]), HttpError::InvalidTarget);
        assert_eq!(err(&[("REQUEST_URI", "/\x7f")]), HttpError::InvalidTarget);
        assert_eq!(err(&[("SCRIPT_NAME", "/\n")]), HttpError::InvalidTarget);
        assert_eq!(err(&[("HTTP_X_A", "v\r\nInjected: 1")]), HttpError::InvalidHeaderValue);
        assert_eq!(err(&[("HTTP_X_A", "v\0")]), HttpError::NulByte);
        assert_eq!(err(&[("HTTP_", "v")]), HttpError::InvalidHeaderName);
        assert_eq!(err(&[("HTTP_X:Y", "v")]), HttpError::InvalidHeaderName);
        assert_eq!(err(&[("HTTP_X Y", "v")]), HttpError::InvalidHeaderName);
        assert_eq!(err(&[("CONTENT_TYPE", "a\rb")]), HttpError::InvalidHeaderValue);
        for cl in ["-1", "1.5", " 4", "4 ", "0x10", "+4", "99999999999999999999999"] {
            assert_eq!(err(&[("CONTENT_LENGTH", cl)]), HttpError::InvalidContentLength, "{cl}");
        }
    }

    #[test]
    fn repeats() {
        assert_eq!(err(&[("CONTENT_LENGTH", "1"), ("CONTENT_LENGTH", "1")]), HttpError::DuplicateContentLength);
        assert_eq!(err(&[("REQUEST_METHOD", "GET"), ("REQUEST_METHOD", "POST")]), HttpError::DuplicateField);
        assert_eq!(err(&[("PATH_INFO", "/a"), ("PATH_INFO", "/b")]), HttpError::DuplicateField);
        assert_eq!(err(&[("HTTP_HOST", "a"), ("HTTP_HOST", "b")]), HttpError::DuplicateField);
        // Other repeated fields are kept in order; the environ joins them as for HTTP/1.
        let r = ok(&[("HTTP_X_A", "1"), ("HTTP_X_A", "2")]);
        assert_eq!(r.head.headers.len(), 2);
    }

    #[test]
    fn limits() {
        let o = ParseOptions {
            limit_request_fields: 2,
            limit_request_field_size: 20,
            limit_request_line: 10,
            ..ParseOptions::default()
        };
        assert_eq!(err_with(&[("HTTP_A", "1"), ("HTTP_B", "2"), ("CONTENT_TYPE", "x")], &o), HttpError::TooManyFields);
        // Non-header CGI vars do not count as fields.
        let p = packet(&[("HTTP_A", "1"), ("SERVER_NAME", "s"), ("DOCUMENT_ROOT", "/"), ("HTTP_B", "2")]);
        assert!(parse_all_ways(&p, &o).is_ok());
        assert_eq!(err_with(&[("HTTP_A", "0123456789abcdef")], &o), HttpError::FieldTooLarge);
        assert_eq!(err_with(&[("PATH_INFO", "/0123456789")], &o), HttpError::RequestLineTooLarge);
        assert_eq!(err_with(&[("REQUEST_URI", "/0123456789")], &o), HttpError::RequestLineTooLarge);
        assert_eq!(err_with(&[("PATH_INFO", "/01234"), ("QUERY_STRING", "abcdef")], &o), HttpError::RequestLineTooLarge);
        // Exactly at the limits is fine.
        let p = packet(&[("HTTP_A", "0123456789"), ("PATH_INFO", "/012345678")]);
        assert!(parse_all_ways(&p, &o).is_ok());
    }

    #[test]
    fn pipelined_packets() {
        let mut input = packet(&[("PATH_INFO", "/1")]);
        let first = input.len();
        input.extend(packet(&[("PATH_INFO", "/2")]));
        let Ok(UwsgiParsed::Complete { request, consumed }) = parse_uwsgi_request(&input, &ParseOptions::default()) else {
            panic!("first packet")
        };
        assert_eq!((consumed, &*request.head.path), (first, &b"/1"[..]));
        let Ok(UwsgiParsed::Complete { request, .. }) = parse_uwsgi_request(&input[consumed..], &ParseOptions::default()) else {
            panic!("second packet")
        };
        assert_eq!(&*request.head.path, b"/2");
    }

    #[test]
    fn encode_refuses_oversize() {
        let big = vec![b'a'; 70_000];
        assert!(encode_packet(&[(b"K", &big)]).is_none());
        let half = vec![b'a'; 40_000];
        assert!(encode_packet(&[(b"K", &half), (b"L", &half)]).is_none());
    }
}

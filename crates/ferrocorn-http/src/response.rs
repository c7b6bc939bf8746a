//! Response heads: validating what the application sends and choosing how the body is framed.
//!
//! The application talks WSGI (PEP 3333): it hands over a status string such as `"200 OK"`
//! and a list of header pairs. Everything here works on those bytes and never panics on them:
//! a bad status or header is a [`ResponseError`] the caller logs before answering 500.

use crate::chars::{FIELD_VALUE, is_field_value, is_token, trim_ows};
use crate::{RequestHead, Version};
use std::fmt;

/// Something wrong with the status or headers an application supplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponseError {
    /// The status does not start with a three-digit code followed by a space or the end.
    InvalidStatus,
    /// The status code is below 100 (RFC 9110 section 15: codes are 100..=599, and 3 digits).
    StatusOutOfRange,
    /// The reason phrase contains CR, LF, NUL or another control character.
    InvalidReasonPhrase,
    /// A header name that is not an RFC 9110 token.
    InvalidHeaderName,
    /// A header value containing CR, LF, NUL or another control character (RFC 9110 5.5);
    /// letting CR/LF through would allow response splitting.
    InvalidHeaderValue,
    /// A hop-by-hop header (`Connection`, `Transfer-Encoding`, ...): PEP 3333 forbids
    /// applications to send them. The caller logs this and leaves the header out, as Gunicorn
    /// does; the server writes its own framing and connection headers.
    HopByHopHeader,
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ResponseError::InvalidStatus => "status must start with a 3-digit code and a space, e.g. \"200 OK\"",
            ResponseError::StatusOutOfRange => "status code below 100",
            ResponseError::InvalidReasonPhrase => "control character in the status reason phrase",
            ResponseError::InvalidHeaderName => "response header name is not a token",
            ResponseError::InvalidHeaderValue => "control character (CR, LF, NUL, ...) in response header value",
            ResponseError::HopByHopHeader => "hop-by-hop header from the application (forbidden by PEP 3333)",
        })
    }
}

impl std::error::Error for ResponseError {}

/// How the response body goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body at all (HEAD, 1xx, 204, 304).
    Empty,
    /// The app's `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked` added by the server (HTTP/1.1, no length given).
    Chunked,
    /// Body ends when the connection closes (HTTP/1.0 without a length).
    UntilClose,
}

/// The decision for one response: framing and whether the connection stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsePlan {
    pub framing: BodyFraming,
    pub keep_alive: bool,
}

/// Validates a WSGI status line such as `"200 OK"` and returns the code.
///
/// PEP 3333 asks for `"999 Message here"`; Gunicorn only reads the leading integer, so a bare
/// `"200"` works there and is accepted here too ([`write_head`] then adds the standard reason
/// phrase, since RFC 9112 section 4 requires the space after the code).
pub fn validate_status(status: &[u8]) -> Result<u16, ResponseError> {
    let code = status_code(status).ok_or(ResponseError::InvalidStatus)?;
    match status.get(3) {
        // reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ), RFC 9112 section 4.
        Some(b' ') if !status[4..].iter().all(|&b| FIELD_VALUE[b as usize]) => {
            return Err(ResponseError::InvalidReasonPhrase);
        }
        None | Some(b' ') => {}
        Some(_) => return Err(ResponseError::InvalidStatus),
    }
    if code < 100 {
        return Err(ResponseError::StatusOutOfRange);
    }
    Ok(code)
}

/// The three leading digits of a status, if there are three.
fn status_code(status: &[u8]) -> Option<u16> {
    match status {
        [a, b, c, ..] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// Hop-by-hop fields (RFC 9110 section 7.6.1 and the list PEP 3333 inherits from RFC 2616
/// section 13.5.1), which only the server may send.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    const HOP: &[&[u8]] = &[
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    ];
    HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// Validates one response header field from the application (no CR/LF/NUL, token name, ...).
pub fn validate_header(name: &[u8], value: &[u8]) -> Result<(), ResponseError> {
    if !is_token(name) {
        return Err(ResponseError::InvalidHeaderName);
    }
    if !is_field_value(value) {
        return Err(ResponseError::InvalidHeaderValue);
    }
    if is_hop_by_hop(name) {
        return Err(ResponseError::HopByHopHeader);
    }
    Ok(())
}

/// RFC 9110 section 6.4.1: HEAD, 1xx, 204 and 304 responses never have content.
fn bodyless(req: &RequestHead, status: u16) -> bool {
    &*req.method == "HEAD" || (100..200).contains(&status) || status == 204 || status == 304
}

/// Chooses framing and keep-alive for a response. `server_keep_alive` is false when the server
/// wants to close anyway (shutting down, max_requests reached, keepalive disabled).
///
/// `headers` may still include hop-by-hop fields: a `Connection: close` from the app is
/// honoured (the connection closes) even though the field itself is not forwarded.
pub fn plan(req: &RequestHead, status: u16, headers: &[(&[u8], &[u8])], server_keep_alive: bool) -> ResponsePlan {
    let mut length = None;
    let mut bad_length = false;
    let mut app_close = false;
    for &(name, value) in headers {
        if name.eq_ignore_ascii_case(b"content-length") {
            match parse_length(value) {
                Some(n) if length.is_none_or(|l| l == n) => length = Some(n),
                // Unparsable or conflicting: we cannot trust it, so frame as if absent.
                _ => bad_length = true,
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            app_close |= value.split(|&b| b == b',').any(|t| trim_ows(t).eq_ignore_ascii_case(b"close"));
        }
    }
    if bad_length {
        length = None;
    }
    // A 1xx as the final answer (the app's own `101 Switching Protocols`, or any other) ends
    // HTTP/1 on this connection: after a 101 the bytes are another protocol's, and a client
    // that reads any other 1xx as interim would take the next response for this request's.
    // The request side of the same rule (CONNECT) is in the parsed head's `keep_alive`.
    let informational = (100..200).contains(&status);
    let mut keep_alive = req.keep_alive && server_keep_alive && !app_close && !informational;
    let framing = if bodyless(req, status) {
        BodyFraming::Empty
    } else if let Some(n) = length {
        BodyFraming::Length(n)
    } else if req.version == Version::Http11 {
        // RFC 9112 section 6.1: chunked lets the connection persist without a length.
        BodyFraming::Chunked
    } else {
        // RFC 9112 section 6.3 item 8: an HTTP/1.0 body without length ends at close.
        keep_alive = false;
        BodyFraming::UntilClose
    };
    ResponsePlan { framing, keep_alive }
}

fn parse_length(v: &[u8]) -> Option<u64> {
    let v = trim_ows(v);
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter().try_fold(0u64, |n, &b| n.checked_mul(10)?.checked_add(u64::from(b - b'0')))
}

/// Appends a complete response head (status line, app headers, `Date`, `Server`, framing
/// headers, `Connection` when needed, blank line) to `out`.
///
/// The status line carries the *request's* version, as Gunicorn does (`HTTP/1.0 200 OK` to
/// an HTTP/1.0 client). RFC 9110 section 2.5 would rather have us send our own highest version
/// (1.1); we follow Gunicorn because 1.0 clients and tests written against it expect this.
///
/// App headers are written as given, except hop-by-hop fields (PEP 3333; the server owns
/// them), and `Content-Length` when the plan does not use it (it was invalid, or the status
/// forbids it: RFC 9110 section 8.6 for 1xx and 204).
pub fn write_head(
    out: &mut Vec<u8>,
    version: Version,
    status: &[u8],
    headers: &[(&[u8], &[u8])],
    plan: &ResponsePlan,
    date: &[u8],
    server: &[u8],
) {
    let code = status_code(status).unwrap_or(0);
    out.reserve(128 + headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>());
    out.extend_from_slice(match version {
        Version::Http10 => b"HTTP/1.0 ",
        Version::Http11 => b"HTTP/1.1 ",
    });
    out.extend_from_slice(status);
    if status.len() == 3 {
        out.push(b' ');
        out.extend_from_slice(reason_phrase(code).as_bytes());
    }
    out.extend_from_slice(b"\r\n");

    let keep_cl = match plan.framing {
        BodyFraming::Length(_) => true,
        BodyFraming::Empty => !((100..200).contains(&code) || code == 204),
        BodyFraming::Chunked | BodyFraming::UntilClose => false,
    };
    let (mut has_date, mut has_server) = (false, false);
    for &(name, value) in headers {
        if is_hop_by_hop(name) || (!keep_cl && name.eq_ignore_ascii_case(b"content-length")) {
            continue;
        }
        has_date |= name.eq_ignore_ascii_case(b"date");
        has_server |= name.eq_ignore_ascii_case(b"server");
        push_field(out, name, value);
    }
    if !has_date && !date.is_empty() {
        push_field(out, b"Date", date);
    }
    if !has_server && !server.is_empty() {
        push_field(out, b"Server", server);
    }
    if plan.framing == BodyFraming::Chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    match (plan.keep_alive, version) {
        (false, _) => out.extend_from_slice(b"Connection: close\r\n"),
        // HTTP/1.0 persistence must be announced (RFC 9112 section 9.3, appendix C.2.2);
        // HTTP/1.1 persists by default.
        (true, Version::Http10) => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        (true, Version::Http11) => {}
    }
    out.extend_from_slice(b"\r\n");
}

fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends one chunk in chunked encoding (`size CRLF data CRLF`); an empty `data` writes nothing.
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        // An empty chunk would be the last-chunk and end the body early.
        return;
    }
    let mut hex = [0u8; 16];
    let mut n = data.len();
    let mut i = hex.len();
    while n > 0 || i == hex.len() {
        i -= 1;
        hex[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
    }
    out.reserve(hex.len() - i + data.len() + 4);
    out.extend_from_slice(&hex[i..]);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// The last chunk of a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// A complete minimal error response (`Connection: close`) for a refused request.
///
/// Control characters in `reason` are replaced by spaces so a caller can never split the
/// response with it.
pub fn error_response(status: u16, reason: &str, body: &str) -> Vec<u8> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let reason: String = reason.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let mut out = Vec::with_capacity(160 + reason.len() + body.len());
    out.extend_from_slice(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes());
    out.extend_from_slice(b"Connection: close\r\nContent-Type: text/plain; charset=utf-8\r\n");
    push_field(&mut out, b"Date", &http_date(now));
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body.as_bytes());
    out
}

/// Formats `unix_secs` as an IMF-fixdate (RFC 9110 section 5.6.7), e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`. Times after year 9999 are clamped to its last second.
pub fn http_date(unix_secs: u64) -> [u8; 29] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    let secs = unix_secs.min(253_402_300_799);
    let days = secs / 86_400;
    let sod = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian, 400-year eras of 146097
    // days, years counted from March so the leap day is last).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);

    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    let two = |out: &mut [u8; 29], at: usize, v: u64| {
        out[at] = b'0' + (v / 10) as u8;
        out[at + 1] = b'0' + (v % 10) as u8;
    };
    two(&mut out, 5, day);
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    two(&mut out, 12, year / 100);
    two(&mut out, 14, year % 100);
    two(&mut out, 17, sod / 3600);
    two(&mut out, 20, sod / 60 % 60);
    two(&mut out, 23, sod % 60);
    out
}

/// The standard reason phrase for a status code (RFC 9110 section 15 plus widely used
/// extensions); empty for codes without one, which RFC 9112 section 4 allows.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ParseOptions, Parsed, parse_request_head};

    fn req(raw: &[u8]) -> RequestHead {
        match parse_request_head(raw, &ParseOptions::default()) {
            Ok(Parsed::Complete { head, .. }) => head,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn status_validation() {
        assert_eq!(validate_status(b"200 OK"), Ok(200));
        assert_eq!(validate_status(b"200"), Ok(200));
        assert_eq!(validate_status(b"599 Custom \xe9"), Ok(599));
        assert_eq!(validate_status(b"099 Low"), Err(ResponseError::StatusOutOfRange));
        assert_eq!(validate_status(b"2000 OK"), Err(ResponseError::InvalidStatus));
        assert_eq!(validate_status(b"20 OK"), Err(ResponseError::InvalidStatus));
        assert_eq!(validate_status(b"OK 200"), Err(ResponseError::InvalidStatus));
        assert_eq!(validate_status(b""), Err(ResponseError::InvalidStatus));
        assert_eq!(validate_status(b"200 OK\r\nX: y"), Err(ResponseError::InvalidReasonPhrase));
        assert_eq!(validate_status(b"200 O\0K"), Err(ResponseError::InvalidReasonPhrase));
    }

    #[test]
    fn header_validation() {
        assert_eq!(validate_header(b"X-Ok", b"a\tb c"), Ok(()));
        assert_eq!(validate_header(b"Bad Name", b"x"), Err(ResponseError::InvalidHeaderName));
        assert_eq!(validate_header(b"X", b"a\r\nSet-Cookie: x"), Err(ResponseError::InvalidHeaderValue));
        assert_eq!(validate_header(b"X", b"a\0"), Err(ResponseError::InvalidHeaderValue));
        assert_eq!(validate_header(b"Transfer-Encoding", b"chunked"), Err(ResponseError::HopByHopHeader));
        assert_eq!(validate_header(b"connection", b"close"), Err(ResponseError::HopByHopHeader));
    }

    #[test]
    fn plans() {
        let get11 = req(b"GET / HTTP/1.1\r\n\r\n");
        let get10 = req(b"GET / HTTP/1.0\r\n\r\n");
        let get10ka = req(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let head = req(b"HEAD / HTTP/1.1\r\n\r\n");
        let close = req(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        let cl: &[(&[u8], &[u8])] = &[(b"Content-Length", b"5")];
        let p = |r, s, h, k| plan(r, s, h, k);
        assert_eq!(p(&get11, 200, &[], true), ResponsePlan { framing: BodyFraming::Chunked, keep_alive: true });
        assert_eq!(p(&get11, 200, cl, true), ResponsePlan { framing: BodyFraming::Length(5), keep_alive: true });
        assert_eq!(p(&get11, 200, cl, false), ResponsePlan { framing: BodyFraming::Length(5), keep_alive: false });
        assert_eq!(p(&get10, 200, &[], true), ResponsePlan { framing: BodyFraming::UntilClose, keep_alive: false });
        assert_eq!(p(&get10, 200, cl, true), ResponsePlan { framing: BodyFraming::Length(5), keep_alive: false });
        assert_eq!(p(&get10ka, 200, cl, true), ResponsePlan { framing: BodyFraming::Length(5), keep_alive: true });
        assert_eq!(p(&get10ka, 200, &[], true), ResponsePlan { framing: BodyFraming::UntilClose, keep_alive: false });
        assert_eq!(p(&head, 200, &[], true), ResponsePlan { framing: BodyFraming::Empty, keep_alive: true });
        for s in [101, 204, 304] {
            assert_eq!(p(&get11, s, &[], true).framing, BodyFraming::Empty);
        }
        assert!(!p(&close, 200, cl, true).keep_alive);
        // Nothing after a final 1xx (101 above all) or a CONNECT is HTTP/1 any more.
        for s in [100, 101, 103, 199] {
            assert_eq!(p(&get11, s, &[], true), ResponsePlan { framing: BodyFraming::Empty, keep_alive: false }, "{s}");
            assert!(!p(&get10ka, s, cl, true).keep_alive, "{s}");
        }
        let upgrade = req(b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
        assert!(!p(&upgrade, 101, &[(b"Upgrade", b"websocket")], true).keep_alive);
        assert!(p(&upgrade, 200, cl, true).keep_alive);
        let connect = req(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
        for s in [200, 204, 400, 407, 500] {
            assert!(!p(&connect, s, cl, true).keep_alive, "{s}");
            assert!(!p(&connect, s, &[], true).keep_alive, "{s}");
        }
        let app_close: &[(&[u8], &[u8])] = &[(b"Connection", b"Close")];
        assert!(!p(&get11, 200, app_close, true).keep_alive);
        let bad: &[(&[u8], &[u8])] = &[(b"Content-Length", b"5"), (b"content-length", b"6")];
        assert_eq!(p(&get11, 200, bad, true).framing, BodyFraming::Chunked);
        let bad: &[(&[u8], &[u8])] = &[(b"Content-Length", b"-1")];
        assert_eq!(p(&get11, 200, bad, true).framing, BodyFraming::Chunked);
    }

    #[test]
    fn heads() {
        let date = http_date(784_111_777);
        let get11 = req(b"GET / HTTP/1.1\r\n\r\n");
        let hs: &[(&[u8], &[u8])] = &[(b"Content-Type", b"text/plain"), (b"Connection", b"x"), (b"Content-Length", b"zz")];
        let pl = plan(&get11, 200, hs, true);
        let mut out = Vec::new();
        write_head(&mut out, Version::Http11, b"200", hs, &pl, &date, b"ferrocorn");
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
              Server: ferrocorn\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        let get10 = req(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let hs: &[(&[u8], &[u8])] = &[(b"Content-Length", b"2"), (b"server", b"app"), (b"Date", b"d")];
        let pl = plan(&get10, 200, hs, true);
        out.clear();
        write_head(&mut out, Version::Http10, b"201 Made", hs, &pl, &date, b"ferrocorn");
        assert_eq!(out, b"HTTP/1.0 201 Made\r\nContent-Length: 2\r\nserver: app\r\nDate: d\r\nConnection: keep-alive\r\n\r\n");
        let pl = plan(&get11, 204, hs, false);
        out.clear();
        write_head(&mut out, Version::Http11, b"204 No Content", hs, &pl, b"", b"");
        assert_eq!(out, b"HTTP/1.1 204 No Content\r\nserver: app\r\nDate: d\r\nConnection: close\r\n\r\n");
    }

    #[test]
    fn chunks_and_errors() {
        let mut out = Vec::new();
        write_chunk(&mut out, b"");
        write_chunk(&mut out, b"hello");
        write_chunk(&mut out, &[b'x'; 300]);
        out.extend_from_slice(LAST_CHUNK);
        let mut dec = crate::ChunkedDecoder::new();
        let mut body = Vec::new();
        assert_eq!(dec.decode(&out, &mut body), Ok(out.len()));
        assert!(dec.is_done());
        assert_eq!(body.len(), 305);
        assert!(out.starts_with(b"5\r\nhello\r\n12c\r\n"));

        let resp = error_response(400, "Bad\r\nRequest", "nope\n");
        let text = String::from_utf8(resp).unwrap();
        assert!(text.starts_with("HTTP/1.1 400 Bad  Request\r\nConnection: close\r\n"));
        assert!(text.ends_with("Content-Length: 5\r\n\r\nnope\n"));
    }

    #[test]
    fn dates() {
        assert_eq!(&http_date(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&http_date(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&http_date(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(&http_date(1_709_251_199), b"Thu, 29 Feb 2024 23:59:59 GMT");
        assert_eq!(&http_date(4_102_444_800), b"Fri, 01 Jan 2100 00:00:00 GMT");
        assert_eq!(&http_date(u64::MAX), b"Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(reason_phrase(404), "Not Found");
        assert_eq!(reason_phrase(299), "");
    }
}

//! Request heads: request line and header fields, with Gunicorn's limits and strictness knobs.

use crate::HttpError;
use crate::chars::{TCHAR, is_field_value, is_token, trim_ows};

/// HTTP version of a request. `HTTP/1.x` with x > 1 is read as 1.1 (RFC 9112 section 2.3);
/// other majors are refused with 505.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

/// What to do with header names containing `_` (Gunicorn's `header_map` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderMap {
    /// Silently drop the field (Gunicorn's default).
    #[default]
    Drop,
    /// Reject the request with 400.
    Refuse,
    /// Keep the field (ambiguous with the `-` spelling once mapped to `HTTP_*`).
    Dangerous,
}

/// Parser settings, taken from the config by the caller.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// `limit_request_line`: longest request line, without its CRLF. 0 means unlimited, which
    /// is still capped at 64 KiB (and the whole head at 1 MiB) so a client cannot make us
    /// buffer forever. Unlike Gunicorn, values above 8190 are not clamped down to 8190.
    pub limit_request_line: usize,
    /// `limit_request_fields`: most field lines (obs-fold continuations not counted; fields
    /// dropped by `header_map` counted). 0 or more than 32768 means 32768, as in Gunicorn.
    pub limit_request_fields: usize,
    /// `limit_request_field_size`: longest field, counting its CRLF and any folded
    /// continuation lines, as Gunicorn counts it. 0 means Gunicorn 27's default of 8190 (not
    /// unlimited: the corpus case `limit_header_default_01` expects that).
    pub limit_request_field_size: usize,
    /// Accept obs-fold continuation lines (RFC 9112 section 5.2), joining them with one space;
    /// refused by default.
    pub permit_obsolete_folding: bool,
    /// Accept and remove whitespace between a field name and its colon, which RFC 9112
    /// section 5.1 says must be refused (the default).
    pub strip_header_spaces: bool,
    /// Accept any token as a method, not only 3 to 20 characters without lowercase or `#`.
    pub permit_unconventional_http_method: bool,
    /// Accept `HTTP/0.x` and `HTTP/2.0` to `HTTP/9.x` in the request line (Gunicorn's
    /// `permit_unconventional_http_version`), refused with 505 by default. Such a request is
    /// served with the semantics of the nearest version we speak: 0.x as 1.0, 2 and up as 1.1.
    pub permit_unconventional_http_version: bool,
    /// Uppercase the method.
    pub casefold_http_method: bool,
    /// What to do with field names containing `_`.
    pub header_map: HeaderMap,
    /// Field names containing `_` that are kept whatever `header_map` says (compared without
    /// regard to case; `*` keeps all). Gunicorn's `forwarder_headers`: the caller fills this
    /// only for peers in `forwarded_allow_ips`, so a trusted proxy can pass `SCRIPT_NAME`.
    pub forwarder_headers: Vec<Box<[u8]>>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            limit_request_line: 4094,
            limit_request_fields: 100,
            limit_request_field_size: 8190,
            permit_obsolete_folding: false,
            strip_header_spaces: false,
            permit_unconventional_http_method: false,
            permit_unconventional_http_version: false,
            casefold_http_method: false,
            header_map: HeaderMap::Drop,
            forwarder_headers: Vec::new(),
        }
    }
}

/// One header field as received (name case preserved, value with surrounding whitespace removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: Box<[u8]>,
    pub value: Box<[u8]>,
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (no Content-Length, no Transfer-Encoding).
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked` (last coding).
    Chunked,
}

/// A parsed request head. Owned, so the read buffer can be reused while the app runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The method as sent (after casefolding when that option is on).
    pub method: Box<str>,
    /// The request-target exactly as sent (`RAW_URI`).
    pub target: Box<[u8]>,
    /// Percent-decoded path component of the target (source of `PATH_INFO`).
    pub path: Box<[u8]>,
    /// Query string without the `?` and without any fragment.
    pub query: Box<[u8]>,
    /// Fragment without the `#` (never given to the app, kept for completeness).
    pub fragment: Box<[u8]>,
    pub version: Version,
    /// Fields in the order received; names with `_` already handled per `header_map`.
    pub headers: Vec<Header>,
    pub framing: Framing,
    /// Whether the client allows the connection to stay open after this request
    /// (version default, then `Connection: close` / `keep-alive`).
    pub keep_alive: bool,
    /// `Expect: 100-continue` was sent.
    pub expect_continue: bool,
}

/// Result of feeding bytes to [`parse_request_head`].
#[derive(Debug)]
pub enum Parsed {
    /// A whole head; `consumed` bytes of the buffer belong to it.
    Complete { head: RequestHead, consumed: usize },
    /// More bytes are needed. Limits have been checked on what is there so far, so a caller
    /// that keeps reading on `Partial` never buffers more than the limits allow.
    Partial,
}

/// Gunicorn clamps `limit_request_fields` to this (its `MAX_HEADERS`), and uses it for 0.
const MAX_FIELDS: usize = 32768;
/// Gunicorn 27 treats `limit_request_field_size = 0` as its default field size rather than
/// "unlimited" (the corpus case `limit_header_default_01` refuses an 8 KiB field with 0).
const DEFAULT_FIELD_SIZE: usize = 8190;
/// "Unlimited" request line (`limit_request_line = 0`) still stops here, so a client can
/// never make us buffer without end.
const UNLIMITED_LINE_CAP: usize = 64 * 1024;
/// When any limit is 0, the whole head is also capped at this size.
const UNLIMITED_HEAD_CAP: usize = 1024 * 1024;

/// The effective limits after Gunicorn's mapping of 0 and out-of-range values.
pub(crate) struct Limits {
    pub(crate) line: usize,
    pub(crate) fields: usize,
    pub(crate) field_size: usize,
    head: usize,
}

impl Limits {
    pub(crate) fn new(o: &ParseOptions) -> Self {
        let any_zero = o.limit_request_line == 0 || o.limit_request_fields == 0 || o.limit_request_field_size == 0;
        Limits {
            line: if o.limit_request_line == 0 { UNLIMITED_LINE_CAP } else { o.limit_request_line },
            fields: if o.limit_request_fields == 0 || o.limit_request_fields > MAX_FIELDS {
                MAX_FIELDS
            } else {
                o.limit_request_fields
            },
            field_size: if o.limit_request_field_size == 0 { DEFAULT_FIELD_SIZE } else { o.limit_request_field_size },
            head: if any_zero { UNLIMITED_HEAD_CAP } else { usize::MAX },
        }
    }
}

/// Offsets of a complete head inside the buffer, found without allocating.
struct Frame {
    /// Request line, without its CRLF.
    line: (usize, usize),
    /// Field lines, each with its CRLF, without the final empty line.
    fields: (usize, usize),
    /// One past the final LF.
    end: usize,
    /// Number of fields (not counting obs-fold continuation lines).
    count: usize,
}

#[inline]
fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Finds the end of the head and enforces every limit and the CRLF rule on the bytes seen so
/// far, so that `Ok(None)` ("read more") is only ever returned for a prefix that could still
/// become a head within the limits.
///
/// Why not httparse here: Gunicorn's rules differ from httparse's on exactly the points this
/// pass decides. httparse accepts bare LF line endings (Gunicorn and RFC 9112 section 2.2 let
/// us refuse them), skips any number of leading empty lines (Gunicorn tolerates one), cannot
/// parse obs-fold or whitespace before the colon in requests (Gunicorn has settings for
/// both), and has no notion of per-line limits on a partial head. Wrapping it would mean
/// scanning every line twice, so the head is scanned once here with `memchr`.
fn frame(buf: &[u8], opts: &ParseOptions, lim: &Limits) -> Result<Option<Frame>, HttpError> {
    // RFC 9112 section 2.2: a server SHOULD ignore at least one empty line before the
    // request line. Gunicorn ignores exactly one and refuses a second.
    let start = match buf {
        [] | [b'\r'] => return Ok(None),
        [b'\n', ..] => return Err(HttpError::BareLf),
        [b'\r', b'\n', rest @ ..] => match rest {
            [] | [b'\r'] => return Ok(None),
            [b'\r', b'\n', ..] | [b'\n', ..] => return Err(HttpError::UnexpectedEmptyLine),
            _ => 2,
        },
        _ => 0,
    };

    let rl = &buf[start..];
    let Some(lf) = memchr::memchr(b'\n', rl) else {
        // The CR of the line may already be here, hence the +1.
        if rl.len() > lim.line.saturating_add(1) {
            return Err(HttpError::RequestLineTooLarge);
        }
        return Ok(None);
    };
    if lf == 0 || rl[lf - 1] != b'\r' {
        return Err(HttpError::BareLf);
    }
    if lf - 1 > lim.line {
        return Err(HttpError::RequestLineTooLarge);
    }
    let line = (start, start + lf - 1);
    let fields_start = start + lf + 1;

    let mut pos = fields_start;
    let mut count = 0usize;
    // Size of the current field so far, counting CRLF per line like Gunicorn does.
    let mut field_len = 0usize;
    loop {
        let rest = &buf[pos..];
        let (content, complete) = match memchr::memchr(b'\n', rest) {
            Some(i) => {
                if i == 0 || rest[i - 1] != b'\r' {
                    return Err(HttpError::BareLf);
                }
                if i == 1 {
                    if pos + 2 > lim.head {
                        return Err(HttpError::FieldTooLarge);
                    }
                    return Ok(Some(Frame { line, fields: (fields_start, pos), end: pos + 2, count }));
                }
                (i - 1, true)
            }
            None => {
                if buf.len() > lim.head {
                    return Err(HttpError::FieldTooLarge);
                }
                if rest.is_empty() || rest == b"\r" {
                    return Ok(None);
                }
                // The final size is at least what is here plus the LF.
                (rest.len() - 1, false)
            }
        };
        let cost = content + 2;
        if is_ws(rest[0]) {
            // obs-fold (RFC 9112 section 5.2): a continuation of the previous field.
            if count == 0 {
                // RFC 9112 section 2.2: whitespace before the first field must be refused.
                return Err(HttpError::InvalidHeaderLine);
            }
            if !opts.permit_obsolete_folding {
                return Err(HttpError::ObsoleteFolding);
            }
            field_len = field_len.saturating_add(cost);
        } else {
            count += 1;
            if count > lim.fields {
                return Err(HttpError::TooManyFields);
            }
            field_len = cost;
        }
        if field_len > lim.field_size {
            return Err(HttpError::FieldTooLarge);
        }
        if !complete {
            return Ok(None);
        }
        pos += content + 2;
    }
}

/// Parses a request head from the start of `buf`.
///
/// Returns [`Parsed::Partial`] when more bytes are needed; every limit in `opts` has then
/// been checked against the bytes present, so a caller that keeps reading on `Partial` never
/// holds more than the limits allow. Bytes after `consumed` (a body, or the next pipelined
/// request) are not looked at.
pub fn parse_request_head(buf: &[u8], opts: &ParseOptions) -> Result<Parsed, HttpError> {
    let lim = Limits::new(opts);
    let Some(fr) = frame(buf, opts, &lim)? else {
        return Ok(Parsed::Partial);
    };
    let mut head = parse_request_line(&buf[fr.line.0..fr.line.1], opts)?;
    head.headers.reserve_exact(fr.count);
    parse_fields(&buf[fr.fields.0..fr.fields.1], opts, &mut head)?;
    Ok(Parsed::Complete { head, consumed: fr.end })
}

/// Request line: `method SP request-target SP HTTP-version` (RFC 9112 section 3). Like
/// Gunicorn, exactly single spaces separate the three parts.
fn parse_request_line(line: &[u8], opts: &ParseOptions) -> Result<RequestHead, HttpError> {
    let sp1 = memchr::memchr(b' ', line).ok_or(HttpError::InvalidRequestLine)?;
    let rest = &line[sp1 + 1..];
    let sp2 = memchr::memchr(b' ', rest).ok_or(HttpError::InvalidRequestLine)?;
    let (method, target, version) = (&line[..sp1], &rest[..sp2], &rest[sp2 + 1..]);

    let method = parse_method(method, opts)?;

    if target.is_empty() {
        return Err(HttpError::InvalidRequestLine);
    }
    let parts = split_target(method.as_bytes(), target)?;
    let version = parse_version(version, opts.permit_unconventional_http_version)?;

    Ok(RequestHead {
        method,
        target: target.into(),
        path: percent_decode(parts.path),
        query: parts.query.into(),
        fragment: parts.fragment.into(),
        version,
        headers: Vec::new(),
        framing: Framing::None,
        keep_alive: version == Version::Http11,
        expect_continue: false,
    })
}

/// Checks a method and applies `casefold_http_method`; shared with the uwsgi parser.
pub(crate) fn parse_method(method: &[u8], opts: &ParseOptions) -> Result<Box<str>, HttpError> {
    // RFC 9110 section 9.1: a method is a token. Gunicorn also refuses, unless
    // `permit_unconventional_http_method` is set, methods with lowercase letters or '#', and
    // methods shorter than 3 or longer than 20 bytes: no registered method looks like that,
    // and such lines are more often garbage or attacks than real requests.
    if !opts.permit_unconventional_http_method
        && (!(3..=20).contains(&method.len()) || method.iter().any(|&b| b.is_ascii_lowercase() || b == b'#'))
    {
        return Err(HttpError::InvalidMethod);
    }
    if !is_token(method) {
        return Err(HttpError::InvalidMethod);
    }
    let method = std::str::from_utf8(method).map_err(|_| HttpError::InvalidMethod)?;
    // Methods are case-sensitive (RFC 9110 section 9.1); folding is Gunicorn's opt-in knob.
    Ok(if opts.casefold_http_method { method.to_ascii_uppercase().into() } else { method.into() })
}

/// `HTTP-version = "HTTP/" DIGIT "." DIGIT` (RFC 9112 section 2.3). The syntax is checked
/// whatever `permit_unconventional` says, as in Gunicorn: the setting admits other numbers,
/// never other spellings (`HTTP/1.10`, `http/1.1`, `HTTP/1`).
fn parse_version(v: &[u8], permit_unconventional: bool) -> Result<Version, HttpError> {
    match *v {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor] if major.is_ascii_digit() && minor.is_ascii_digit() => {
            match (major, minor) {
                (b'1', b'0') => Ok(Version::Http10),
                // RFC 9112 section 2.3: a higher minor version is handled as the highest minor
                // version we implement.
                (b'1', _) => Ok(Version::Http11),
                // No HTTP/0.x request has a version in its request line (HTTP/0.9 had none):
                // read it as the oldest version we speak, which never keeps the connection
                // and has no chunked coding, as Gunicorn treats versions below 1.1.
                (b'0', _) if permit_unconventional => Ok(Version::Http10),
                // An HTTP/2 or later request line in HTTP/1 syntax is HTTP/1 on the wire: it
                // gets HTTP/1.1 semantics and an HTTP/1.1 status line (RFC 9110 section 2.5:
                // the highest version we conform to, not above the client's major).
                _ if permit_unconventional => Ok(Version::Http11),
                _ => Err(HttpError::UnsupportedVersion),
            }
        }
        _ => Err(HttpError::InvalidVersion),
    }
}

/// The pieces of a request-target the application sees.
struct TargetParts<'a> {
    path: &'a [u8],
    query: &'a [u8],
    fragment: &'a [u8],
}

/// Splits `path?query#fragment`; the fragment is cut first, as URL parsers (and so Gunicorn)
/// do, so a `?` after `#` belongs to the fragment.
fn split_path_query(s: &[u8]) -> TargetParts<'_> {
    let (before, fragment) = match memchr::memchr(b'#', s) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &b""[..]),
    };
    let (path, query) = match memchr::memchr(b'?', before) {
        Some(i) => (&before[..i], &before[i + 1..]),
        None => (before, &b""[..]),
    };
    TargetParts { path, query, fragment }
}

/// The scheme of an absolute URI, `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986
/// section 3.1), if `s` starts with one followed by `:`; returns the length of the scheme.
fn scheme_len(s: &[u8]) -> Option<usize> {
    let colon = memchr::memchr(b':', s)?;
    let scheme = &s[..colon];
    let ok = scheme.first().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme.iter().all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    ok.then_some(colon)
}

/// Checks the request-target's form (RFC 9112 section 3.2) and splits it.
fn split_target<'a>(method: &[u8], t: &'a [u8]) -> Result<TargetParts<'a>, HttpError> {
    // Only visible ASCII: RFC 3986 has no raw space, control or non-ASCII byte, and Gunicorn
    // refuses them, so nothing downstream has to guess an encoding.
    // The same pass notes where `?` and `#` are, for origin-form.
    let (mut query_at, mut hash_at) = (None, None);
    for (i, &b) in t.iter().enumerate() {
        match b {
            0x21..=0x7e => {}
            0 => return Err(HttpError::NulByte),
            _ => return Err(HttpError::InvalidTarget),
        }
        if b == b'?' && query_at.is_none() && hash_at.is_none() {
            query_at = Some(i);
        } else if b == b'#' && hash_at.is_none() {
            hash_at = Some(i);
        }
    }
    // origin-form (section 3.2.1); "//x" is a path here, not a network-path reference.
    // The fragment is cut first, so a `?` after `#` belongs to the fragment.
    if t[0] == b'/' {
        let end = hash_at.unwrap_or(t.len());
        let fragment = hash_at.map_or(&b""[..], |h| &t[h + 1..]);
        return Ok(match query_at {
            Some(q) => TargetParts { path: &t[..q], query: &t[q + 1..end], fragment },
            None => TargetParts { path: &t[..end], query: b"", fragment },
        });
    }
    // asterisk-form (section 3.2.4) is only for OPTIONS.
    if t == b"*" {
        return if method == b"OPTIONS" {
            Ok(TargetParts { path: t, query: b"", fragment: b"" })
        } else {
            Err(HttpError::InvalidTarget)
        };
    }
    // authority-form (section 3.2.3) is only for CONNECT: `host:port`.
    if method == b"CONNECT" {
        let colon = memchr::memrchr(b':', t).ok_or(HttpError::InvalidTarget)?;
        let port = &t[colon + 1..];
        if colon == 0 || port.is_empty() || !port.iter().all(u8::is_ascii_digit) {
            return Err(HttpError::InvalidTarget);
        }
        // PATH_INFO for CONNECT is what Gunicorn's URL splitter makes of it: a leading
        // `name:` that looks like a scheme is taken as one ("example.com:443" -> "443").
        let path = match scheme_len(t) {
            Some(n) => &t[n + 1..],
            None => t,
        };
        return Ok(TargetParts { path, query: b"", fragment: b"" });
    }
    // absolute-form (section 3.2.2): `scheme://authority[path][?query][#fragment]`.
    if let Some(n) = scheme_len(t)
        && let Some(after) = t[n + 1..].strip_prefix(b"//")
    {
        let auth_end = after.iter().position(|&b| matches!(b, b'/' | b'?' | b'#')).unwrap_or(after.len());
        let authority = &after[..auth_end];
        // An IP-literal must be bracketed on both sides (RFC 3986 section 3.2.2).
        let open = memchr::memchr(b'[', authority);
        let close = memchr::memchr(b']', authority);
        match (open, close) {
            (None, None) => {}
            (Some(o), Some(c)) if o < c => {}
            _ => return Err(HttpError::InvalidTarget),
        }
        return Ok(split_path_query(&after[auth_end..]));
    }
    Err(HttpError::InvalidTarget)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes (RFC 3986 section 2.1); a `%` not followed by two hex digits is kept
/// as it is, like Python's `unquote` that Gunicorn uses.
fn percent_decode(s: &[u8]) -> Box<[u8]> {
    if memchr::memchr(b'%', s).is_none() {
        return s.into();
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hi = s.get(i + 1).copied().and_then(hex_val);
            let lo = s.get(i + 2).copied().and_then(hex_val);
            if let (Some(h), Some(l)) = (hi, lo) {
                out.push((h << 4) | l);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out.into()
}

/// Field lines of a framed head (every line ends in CRLF), without their CRLF.
struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let lf = memchr::memchr(b'\n', self.rest)?;
        let line = &self.rest[..lf.saturating_sub(1)];
        self.rest = &self.rest[lf + 1..];
        Some(line)
    }
}

/// What the framing-related fields said, gathered while walking the field lines.
#[derive(Default)]
struct FieldFacts {
    content_length: Option<u64>,
    /// Any `Transfer-Encoding` field was present.
    transfer_encoding: bool,
    chunked: bool,
    /// A coding (gzip, ...) the app will see undecoded; Gunicorn closes after such a request.
    other_coding: bool,
    host: bool,
    content_type: bool,
    close: bool,
    keep_alive: bool,
}

/// Walks the field lines (each ending in CRLF; `frame` has checked CRLF, limits and
/// obs-fold permission) and fills `head.headers`, `framing`, `keep_alive`, `expect_continue`.
fn parse_fields(block: &[u8], opts: &ParseOptions, head: &mut RequestHead) -> Result<(), HttpError> {
    let mut facts = FieldFacts::default();
    let mut lines = Lines { rest: block }.peekable();

    while let Some(line) = lines.next() {
        // RFC 9112 section 5: field-line = field-name ":" OWS field-value OWS.
        // One pass finds the end of the name, checks the token rule and looks for `_` (for
        // header_map, below); this is the same as cutting at the first ':' and checking the
        // name, since ':' is not a token character.
        let mut underscore = false;
        let mut end = 0;
        while let Some(&b) = line.get(end) {
            if !TCHAR[b as usize] {
                break;
            }
            underscore |= b == b'_';
            end += 1;
        }
        let name = &line[..end];
        let mut colon = end;
        // RFC 9112 section 5.1: no whitespace is allowed between name and colon, and a
        // server MUST refuse it; Gunicorn's `strip_header_spaces` removes it instead.
        if opts.strip_header_spaces {
            while line.get(colon).is_some_and(|&b| is_ws(b)) {
                colon += 1;
            }
        }
        match line.get(colon) {
            Some(b':') if end > 0 => {}
            _ if memchr::memchr(b':', line).is_none_or(|c| c == 0) => return Err(HttpError::InvalidHeaderLine),
            _ if line[..colon].contains(&0) || line.get(colon) == Some(&0) => return Err(HttpError::NulByte),
            _ => return Err(HttpError::InvalidHeaderName),
        }
        let first = trim_ows(&line[colon + 1..]);
        let value: Box<[u8]> = if lines.peek().is_some_and(|l| l.first().is_some_and(|&b| is_ws(b))) {
            // RFC 9112 section 5.2: replace each obs-fold with a single space.
            let mut v = first.to_vec();
            while let Some(cont) = lines.next_if(|l| l.first().is_some_and(|&b| is_ws(b))) {
                let piece = trim_ows(cont);
                if !v.is_empty() && !piece.is_empty() {
                    v.push(b' ');
                }
                v.extend_from_slice(piece);
            }
            v.into()
        } else {
            first.into()
        };
        if !is_field_value(&value) {
            return Err(if value.contains(&0) { HttpError::NulByte } else { HttpError::InvalidHeaderValue });
        }

        // A name with `_` would collide with the `-` spelling once mapped to `HTTP_*` in the
        // WSGI environ (CVE-2015-0219 class of header spoofing); Gunicorn drops it by default.
        let forwarded = underscore && opts.forwarder_headers.iter().any(|f| &**f == b"*" || f.eq_ignore_ascii_case(name));
        if underscore && !forwarded {
            match opts.header_map {
                HeaderMap::Drop => continue,
                HeaderMap::Refuse => return Err(HttpError::UnderscoreInHeaderName),
                HeaderMap::Dangerous => {}
            }
        } else if !underscore {
            note_field(name, &value, head.version, &mut facts, &mut head.expect_continue)?;
        }
        head.headers.push(Header { name: name.into(), value });
    }

    // RFC 9112 section 6.1 and 6.3.
    if facts.transfer_encoding {
        if facts.content_length.is_some() {
            return Err(HttpError::ContentLengthWithTransferEncoding);
        }
        // Final coding not chunked: the length cannot be determined; a server MUST respond
        // 400 (section 6.3 item 4). HTTP/1.0 has no chunked coding: Gunicorn refuses it.
        if !facts.chunked || head.version == Version::Http10 {
            return Err(HttpError::InvalidTransferEncoding);
        }
        head.framing = Framing::Chunked;
    } else if let Some(n) = facts.content_length {
        head.framing = Framing::Length(n);
    }

    // RFC 9112 section 9.3: 1.1 defaults to persistent, 1.0 only with `keep-alive`.
    head.keep_alive = if facts.close || facts.other_coding || is_connect(&head.method) {
        false
    } else {
        head.version == Version::Http11 || facts.keep_alive
    };
    Ok(())
}

/// Records what one (non-underscore) field means for framing and connection handling.
fn note_field(
    name: &[u8],
    value: &[u8],
    version: Version,
    facts: &mut FieldFacts,
    expect_continue: &mut bool,
) -> Result<(), HttpError> {
    // Dispatch on length first: most fields are none of these and leave after one compare.
    match name.len() {
        14 if name.eq_ignore_ascii_case(b"content-length") => {
            // RFC 9112 section 6.3: a list or repeated field is a smuggling vector; Gunicorn
            // refuses any second Content-Length, even with the same value.
            if facts.content_length.is_some() {
                return Err(HttpError::DuplicateContentLength);
            }
            facts.content_length = Some(parse_content_length(value)?);
        }
        17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
            facts.transfer_encoding = true;
            for coding in value.split(|&b| b == b',') {
                let coding = trim_ows(coding);
                if coding.is_empty() {
                    // RFC 9110 section 5.6.1 lets a recipient ignore empty list elements, but
                    // a proxy that does not (`,chunked` as an unknown coding, or an empty
                    // field line as "no Transfer-Encoding") frames the body differently:
                    // refuse, as Gunicorn does, for every spelling of an empty member.
                    return Err(HttpError::InvalidTransferEncoding);
                }
                // Chunked must be the final coding and applied once (section 6.1): nothing
                // may follow it.
                if facts.chunked {
                    return Err(HttpError::InvalidTransferEncoding);
                }
                if coding.eq_ignore_ascii_case(b"chunked") {
                    facts.chunked = true;
                } else if coding.eq_ignore_ascii_case(b"identity") {
                    // Not a registered coding any more, but harmless; Gunicorn accepts it.
                } else if [&b"gzip"[..], b"x-gzip", b"deflate", b"compress", b"x-compress"]
                    .iter()
                    .any(|c| coding.eq_ignore_ascii_case(c))
                {
                    facts.other_coding = true;
                } else {
                    return Err(HttpError::UnsupportedTransferCoding);
                }
            }
        }
        // RFC 9112 section 3.2: more than one Host field -> 400.
        4 if name.eq_ignore_ascii_case(b"host") => once(&mut facts.host)?,
        // Singleton field (RFC 9110 section 8.3); Gunicorn 27 refuses a repeat.
        12 if name.eq_ignore_ascii_case(b"content-type") => once(&mut facts.content_type)?,
        10 if name.eq_ignore_ascii_case(b"connection") => {
            for opt in value.split(|&b| b == b',') {
                let opt = trim_ows(opt);
                if opt.eq_ignore_ascii_case(b"close") {
                    facts.close = true;
                } else if opt.eq_ignore_ascii_case(b"keep-alive") {
                    facts.keep_alive = true;
                }
            }
        }
        // RFC 9110 section 10.1.1: 100-continue in an HTTP/1.0 request MUST be ignored.
        6 if name.eq_ignore_ascii_case(b"expect") => {
            *expect_continue |= version == Version::Http11 && value.eq_ignore_ascii_case(b"100-continue");
        }
        _ => {}
    }
    Ok(())
}

/// RFC 9110 section 9.3.6 and RFC 9112 section 6.3: whatever the answer to a CONNECT, the bytes
/// after it are tunnel data (or, once refused, bytes a proxy already took for tunnel data), never
/// another request, so the connection ends after the response, as in Gunicorn. Compared without
/// regard to case: methods are case-sensitive, but a front proxy that folds case would see a
/// tunnel in `connect`, and closing after an unusual method costs nothing.
fn is_connect(method: &str) -> bool {
    method.eq_ignore_ascii_case("CONNECT")
}

/// Marks a field that may appear only once as seen; a second sighting is an error.
fn once(seen: &mut bool) -> Result<(), HttpError> {
    if std::mem::replace(seen, true) { Err(HttpError::DuplicateField) } else { Ok(()) }
}

/// `Content-Length = 1*DIGIT` (RFC 9110 section 8.6): no sign, no list, no spaces inside.
fn parse_content_length(v: &[u8]) -> Result<u64, HttpError> {
    if v.is_empty() {
        return Err(HttpError::InvalidContentLength);
    }
    let mut n: u64 = 0;
    for &b in v {
        if !b.is_ascii_digit() {
            return Err(HttpError::InvalidContentLength);
        }
        n = n.checked_mul(10).and_then(|n| n.checked_add(u64::from(b - b'0'))).ok_or(HttpError::InvalidContentLength)?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `input` whole and checks that every shorter prefix is `Partial` (or fails with
    /// the same error), like a caller reading it one piece at a time.
    fn parse_all_ways(input: &[u8], opts: &ParseOptions) -> Result<(RequestHead, usize), HttpError> {
        let whole = match parse_request_head(input, opts) {
            Ok(Parsed::Complete { head, consumed }) => Ok((head, consumed)),
            Ok(Parsed::Partial) => panic!("whole input is partial: {:?}", String::from_utf8_lossy(input)),
            Err(e) => Err(e),
        };
        let stop = whole.as_ref().map_or(input.len(), |(_, n)| *n);
        for cut in 0..stop {
            match parse_request_head(&input[..cut], opts) {
                Ok(Parsed::Partial) => {}
                Ok(Parsed::Complete { .. }) => panic!("prefix of {cut} bytes complete"),
                Err(e) => assert_eq!(Err(e), whole.as_ref().map(|_| ()).map_err(|e| *e), "prefix {cut}"),
            }
        }
        whole
    }

    fn ok(input: &[u8]) -> (RequestHead, usize) {
        parse_all_ways(input, &ParseOptions::default()).expect("valid request")
    }

    fn err(input: &[u8]) -> HttpError {
        parse_all_ways(input, &ParseOptions::default()).map(|_| ()).expect_err("invalid request")
    }

    #[test]
    fn simple_get() {
        let input = b"GET /a%20b/c?x=1&y=2#frag HTTP/1.1\r\nHost: example.com\r\nX-Empty:\r\n\r\nrest";
        let (h, n) = ok(input);
        assert_eq!(n, input.len() - 4);
        assert_eq!(&*h.method, "GET");
        assert_eq!(&*h.target, b"/a%20b/c?x=1&y=2#frag");
        assert_eq!(&*h.path, b"/a b/c");
        assert_eq!(&*h.query, b"x=1&y=2");
        assert_eq!(&*h.fragment, b"frag");
        assert_eq!(h.version, Version::Http11);
        assert_eq!(h.headers.len(), 2);
        assert_eq!(&*h.headers[1].value, b"");
        assert_eq!(h.framing, Framing::None);
        assert!(h.keep_alive && !h.expect_continue);
    }

    #[test]
    fn keep_alive_and_expect() {
        assert!(!ok(b"GET / HTTP/1.0\r\n\r\n").0.keep_alive);
        assert!(ok(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").0.keep_alive);
        assert!(!ok(b"GET / HTTP/1.1\r\nConnection: keep-alive, close\r\n\r\n").0.keep_alive);
        assert!(ok(b"PUT / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n").0.expect_continue);
        assert!(!ok(b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n").0.expect_continue);
        assert_eq!(ok(b"GET / HTTP/1.2\r\n\r\n").0.version, Version::Http11);
    }

    #[test]
    fn framing() {
        assert_eq!(ok(b"POST / HTTP/1.1\r\nContent-Length: 007\r\n\r\n").0.framing, Framing::Length(7));
        assert_eq!(
            ok(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n").0.framing,
            Framing::Chunked
        );
        assert_eq!(err(b"POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n"), HttpError::InvalidContentLength);
        assert_eq!(err(b"POST / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\n"), HttpError::DuplicateContentLength);
        assert_eq!(err(b"POST / HTTP/1.1\r\nTransfer-Encoding: br, chunked\r\n\r\n"), HttpError::UnsupportedTransferCoding);
        assert_eq!(err(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"), HttpError::InvalidTransferEncoding);
        assert_eq!(err(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), HttpError::InvalidTransferEncoding);
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n"),
            HttpError::ContentLengthWithTransferEncoding
        );
    }

    /// Transfer-Encoding as a list (RFC 9110 section 5.6.1), against Gunicorn's reading: every
    /// empty member is refused, whitespace around members and case do not matter, `chunked`
    /// must come last and once, `identity` is a no-op before it.
    #[test]
    fn transfer_encoding_lists() {
        let te = |fields: &[&str]| {
            let mut raw = b"POST / HTTP/1.1\r\n".to_vec();
            for f in fields {
                raw.extend_from_slice(format!("Transfer-Encoding:{f}\r\n").as_bytes());
            }
            raw.extend_from_slice(b"\r\n");
            parse_all_ways(&raw, &ParseOptions::default()).map(|(h, _)| (h.framing, h.keep_alive))
        };
        let chunked = Ok((Framing::Chunked, true));
        let chunked_close = Ok((Framing::Chunked, false));
        for ok in [
            &[" chunked"][..],
            &["chunked"],
            &[" \tCHUNKED\t "],
            &[" Chunked"],
            &[" identity, chunked"],
            &[" identity ,\tchunked"],
            &[" identity", " chunked"],
        ] {
            assert_eq!(te(ok), chunked, "{ok:?}");
        }
        for ok in [&[" gzip, chunked"][..], &[" gzip", " chunked"], &[" deflate,gzip , chunked"], &[" gzip, gzip, chunked"]] {
            assert_eq!(te(ok), chunked_close, "{ok:?}");
        }
        let invalid = Err(HttpError::InvalidTransferEncoding);
        for bad in [
            // Empty members, in every position and spelling.
            &[" ,chunked"][..],
            &[",chunked"],
            &[" chunked,"],
            &[" chunked, "],
            &[" chunked, ,"],
            &[" , , chunked"],
            &[" gzip,,chunked"],
            &[" gzip, \t ,chunked"],
            &[""],
            &[" "],
            &[" ,"],
            &["", " chunked"],
            &[" chunked", ""],
            &[" \t", " chunked"],
            &[" gzip", " ,chunked"],
            // chunked not last, or twice.
            &[" chunked, gzip"],
            &[" chunked, identity"],
            &[" chunked", " identity"],
            &[" chunked, chunked"],
            &[" chunked", " chunked"],
            &[" chunked", " Chunked"],
            // No chunked at all: the length cannot be known.
            &[" identity"],
            &[" gzip"],
        ] {
            assert_eq!(te(bad), invalid, "{bad:?}");
        }
        for unknown in [&[" br, chunked"][..], &[" chunked;q=1"], &[" chunk"], &[" \"chunked\""], &[" chunked chunked"]] {
            assert_eq!(te(unknown), Err(HttpError::UnsupportedTransferCoding), "{unknown:?}");
        }
    }

    /// After a CONNECT the connection carries tunnel data: never another request.
    #[test]
    fn connect_never_keeps_the_connection() {
        assert!(!ok(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n").0.keep_alive);
        assert!(!ok(b"CONNECT example.com:443 HTTP/1.1\r\nConnection: keep-alive\r\n\r\n").0.keep_alive);
        assert!(!ok(b"CONNECT example.com:443 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").0.keep_alive);
        assert!(!ok(b"CONNECT /x HTTP/1.1\r\n\r\n").0.keep_alive);
        let lax = ParseOptions { permit_unconventional_http_method: true, ..Default::default() };
        assert!(!parse_all_ways(b"connect /x HTTP/1.1\r\n\r\n", &lax).unwrap().0.keep_alive);
        let fold = ParseOptions { permit_unconventional_http_method: true, casefold_http_method: true, ..Default::default() };
        assert!(!parse_all_ways(b"Connect a:1 HTTP/1.1\r\n\r\n", &fold).unwrap().0.keep_alive);
        // Other methods are unaffected.
        assert!(ok(b"CONNECTX /x HTTP/1.1\r\n\r\n").0.keep_alive);
    }

    /// Gunicorn's permit_unconventional_http_version admits other version numbers, never
    /// other spellings.
    #[test]
    fn unconventional_versions() {
        let permit = ParseOptions { permit_unconventional_http_version: true, ..Default::default() };
        let strict = ParseOptions::default();
        let v = |line: &str, o: &ParseOptions| {
            parse_all_ways(format!("GET / {line}\r\n\r\n").as_bytes(), o).map(|(h, _)| (h.version, h.keep_alive))
        };
        for (line, want) in [
            ("HTTP/0.9", (Version::Http10, false)),
            ("HTTP/0.0", (Version::Http10, false)),
            ("HTTP/2.0", (Version::Http11, true)),
            ("HTTP/3.1", (Version::Http11, true)),
            ("HTTP/9.9", (Version::Http11, true)),
        ] {
            assert_eq!(v(line, &permit), Ok(want), "{line}");
            assert_eq!(v(line, &strict), Err(HttpError::UnsupportedVersion), "{line}");
        }
        for line in ["HTTP/1.0", "HTTP/1.1", "HTTP/1.2", "HTTP/1.9"] {
            assert_eq!(v(line, &permit), v(line, &strict), "{line}");
            assert!(v(line, &strict).is_ok());
        }
        for line in ["HTTP/1.10", "HTTP/10.0", "HTTP/1", "http/1.1", "HTTP/2", "HTTP/a.b", "HTTP/1.1 ", "HTTPS/1.1", "HTTP/-1.1"]
        {
            assert_eq!(v(line, &permit), Err(HttpError::InvalidVersion), "{line}");
            assert_eq!(v(line, &strict), Err(HttpError::InvalidVersion), "{line}");
        }
        // HTTP/0.x has no chunked coding, like 1.0; 2.0 and later frame like 1.1.
        let chunked = b"POST / HTTP/0.9\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse_all_ways(chunked, &permit).map(|_| ()), Err(HttpError::InvalidTransferEncoding));
        let chunked = b"POST / HTTP/2.0\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(parse_all_ways(chunked, &permit).unwrap().0.framing, Framing::Chunked);
    }

    #[test]
    fn request_line_errors() {
        assert_eq!(err(b"GET / HTTP/2.0\r\n\r\n"), HttpError::UnsupportedVersion);
        assert_eq!(err(b"GET / HTTP/1.10\r\n\r\n"), HttpError::InvalidVersion);
        assert_eq!(err(b"GET  / HTTP/1.1\r\n\r\n"), HttpError::InvalidRequestLine);
        assert_eq!(err(b"get / HTTP/1.1\r\n\r\n"), HttpError::InvalidMethod);
        assert_eq!(err(b"GET /\x7f HTTP/1.1\r\n\r\n"), HttpError::InvalidTarget);
        assert_eq!(err(b"GET http://[::1/ HTTP/1.1\r\n\r\n"), HttpError::InvalidTarget);
        assert_eq!(err(b"\nGET / HTTP/1.1\r\n\r\n"), HttpError::BareLf);
        assert_eq!(err(b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"), HttpError::UnexpectedEmptyLine);
        assert_eq!(err(b"GET / HTTP/1.1\r\nA: b\n\r\n"), HttpError::BareLf);
        assert_eq!(err(b"GET / HTTP/1.1\r\n lead: x\r\n\r\n"), HttpError::InvalidHeaderLine);
        assert_eq!(err(b"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n"), HttpError::ObsoleteFolding);
        assert_eq!(err(b"GET / HTTP/1.1\r\nA: b\0c\r\n\r\n"), HttpError::NulByte);
        assert_eq!(err(b"GET / HTTP/1.1\r\nA: b\rc\r\n\r\n"), HttpError::InvalidHeaderValue);
    }

    #[test]
    fn options() {
        let fold = ParseOptions { permit_obsolete_folding: true, ..Default::default() };
        let (h, _) = parse_all_ways(b"GET / HTTP/1.1\r\nA:\r\n  one \r\n\ttwo\r\nB: c\r\n\r\n", &fold).unwrap();
        assert_eq!(&*h.headers[0].value, b"one two");
        assert_eq!(&*h.headers[1].name, b"B");
        let strip = ParseOptions { strip_header_spaces: true, ..Default::default() };
        let (h, _) = parse_all_ways(b"GET / HTTP/1.1\r\nContent-Length \t: 2\r\n\r\n", &strip).unwrap();
        assert_eq!((&*h.headers[0].name, h.framing), (&b"Content-Length"[..], Framing::Length(2)));
        let fold_case =
            ParseOptions { permit_unconventional_http_method: true, casefold_http_method: true, ..Default::default() };
        assert_eq!(&*parse_all_ways(b"m / HTTP/1.1\r\n\r\n", &fold_case).unwrap().0.method, "M");
        let refuse = ParseOptions { header_map: HeaderMap::Refuse, ..Default::default() };
        assert_eq!(
            parse_all_ways(b"GET / HTTP/1.1\r\nA_B: c\r\n\r\n", &refuse).map(|_| ()),
            Err(HttpError::UnderscoreInHeaderName)
        );
        assert!(ok(b"GET / HTTP/1.1\r\nA_B: c\r\n\r\n").0.headers.is_empty());
        // forwarder_headers keeps the listed names (any case) even under refuse, and only them.
        let trusted = ParseOptions {
            header_map: HeaderMap::Refuse,
            forwarder_headers: vec![b"SCRIPT_NAME".to_vec().into()],
            ..Default::default()
        };
        let (h, _) = parse_all_ways(b"GET / HTTP/1.1\r\nScript_Name: /app\r\n\r\n", &trusted).unwrap();
        assert_eq!((&*h.headers[0].name, &*h.headers[0].value), (&b"Script_Name"[..], &b"/app"[..]));
        assert_eq!(
            parse_all_ways(b"GET / HTTP/1.1\r\nX_Other: 1\r\n\r\n", &trusted).map(|_| ()),
            Err(HttpError::UnderscoreInHeaderName)
        );
        // A forwarded name never counts as a framing field.
        let any = ParseOptions { forwarder_headers: vec![b"*".to_vec().into()], ..Default::default() };
        let (h, _) = parse_all_ways(b"GET / HTTP/1.1\r\nContent_Length: 5\r\n\r\n", &any).unwrap();
        assert_eq!(h.framing, Framing::None);
    }

    #[test]
    fn limits_hold_on_partial_input() {
        let opts =
            ParseOptions { limit_request_line: 20, limit_request_fields: 2, limit_request_field_size: 12, ..Default::default() };
        let p = |b: &[u8]| parse_request_head(b, &opts).map(|r| matches!(r, Parsed::Partial));
        assert_eq!(p(&[b'G'; 21]), Ok(true));
        assert_eq!(p(&[b'G'; 22]), Err(HttpError::RequestLineTooLarge));
        assert_eq!(p(b"GET / HTTP/1.1\r\nA: 12345678"), Ok(true));
        assert_eq!(p(b"GET / HTTP/1.1\r\nA: 123456789"), Err(HttpError::FieldTooLarge));
        assert_eq!(p(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC"), Err(HttpError::TooManyFields));
        assert_eq!(p(b"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r"), Ok(true));
        // Field size counts the CRLF, like Gunicorn: 10 bytes + CRLF = 12 fits.
        assert_eq!(p(b"GET / HTTP/1.1\r\nA: 1234567\r\n\r\n"), Ok(false));
        assert_eq!(p(b"GET / HTTP/1.1\r\nA: 12345678\r\n\r\n"), Err(HttpError::FieldTooLarge));
    }

    #[test]
    fn zero_limits() {
        let zero =
            ParseOptions { limit_request_line: 0, limit_request_fields: 0, limit_request_field_size: 0, ..Default::default() };
        let p = |b: &[u8]| parse_request_head(b, &zero).map(|r| matches!(r, Parsed::Partial));
        // Line: "unlimited", but capped.
        let mut long = b"GET /".to_vec();
        long.resize(10_000, b'a');
        assert_eq!(p(&long), Ok(true));
        long.resize(UNLIMITED_LINE_CAP + 2, b'a');
        assert_eq!(p(&long), Err(HttpError::RequestLineTooLarge));
        // Field size 0 is Gunicorn's default 8190, CRLF included.
        let mut field = b"GET / HTTP/1.1\r\nX: ".to_vec();
        field.resize(16 + 8188, b'y');
        field.extend_from_slice(b"\r\n\r\n");
        assert_eq!(p(&field), Ok(false));
        field.insert(20, b'y');
        assert_eq!(p(&field), Err(HttpError::FieldTooLarge));
        // Many small fields: the whole head stops at 1 MiB.
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        while many.len() <= UNLIMITED_HEAD_CAP {
            many.extend_from_slice(b"A: 0123456789012345678901234567890123456789\r\n");
        }
        assert_eq!(p(&many), Err(HttpError::FieldTooLarge));
    }

    #[test]
    fn targets() {
        let (h, _) = ok(b"GET http://u:p@[::1]:80/x?q#f HTTP/1.1\r\n\r\n");
        assert_eq!((&*h.path, &*h.query, &*h.fragment), (&b"/x"[..], &b"q"[..], &b"f"[..]));
        assert_eq!(&*ok(b"OPTIONS * HTTP/1.1\r\n\r\n").0.path, b"*");
        assert_eq!(&*ok(b"CONNECT example.com:443 HTTP/1.1\r\n\r\n").0.path, b"443");
        assert_eq!(&*ok(b"GET //x HTTP/1.1\r\n\r\n").0.path, b"//x");
        assert_eq!(&*ok(b"GET /%zz%4 HTTP/1.1\r\n\r\n").0.path, b"/%zz%4");
        assert_eq!(err(b"GET * HTTP/1.1\r\n\r\n"), HttpError::InvalidTarget);
        assert_eq!(err(b"GET a.b:443 HTTP/1.1\r\n\r\n"), HttpError::InvalidTarget);
    }
}

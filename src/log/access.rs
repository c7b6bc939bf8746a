//! The access log: Gunicorn's `access_log_format` compiled once into pieces, then one line per
//! request formatted into a reused buffer and written with one syscall.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::cell::RefCell;
use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::json::push_json_escaped;
use super::time::{local_time, push_clf_time, unix_secs};
use super::{LogError, open_append, replace_fd, with_line_buf, write_fd};

/// Gunicorn's default `access_log_format` (Apache's combined format).
pub const DEFAULT_ACCESS_LOG_FORMAT: &str = r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#;

/// The facts about one finished request that access-log atoms draw from. Byte strings are
/// written escaped (see `push_escaped`), so they may hold anything a client sent.
pub struct AccessRecord<'a> {
    /// `REMOTE_ADDR` (`%(h)s`).
    pub remote_addr: &'a str,
    /// `%(m)s`.
    pub method: &'a str,
    /// The request target exactly as received, `RAW_URI` (used by `%(r)s`).
    pub raw_uri: &'a [u8],
    /// `PATH_INFO`, percent-decoded (`%(U)s`).
    pub path: &'a [u8],
    /// `QUERY_STRING` (`%(q)s`).
    pub query: &'a [u8],
    /// `HTTP/1.1` (`%(H)s`).
    pub protocol: &'a str,
    /// `200 OK`; `%(s)s` prints its first word.
    pub status: &'a [u8],
    /// Body bytes sent; `None` when no response was started (then `%(b)s` is `-`). Gunicorn
    /// prints `0`, not `-`, for an empty body, and so do we.
    pub response_length: Option<u64>,
    /// In order as received; for `{name}i` the last of repeated headers wins, as in Gunicorn.
    pub request_headers: &'a [(&'a [u8], &'a [u8])],
    pub response_headers: &'a [(&'a [u8], &'a [u8])],
    /// The WSGI environ entries that `{var}e` atoms need (see `AccessLog::environ_capture`).
    pub environ: &'a Captured,
    pub request_time: Duration,
    /// When the request started; `%(t)s` is `start + request_time`, the moment Gunicorn logs.
    pub start: SystemTime,
}

/// One compiled piece of an access-log format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Box<[u8]>),
    RemoteAddr,
    Ident,
    User,
    Time,
    RequestLine,
    Method,
    Path,
    Query,
    Protocol,
    Status,
    BytesOrDash,
    Bytes,
    Referer,
    UserAgent,
    Seconds,
    Millis,
    Micros,
    SecondsDecimal,
    Pid,
    /// Lower-cased header name.
    RequestHeader(Box<[u8]>),
    ResponseHeader(Box<[u8]>),
    /// Lower-cased environ key.
    Environ(Box<str>),
    /// An atom Gunicorn does not know: printed as `-`, as its `SafeAtoms` does.
    Unknown,
}

fn atom(name: &str) -> Piece {
    match name {
        "h" => Piece::RemoteAddr,
        "l" => Piece::Ident,
        "u" => Piece::User,
        "t" => Piece::Time,
        "r" => Piece::RequestLine,
        "m" => Piece::Method,
        "U" => Piece::Path,
        "q" => Piece::Query,
        "H" => Piece::Protocol,
        "s" => Piece::Status,
        "b" => Piece::BytesOrDash,
        "B" => Piece::Bytes,
        "f" => Piece::Referer,
        "a" => Piece::UserAgent,
        "T" => Piece::Seconds,
        "M" => Piece::Millis,
        "D" => Piece::Micros,
        "L" => Piece::SecondsDecimal,
        "p" => Piece::Pid,
        _ => {
            // `{...}` keys are matched case-insensitively, suffix included.
            let lower = name.to_ascii_lowercase();
            let inner = |suffix: &str| lower.strip_prefix('{').and_then(|r| r.strip_suffix(suffix)).map(str::to_string);
            if let Some(h) = inner("}i") {
                Piece::RequestHeader(h.into_bytes().into())
            } else if let Some(h) = inner("}o") {
                Piece::ResponseHeader(h.into_bytes().into())
            } else if let Some(v) = inner("}e") {
                Piece::Environ(v.into())
            } else {
                Piece::Unknown
            }
        }
    }
}

/// A piece of the format, with the atom's name as written (`None` for literal text).
type Named = (Option<Box<str>>, Piece);

/// Compiles Python `%`-with-mapping syntax: `%(name)s` (also `d`/`i`; width and flags are not
/// supported) and `%%`. Anything else after `%` is refused here, where Python would fail on
/// every request instead. Each atom keeps its name (the keys of a JSON line).
fn compile_named(format: &str) -> Result<Vec<Named>, LogError> {
    let err = |at, why| LogError::Format { format: format.to_string(), at, why };
    let bytes = format.as_bytes();
    let mut pieces = Vec::new();
    let mut lit = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            lit.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'%') => {
                lit.push(b'%');
                i += 2;
            }
            Some(b'(') => {
                let start = i + 2;
                let Some(len) = bytes[start..].iter().position(|&b| b == b')') else {
                    return Err(err(i, "'%(' without a closing ')'"));
                };
                let name = &format[start..start + len];
                match bytes.get(start + len + 1) {
                    Some(b's' | b'd' | b'i') => {}
                    Some(_) => return Err(err(start + len + 1, "only %(name)s is supported")),
                    None => return Err(err(start + len + 1, "missing conversion after ')'")),
                }
                if !lit.is_empty() {
                    pieces.push((None, Piece::Literal(std::mem::take(&mut lit).into())));
                }
                pieces.push((Some(name.into()), atom(name)));
                i = start + len + 2;
            }
            _ => return Err(err(i, "'%' must start %(name)s or be doubled as %%")),
        }
    }
    if !lit.is_empty() {
        pieces.push((None, Piece::Literal(lit.into())));
    }
    Ok(pieces)
}

/// Appends `value` so that a log line stays one parseable line whatever a client sent: `"`
/// and `\` are backslash-escaped (Gunicorn escapes `"`), and bytes outside printable ASCII
/// become `\xHH`, as Apache does for its access log.
fn push_escaped(buf: &mut Vec<u8>, value: &[u8]) {
    for &b in value {
        match b {
            b'"' | b'\\' => buf.extend_from_slice(&[b'\\', b]),
            0x20..=0x7e => buf.push(b),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                buf.extend_from_slice(&[b'\\', b'x', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
        }
    }
}

fn header_last<'a>(headers: &[(&[u8], &'a [u8])], name: &[u8]) -> Option<&'a [u8]> {
    headers.iter().rev().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
}

/// Pushes the value of header `name`, repeated headers joined with `,` as in the WSGI environ
/// (`HTTP_REFERER`, `HTTP_USER_AGENT`), or `-`.
fn push_header_joined(buf: &mut Vec<u8>, headers: &[(&[u8], &[u8])], name: &[u8], esc: Escape) {
    let mut first = true;
    for (_, v) in headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
        if !first {
            buf.push(b',');
        }
        esc(buf, v);
        first = false;
    }
    if first {
        buf.push(b'-');
    }
}

/// Decodes standard base64 the way Python's non-validating `b64decode` does: characters
/// outside the alphabet are skipped, and padding must make the length a multiple of 4.
fn base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let (mut acc, mut bits, mut count, mut pad) = (0u32, 0u32, 0usize, 0usize);
    for &c in input {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                pad += 1;
                continue;
            }
            _ => continue,
        };
        if pad > 0 {
            // Data after padding: Python stops at complete padding; treat as malformed.
            return None;
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        count += 1;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if count % 4 == 1 || (count % 4 != 0 && (count + pad) % 4 != 0) {
        return None;
    }
    Some(out)
}

/// The user name of a `Basic` `Authorization` header, as Gunicorn's `%(u)s` finds it.
fn basic_auth_user(headers: &[(&[u8], &[u8])]) -> Option<Vec<u8>> {
    let value = header_last(headers, b"authorization")?;
    if value.len() < 5 || !value[..5].eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let space = value.iter().position(|&b| b == b' ')?;
    let decoded = base64_decode(value[space + 1..].trim_ascii())?;
    let user = decoded.split(|&b| b == b':').next().unwrap_or(&[]);
    std::str::from_utf8(user).ok()?;
    // An empty name prints as `-`, as Gunicorn's `user or '-'` does.
    if user.is_empty() { None } else { Some(user.to_vec()) }
}

thread_local! {
    /// The last `%(t)s` text this thread formatted, by Unix second: a busy worker logs many
    /// requests per second, and this skips `localtime_r` for all but the first.
    static CLF_CACHE: RefCell<(i64, Vec<u8>)> = const { RefCell::new((i64::MIN, Vec::new())) };
}

fn push_cached_clf_time(buf: &mut Vec<u8>, secs: i64) {
    let cached = CLF_CACHE.try_with(|cell| {
        let mut c = cell.try_borrow_mut().ok()?;
        if c.0 != secs {
            c.1.clear();
            push_clf_time(&mut c.1, &local_time(secs));
            c.0 = secs;
        }
        buf.extend_from_slice(&c.1);
        Some(())
    });
    if !matches!(cached, Ok(Some(()))) {
        push_clf_time(buf, &local_time(secs));
    }
}

/// Which parts of the WSGI environ a request must keep for its access line; decided once per
/// worker from the format, applied in the app thread right after the app returns (so values
/// that middleware put in the environ are seen, as Gunicorn sees them).
#[derive(Debug, Clone, Default)]
pub enum EnvironCapture {
    /// No `{var}e` atom: nothing is copied.
    #[default]
    Nothing,
    /// The lower-cased keys the `{var}e` atoms name.
    Keys(std::sync::Arc<[Box<str>]>),
    /// The Python path: the logger's `access()` gets the environ dict itself.
    Whole,
}

/// What `EnvironCapture::capture` kept.
#[derive(Debug, Default)]
pub enum Captured {
    #[default]
    Nothing,
    /// `(lower-cased key, str(value))` for each key found.
    Pairs(Vec<(String, String)>),
    Python(Py<PyDict>),
}

impl Captured {
    fn get(&self, key: &str) -> Option<&str> {
        match self {
            Captured::Pairs(p) => p.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()),
            _ => None,
        }
    }

    pub(super) fn python(&self) -> Option<&Py<PyDict>> {
        match self {
            Captured::Python(d) => Some(d),
            _ => None,
        }
    }
}

impl EnvironCapture {
    pub fn capture(&self, environ: &Bound<'_, PyDict>) -> Captured {
        match self {
            EnvironCapture::Nothing => Captured::Nothing,
            EnvironCapture::Whole => Captured::Python(environ.clone().unbind()),
            EnvironCapture::Keys(keys) => {
                let mut out = Vec::with_capacity(keys.len());
                for key in keys.iter() {
                    if let Some(v) = environ_value(environ, key) {
                        out.push((key.to_string(), v));
                    }
                }
                Captured::Pairs(out)
            }
        }
    }
}

/// `str(environ[k])` for the key that lower-cases to `lower`, as Gunicorn's atoms match
/// environ keys case-insensitively. CGI keys are upper case, so that is tried first; other
/// spellings (`wsgi.url_scheme`, app keys) are found by a scan.
fn environ_value(environ: &Bound<'_, PyDict>, lower: &str) -> Option<String> {
    let as_text = |v: Bound<'_, PyAny>| v.str().ok().map(|s| s.to_string_lossy().into_owned());
    if let Ok(Some(v)) = environ.get_item(lower.to_ascii_uppercase()) {
        return as_text(v);
    }
    for (k, v) in environ.iter() {
        if let Ok(k) = k.extract::<String>() {
            if k.eq_ignore_ascii_case(lower) {
                return as_text(v);
            }
        }
    }
    None
}

/// A compiled `access_log_format` writing to a file or stdout.
#[derive(Debug)]
pub struct AccessLog {
    pieces: Vec<Piece>,
    /// One JSON object per line (`log_format = json`): the atom names, first occurrence only.
    json: Option<Vec<(Box<str>, usize)>>,
    /// Stdout, or a file this struct owns; `reopen` replaces the file behind the same number.
    out: Output,
}

#[derive(Debug)]
enum Output {
    Stdout,
    File {
        file: File,
        path: PathBuf,
    },
    /// Records go to the Python logger's `access()` (see `log::python`).
    Python,
}

impl AccessLog {
    /// `target` is `-` for stdout or a path (appended to, created if missing); `format` uses
    /// Gunicorn's `%(atom)s` syntax and is compiled once here.
    pub fn open(target: &str, format: &str) -> Result<AccessLog, LogError> {
        let named = compile_named(format)?;
        let json = super::json::is_json().then(|| {
            let mut keys: Vec<(Box<str>, usize)> = Vec::new();
            for (i, (name, _)) in named.iter().enumerate() {
                if let Some(n) = name.as_ref().filter(|n| !keys.iter().any(|(k, _)| k == *n)) {
                    keys.push((n.clone(), i));
                }
            }
            keys
        });
        let pieces: Vec<Piece> = named.into_iter().map(|(_, p)| p).collect();
        let out = if super::python::active() {
            Output::Python
        } else if target == "-" {
            Output::Stdout
        } else {
            let path = PathBuf::from(target);
            Output::File { file: open_append(&path)?, path }
        };
        Ok(AccessLog { pieces, json, out })
    }

    /// What the worker must keep of each request's environ for this log.
    pub fn environ_capture(&self) -> EnvironCapture {
        if matches!(self.out, Output::Python) {
            return EnvironCapture::Whole;
        }
        let keys = self.environ_keys();
        if keys.is_empty() { EnvironCapture::Nothing } else { EnvironCapture::Keys(keys.into_iter().map(Box::from).collect()) }
    }

    /// The environ keys (lower-cased) that `{var}e` atoms read.
    pub fn environ_keys(&self) -> Vec<&str> {
        let mut keys = Vec::new();
        for p in &self.pieces {
            if let Piece::Environ(k) = p {
                keys.push(&**k);
            }
        }
        keys
    }

    /// Writes one line for `rec` with a single write; a failing write is ignored.
    pub fn write(&self, rec: &AccessRecord<'_>) {
        let fd: RawFd = match &self.out {
            Output::Stdout => 1,
            Output::File { file, .. } => file.as_raw_fd(),
            Output::Python => return super::python::access(rec),
        };
        with_line_buf(|buf| {
            self.format_into(buf, rec, std::process::id());
            write_fd(fd, buf);
        });
    }

    fn format_into(&self, buf: &mut Vec<u8>, rec: &AccessRecord<'_>, pid: u32) {
        if let Some(keys) = &self.json {
            buf.push(b'{');
            for (n, (key, index)) in keys.iter().enumerate() {
                if n > 0 {
                    buf.push(b',');
                }
                buf.push(b'"');
                push_json_escaped(buf, key.as_bytes());
                buf.extend_from_slice(b"\":\"");
                if let Some(piece) = self.pieces.get(*index) {
                    push_piece(buf, piece, rec, pid, push_json_escaped);
                }
                buf.push(b'"');
            }
            buf.extend_from_slice(b"}\n");
            return;
        }
        for piece in &self.pieces {
            push_piece(buf, piece, rec, pid, push_escaped);
        }
        buf.push(b'\n');
    }

    /// Reopens the file (SIGUSR1, logrotate) under the same descriptor; a no-op for stdout
    /// and for the Python path (whose logger reopens its own files).
    pub fn reopen(&self) -> Result<(), LogError> {
        let Output::File { file, path } = &self.out else {
            return Ok(());
        };
        let new = open_append(path)?;
        replace_fd(new, file.as_raw_fd()).map_err(|source| LogError::Open { path: path.clone(), source })
    }
}

/// Escapes a value as it is written: `push_escaped` for text lines, JSON's for JSON lines.
type Escape = fn(&mut Vec<u8>, &[u8]);

/// Appends the value of one piece of the format for `rec`.
fn push_piece(buf: &mut Vec<u8>, piece: &Piece, rec: &AccessRecord<'_>, pid: u32, esc: Escape) {
    let t = rec.request_time;
    match piece {
        Piece::Literal(b) => buf.extend_from_slice(b),
        Piece::RemoteAddr => esc(buf, rec.remote_addr.as_bytes()),
        Piece::Ident | Piece::Unknown => buf.push(b'-'),
        Piece::User => match basic_auth_user(rec.request_headers) {
            Some(u) => esc(buf, &u),
            None => buf.push(b'-'),
        },
        Piece::Time => {
            let end = rec.start.checked_add(t).unwrap_or(rec.start);
            push_cached_clf_time(buf, unix_secs(end));
        }
        Piece::RequestLine => {
            esc(buf, rec.method.as_bytes());
            buf.push(b' ');
            esc(buf, rec.raw_uri);
            buf.push(b' ');
            esc(buf, rec.protocol.as_bytes());
        }
        Piece::Method => esc(buf, rec.method.as_bytes()),
        Piece::Path => esc(buf, rec.path),
        Piece::Query => esc(buf, rec.query),
        Piece::Protocol => esc(buf, rec.protocol.as_bytes()),
        Piece::Status => {
            let code = rec.status.split(|b| b.is_ascii_whitespace()).find(|w| !w.is_empty());
            match code {
                Some(c) => esc(buf, c),
                None => buf.push(b'-'),
            }
        }
        Piece::BytesOrDash | Piece::Bytes => match rec.response_length {
            Some(n) => {
                let _ = write!(buf, "{n}");
            }
            None => buf.push(b'-'),
        },
        Piece::Referer => push_header_joined(buf, rec.request_headers, b"referer", esc),
        Piece::UserAgent => push_header_joined(buf, rec.request_headers, b"user-agent", esc),
        Piece::Seconds => {
            let _ = write!(buf, "{}", t.as_secs());
        }
        Piece::Millis => {
            let _ = write!(buf, "{}", t.as_millis());
        }
        Piece::Micros => {
            let _ = write!(buf, "{}", t.as_micros());
        }
        Piece::SecondsDecimal => {
            let _ = write!(buf, "{}.{:06}", t.as_secs(), t.subsec_micros());
        }
        Piece::Pid => {
            let _ = write!(buf, "<{pid}>");
        }
        Piece::RequestHeader(name) => match header_last(rec.request_headers, name) {
            Some(v) => esc(buf, v),
            None => buf.push(b'-'),
        },
        Piece::ResponseHeader(name) => match header_last(rec.response_headers, name) {
            Some(v) => esc(buf, v),
            None => buf.push(b'-'),
        },
        Piece::Environ(key) => match rec.environ.get(key) {
            Some(v) => esc(buf, v.as_bytes()),
            None => buf.push(b'-'),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    struct Owned {
        req: Vec<(&'static [u8], &'static [u8])>,
        resp: Vec<(&'static [u8], &'static [u8])>,
        env: Captured,
    }

    fn owned() -> Owned {
        Owned {
            req: vec![
                (b"Host", b"example.com"),
                (b"User-Agent", b"curl/8.0"),
                (b"Referer", b"http://a/"),
                (b"Authorization", b"Basic dXNlcjpwYXNz"), // user:pass
                (b"X-Dup", b"one"),
                (b"x-dup", b"two"),
            ],
            resp: vec![(b"Content-Type", b"text/plain")],
            env: Captured::Pairs(vec![("remote_port".into(), "5555".into())]),
        }
    }

    fn record<'a>(o: &'a Owned, start: SystemTime) -> AccessRecord<'a> {
        AccessRecord {
            remote_addr: "10.0.0.1",
            method: "GET",
            raw_uri: b"/a%20b?x=1",
            path: b"/a b",
            query: b"x=1",
            protocol: "HTTP/1.1",
            status: b"200 OK",
            response_length: Some(1234),
            request_headers: &o.req,
            response_headers: &o.resp,
            environ: &o.env,
            request_time: Duration::new(2, 345_678_000),
            start,
        }
    }

    fn render(format: &str, rec: &AccessRecord<'_>) -> String {
        let log = AccessLog::open("-", format).expect("compile");
        let mut buf = Vec::new();
        log.format_into(&mut buf, rec, 4242);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn each_atom() {
        let o = owned();
        let start = UNIX_EPOCH + Duration::from_secs(1_795_760_910);
        let rec = record(&o, start);
        let mut t = Vec::new();
        push_clf_time(&mut t, &local_time(1_795_760_912));
        let t = String::from_utf8(t).unwrap();
        let cases: &[(&str, &str)] = &[
            ("h", "10.0.0.1"),
            ("l", "-"),
            ("u", "user"),
            ("t", &t),
            ("r", "GET /a%20b?x=1 HTTP/1.1"),
            ("m", "GET"),
            ("U", "/a b"),
            ("q", "x=1"),
            ("H", "HTTP/1.1"),
            ("s", "200"),
            ("B", "1234"),
            ("b", "1234"),
            ("f", "http://a/"),
            ("a", "curl/8.0"),
            ("T", "2"),
            ("M", "2345"),
            ("D", "2345678"),
            ("L", "2.345678"),
            ("p", "<4242>"),
            ("{host}i", "example.com"),
            ("{HOST}I", "example.com"),
            ("{x-dup}i", "two"),
            ("{missing}i", "-"),
            ("{content-type}o", "text/plain"),
            ("{remote_port}e", "5555"),
            ("{nope}e", "-"),
            ("zz", "-"),
        ];
        for (atom, want) in cases {
            assert_eq!(render(&format!("%({atom})s"), &rec), format!("{want}\n"), "atom {atom}");
        }
        let log = AccessLog::open("-", "%({REMOTE_PORT}e)s %({x}i)s").unwrap();
        assert_eq!(log.environ_keys(), vec!["remote_port"]);
    }

    #[test]
    fn default_format_and_dashes() {
        let o = Owned { req: vec![], resp: vec![], env: Captured::Nothing };
        let rec = AccessRecord { response_length: None, ..record(&o, UNIX_EPOCH) };
        let line = render(DEFAULT_ACCESS_LOG_FORMAT, &rec);
        let (before, after) = line.split_once('[').unwrap();
        assert_eq!(before, "10.0.0.1 - - ");
        let after = &after[after.find(']').unwrap() + 1..];
        assert_eq!(after, " \"GET /a%20b?x=1 HTTP/1.1\" 200 - \"-\" \"-\"\n");
        let zero = AccessRecord { response_length: Some(0), ..record(&o, UNIX_EPOCH) };
        assert_eq!(render("%(b)s", &zero), "0\n");
        assert_eq!(render("100%% %(m)s", &zero), "100% GET\n");
    }

    #[test]
    fn escaping() {
        let o = Owned {
            req: vec![(b"User-Agent", b"a\"b\\c\n\x01\xe9"), (b"Authorization", b"basic !!")],
            resp: vec![],
            env: Captured::Nothing,
        };
        let rec = AccessRecord { path: b"/x\r\ny", ..record(&o, UNIX_EPOCH) };
        assert_eq!(render("%(a)s|%(U)s|%(u)s", &rec), "a\\\"b\\\\c\\x0a\\x01\\xe9|/x\\x0d\\x0ay|-\n");
    }

    #[test]
    fn basic_auth() {
        let user = |v: &'static [u8]| basic_auth_user(&[(b"authorization", v)]);
        assert_eq!(user(b"Basic dXNlcjpwYXNz"), Some(b"user".to_vec()));
        assert_eq!(user(b"BASIC  YWxpY2U="), Some(b"alice".to_vec())); // "alice"
        assert_eq!(user(b"Basic YWxpY2U"), None); // missing padding, as Python refuses
        assert_eq!(user(b"Bearer dXNlcjpwYXNz"), None);
        assert_eq!(user(b"Basic /w=="), None); // 0xff is not UTF-8
    }

    #[test]
    fn bad_formats() {
        for f in ["%(h)", "%(h", "%d", "50%", "%(h)x"] {
            let e = AccessLog::open("-", f).expect_err(f);
            assert!(matches!(e, LogError::Format { .. }), "{e}");
        }
    }

    #[test]
    fn access_reopen_after_rename() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("access.log");
        let log = AccessLog::open(path.to_str().unwrap(), "%(m)s %(U)s").unwrap();
        let o = owned();
        log.write(&record(&o, UNIX_EPOCH));
        let rotated = dir.path().join("access.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        log.write(&AccessRecord { method: "POST", ..record(&o, UNIX_EPOCH) });
        log.reopen().unwrap();
        log.write(&AccessRecord { method: "PUT", ..record(&o, UNIX_EPOCH) });
        assert_eq!(std::fs::read_to_string(&rotated).unwrap(), "GET /a b\nPOST /a b\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "PUT /a b\n");
    }

    #[test]
    fn concurrent_lines_stay_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("access.log");
        let log = AccessLog::open(path.to_str().unwrap(), "%(m)s %(U)s %({x-n}i)s").unwrap();
        let o = owned();
        std::thread::scope(|s| {
            for t in 0..8 {
                let (log, o) = (&log, &o);
                s.spawn(move || {
                    for i in 0..200 {
                        let n = format!("{t}-{i}");
                        let mut req = o.req.clone();
                        req.push((b"X-N", n.as_bytes()));
                        log.write(&AccessRecord { request_headers: &req, ..record(o, UNIX_EPOCH) });
                    }
                });
            }
        });
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1600);
        assert!(lines.iter().all(|l| l.starts_with("GET /a b ") && l.matches('-').count() == 1), "{text}");
    }
}

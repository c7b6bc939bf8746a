//! Building the WSGI environ for one request, with the keys and values Gunicorn sets.
//!
//! Per worker, the constant part (`wsgi.version`, `wsgi.errors`, `SERVER_SOFTWARE`, ...) is built
//! once and copied per request; `HTTP_*` key strings are cached by the header name as received,
//! so a typical request allocates only its values.

use super::errors::ErrorStream;
use super::file_wrapper::FileWrapper;
use super::input::Input;
use ferrocorn_http::{ProxyInfo, RequestHead, Version};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

/// The client's address as the accepting socket saw it.
#[derive(Debug, Clone)]
pub enum Peer {
    Tcp(SocketAddr),
    Unix,
}

/// Connection facts the environ needs.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: Peer,
    /// The listener's own host and port (`SERVER_NAME`, `SERVER_PORT`); `None` for unix sockets,
    /// where they come from the Host header as Gunicorn does.
    pub server: Option<Arc<(String, String)>>,
    pub tls: bool,
    /// Addresses from a PROXY protocol header, when `proxy_protocol` is on.
    pub proxy: Option<ProxyInfo>,
    /// The environ keys that are the same for every request on this connection, built on its
    /// first request (after any PROXY header) and copied for the next ones.
    template: Arc<OnceLock<Py<PyDict>>>,
}

impl ConnInfo {
    pub fn new(peer: Peer, server: Option<Arc<(String, String)>>) -> ConnInfo {
        ConnInfo { peer, server, tls: false, proxy: None, template: Arc::default() }
    }
}

/// A request the environ cannot be built for; answered with the status given.
#[derive(Debug)]
pub enum EnvironError {
    /// A trusted proxy sent scheme headers that disagree (Gunicorn's InvalidSchemeHeaders).
    ContradictoryScheme,
    /// The path does not start with the configured SCRIPT_NAME.
    OutsideScriptName {
        path: String,
        script_name: String,
    },
    Python(PyErr),
}

impl EnvironError {
    pub fn status(&self) -> u16 {
        match self {
            EnvironError::ContradictoryScheme => 400,
            EnvironError::OutsideScriptName { .. } => 404,
            EnvironError::Python(_) => 500,
        }
    }
}

impl fmt::Display for EnvironError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvironError::ContradictoryScheme => f.write_str("contradictory scheme headers from a trusted proxy"),
            EnvironError::OutsideScriptName { path, script_name } => {
                write!(f, "request path {path:?} does not start with SCRIPT_NAME {script_name:?}")
            }
            EnvironError::Python(e) => write!(f, "{e}"),
        }
    }
}

impl From<PyErr> for EnvironError {
    fn from(e: PyErr) -> Self {
        EnvironError::Python(e)
    }
}

/// Which peers may set scheme and forwarding headers (`forwarded_allow_ips`).
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    any: bool,
    nets: Vec<(IpAddr, u8)>,
}

impl AllowList {
    /// Parses entries such as `127.0.0.1`, `::1`, `10.0.0.0/8` or `*`; bad entries are errors.
    pub fn parse(entries: &[String]) -> Result<AllowList, String> {
        let mut list = AllowList::default();
        for raw in entries {
            let e = raw.trim();
            if e.is_empty() {
                continue;
            }
            if e == "*" {
                list.any = true;
                continue;
            }
            let (addr, bits) = match e.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (e, None),
            };
            let ip: IpAddr = addr.parse().map_err(|_| format!("{e:?} is not an IP address or network"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(|| format!("{e:?} has a bad prefix length"))?,
                None => max,
            };
            list.nets.push((ip, bits));
        }
        Ok(list)
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.any {
            return true;
        }
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.nets.iter().any(|&(net, bits)| match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
            _ => false,
        })
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let full = (bits / 8) as usize;
    if a[..full] != b[..full] {
        return false;
    }
    let rest = bits % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

/// Per-worker settings for building environs.
#[derive(Clone)]
pub struct WsgiSettings {
    pub server_software: String,
    pub multithread: bool,
    pub multiprocess: bool,
    /// `SCRIPT_NAME` from the server's environment (Gunicorn reads `os.environ`).
    pub script_name: String,
    pub forwarded_allow: AllowList,
    /// `secure_scheme_headers`: (header name, value meaning https).
    pub secure_scheme_headers: Vec<(String, String)>,
    /// `forwarder_headers`: underscore headers a trusted proxy may send; a `SCRIPT_NAME` header
    /// among them replaces the environment's SCRIPT_NAME, as in Gunicorn.
    pub forwarder_headers: Vec<String>,
}

/// The per-worker environ template and the settings that shape each request's environ.
pub struct WsgiContext {
    base: Py<PyDict>,
    script_name: String,
    forwarded_allow: AllowList,
    /// Upper-cased header names with the value that means https.
    secure_scheme_headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Whether a trusted peer's `SCRIPT_NAME` header is honoured (listed in forwarder_headers).
    script_name_header: bool,
}

thread_local! {
    /// `HTTP_*` key strings by header name as received; bounded so hostile clients sending
    /// random names cannot grow it.
    static KEY_CACHE: RefCell<HashMap<Box<[u8]>, Py<PyString>>> = RefCell::new(HashMap::new());
}
const KEY_CACHE_MAX: usize = 512;

/// A header value or path as a native str holding latin-1 code points (PEP 3333).
pub fn latin1_str<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    // The most frequent values (an empty query or SCRIPT_NAME, the root path) are shared.
    match bytes {
        b"" => return pyo3::intern!(py, "").clone(),
        b"/" => return pyo3::intern!(py, "/").clone(),
        _ => {}
    }
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        return PyString::new(py, unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    let s: String = bytes.iter().map(|&b| b as char).collect();
    PyString::new(py, &s)
}

/// The request method as a str, shared for the standard ones.
fn method_str<'py>(py: Python<'py>, method: &str) -> Bound<'py, PyString> {
    let s = match method {
        "GET" => pyo3::intern!(py, "GET"),
        "POST" => pyo3::intern!(py, "POST"),
        "HEAD" => pyo3::intern!(py, "HEAD"),
        "PUT" => pyo3::intern!(py, "PUT"),
        "DELETE" => pyo3::intern!(py, "DELETE"),
        "PATCH" => pyo3::intern!(py, "PATCH"),
        "OPTIONS" => pyo3::intern!(py, "OPTIONS"),
        other => return PyString::new(py, other),
    };
    s.clone()
}

/// `Content-Type` -> `HTTP_CONTENT_TYPE`-style key (`HTTP_` + upper-case, `-` to `_`).
fn http_key<'py>(py: Python<'py>, name: &[u8]) -> Bound<'py, PyString> {
    KEY_CACHE.with(|cache| {
        if let Some(k) = cache.borrow().get(name) {
            return k.bind(py).clone();
        }
        let mut key = String::with_capacity(5 + name.len());
        key.push_str("HTTP_");
        for &b in name {
            key.push(match b {
                b'-' => '_',
                b => (b as char).to_ascii_uppercase(),
            });
        }
        let s = PyString::new(py, &key);
        let mut cache = cache.borrow_mut();
        if cache.len() < KEY_CACHE_MAX {
            cache.insert(name.into(), s.clone().unbind());
        }
        s
    })
}

impl WsgiContext {
    pub fn new(py: Python<'_>, settings: WsgiSettings) -> PyResult<WsgiContext> {
        let base = PyDict::new(py);
        base.set_item("wsgi.version", (1, 0))?;
        base.set_item("wsgi.errors", Py::new(py, ErrorStream)?)?;
        base.set_item("wsgi.multithread", settings.multithread)?;
        base.set_item("wsgi.multiprocess", settings.multiprocess)?;
        base.set_item("wsgi.run_once", false)?;
        base.set_item("wsgi.file_wrapper", py.get_type::<FileWrapper>())?;
        base.set_item("wsgi.input_terminated", true)?;
        base.set_item("SERVER_SOFTWARE", settings.server_software)?;
        Ok(WsgiContext {
            base: base.unbind(),
            script_name: settings.script_name,
            forwarded_allow: settings.forwarded_allow,
            script_name_header: settings.forwarder_headers.iter().any(|h| h == "*" || h.eq_ignore_ascii_case("SCRIPT_NAME")),
            secure_scheme_headers: settings
                .secure_scheme_headers
                .into_iter()
                .map(|(k, v)| (k.to_ascii_uppercase().into_bytes(), v.into_bytes()))
                .collect(),
        })
    }

    fn peer_trusted(&self, peer: &Peer) -> bool {
        match peer {
            // Gunicorn trusts unix-socket peers: only local processes can connect.
            Peer::Unix => true,
            Peer::Tcp(addr) => self.forwarded_allow.allows(addr.ip()),
        }
    }

    /// The scheme for this request: `https` for TLS, else from a trusted proxy's headers.
    pub fn url_scheme(&self, head: &RequestHead, conn: &ConnInfo) -> Result<&'static str, EnvironError> {
        let mut scheme = if conn.tls { "https" } else { "http" };
        if self.secure_scheme_headers.is_empty() || !self.peer_trusted(&conn.peer) {
            return Ok(scheme);
        }
        let mut decided = false;
        for h in &head.headers {
            for (name, secure_value) in &self.secure_scheme_headers {
                if h.name.eq_ignore_ascii_case(name) {
                    let this = if *h.value == **secure_value { "https" } else { "http" };
                    if decided && this != scheme {
                        return Err(EnvironError::ContradictoryScheme);
                    }
                    decided = true;
                    scheme = this;
                }
            }
        }
        Ok(scheme)
    }

    /// Builds the environ for one request; `input` becomes `wsgi.input`.
    pub fn build<'py>(
        &self,
        py: Python<'py>,
        head: &RequestHead,
        conn: &ConnInfo,
        input: Input,
    ) -> Result<Bound<'py, PyDict>, EnvironError> {
        let scheme = self.url_scheme(head, conn)?;
        let env = self.conn_template(py, conn)?.copy()?;
        env.set_item(pyo3::intern!(py, "wsgi.input"), Py::new(py, input)?)?;
        if scheme != default_scheme(conn) {
            env.set_item(pyo3::intern!(py, "wsgi.url_scheme"), scheme)?;
        }
        env.set_item(pyo3::intern!(py, "REQUEST_METHOD"), method_str(py, &head.method))?;
        env.set_item(pyo3::intern!(py, "QUERY_STRING"), latin1_str(py, &head.query))?;
        env.set_item(pyo3::intern!(py, "RAW_URI"), latin1_str(py, &head.target))?;
        let protocol = match head.version {
            Version::Http10 => pyo3::intern!(py, "HTTP/1.0"),
            Version::Http11 => pyo3::intern!(py, "HTTP/1.1"),
        };
        env.set_item(pyo3::intern!(py, "SERVER_PROTOCOL"), protocol)?;

        let mut host: Option<&[u8]> = None;
        let mut script_name: Option<&[u8]> = None;
        let mut repeated = false;
        // The parser passes underscore headers only from trusted forwarders (or with
        // header_map=dangerous); checking trust here too keeps `dangerous` from letting any
        // client choose SCRIPT_NAME, which Gunicorn would allow.
        let forwarded_script_name = self.script_name_header && self.peer_trusted(&conn.peer);
        for h in &head.headers {
            let name = &*h.name;
            if forwarded_script_name && name.eq_ignore_ascii_case(b"script_name") {
                script_name = Some(&h.value);
            }
            if name.eq_ignore_ascii_case(b"content-type") {
                env.set_item(pyo3::intern!(py, "CONTENT_TYPE"), latin1_str(py, &h.value))?;
                continue;
            }
            if name.eq_ignore_ascii_case(b"content-length") {
                env.set_item(pyo3::intern!(py, "CONTENT_LENGTH"), latin1_str(py, &h.value))?;
                continue;
            }
            if name.eq_ignore_ascii_case(b"host") {
                host = Some(&h.value);
            }
            let key = http_key(py, name);
            if env.contains(&key)? {
                repeated = true;
                continue;
            }
            env.set_item(key, latin1_str(py, &h.value))?;
        }
        if repeated {
            // Rare: join every repeated field once, in arrival order, with "," as Gunicorn does.
            self.join_repeated(py, &env, head)?;
        }

        if conn.server.is_none() {
            let (server_name, server_port) = unix_server_name(host, scheme);
            env.set_item(pyo3::intern!(py, "SERVER_NAME"), server_name)?;
            env.set_item(pyo3::intern!(py, "SERVER_PORT"), server_port)?;
        }

        let path = &*head.path;
        let script_name = script_name.unwrap_or(self.script_name.as_bytes());
        let Some((script_name, path_info)) = split_script_name(path, script_name) else {
            return Err(EnvironError::OutsideScriptName {
                path: String::from_utf8_lossy(path).into_owned(),
                script_name: String::from_utf8_lossy(script_name).into_owned(),
            });
        };
        env.set_item(pyo3::intern!(py, "PATH_INFO"), latin1_str(py, path_info))?;
        env.set_item(pyo3::intern!(py, "SCRIPT_NAME"), latin1_str(py, script_name))?;
        Ok(env)
    }

    /// The worker's constant keys plus this connection's own: the client and server addresses
    /// (PROXY header ones included) and the scheme the socket implies.
    fn conn_template<'py>(&self, py: Python<'py>, conn: &ConnInfo) -> PyResult<Bound<'py, PyDict>> {
        if let Some(t) = conn.template.get() {
            return Ok(t.bind(py).clone());
        }
        let env = self.base.bind(py).copy()?;
        env.set_item("wsgi.url_scheme", default_scheme(conn))?;
        match &conn.peer {
            Peer::Tcp(addr) => {
                env.set_item("REMOTE_ADDR", addr.ip().to_string())?;
                env.set_item("REMOTE_PORT", addr.port().to_string())?;
            }
            Peer::Unix => env.set_item("REMOTE_ADDR", "")?,
        }
        if let Some(server) = &conn.server {
            env.set_item("SERVER_NAME", &server.0)?;
            env.set_item("SERVER_PORT", &server.1)?;
        }
        if let Some(proxy) = &conn.proxy {
            if let Some(src) = proxy.source {
                env.set_item("REMOTE_ADDR", src.ip().to_string())?;
                env.set_item("REMOTE_PORT", src.port().to_string())?;
            }
            if let Some(dst) = proxy.destination {
                env.set_item("PROXY_ADDR", dst.ip().to_string())?;
                env.set_item("PROXY_PORT", dst.port().to_string())?;
            }
        }
        // Only this connection's requests read it, one at a time; if it were ever set twice
        // the second copy would simply be dropped.
        let _ = conn.template.set(env.clone().unbind());
        Ok(env)
    }

    fn join_repeated(&self, py: Python<'_>, env: &Bound<'_, PyDict>, head: &RequestHead) -> PyResult<()> {
        let mut joined: Vec<(Bound<'_, PyString>, Vec<u8>)> = Vec::new();
        for h in &head.headers {
            if h.name.eq_ignore_ascii_case(b"content-type") || h.name.eq_ignore_ascii_case(b"content-length") {
                continue;
            }
            let key = http_key(py, &h.name);
            let key_str = key.to_cow()?.into_owned();
            match joined.iter_mut().find(|(k, _)| k.to_cow().map(|s| s == key_str).unwrap_or(false)) {
                Some((_, v)) => {
                    v.push(b',');
                    v.extend_from_slice(&h.value);
                }
                None => joined.push((key, h.value.to_vec())),
            }
        }
        for (k, v) in joined {
            env.set_item(k, latin1_str(py, &v))?;
        }
        Ok(())
    }
}

fn default_scheme(conn: &ConnInfo) -> &'static str {
    if conn.tls { "https" } else { "http" }
}

/// `SERVER_NAME`/`SERVER_PORT` for a unix-socket listener: from the Host header when there is
/// one (defaulting the port by scheme), else the empty strings, as Gunicorn does.
fn unix_server_name(host: Option<&[u8]>, scheme: &str) -> (String, String) {
    let Some(host) = host else {
        return (String::new(), String::new());
    };
    let host = String::from_utf8_lossy(host);
    match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') || host.starts_with('[') => (name.to_string(), port.to_string()),
        _ => (host.to_string(), if scheme == "https" { "443" } else { "80" }.to_string()),
    }
}

/// Splits a request path into SCRIPT_NAME and PATH_INFO, or `None` when the path is not under
/// the mount point. PEP 3333 wants PATH_INFO empty or starting with `/`, so the mount point must
/// end on a segment boundary: `/app` serves `/app` and `/app/x`, never `/appx` (Gunicorn cuts
/// anywhere and hands `/appx` over as PATH_INFO `x`). Trailing slashes of the mount point are
/// dropped, so `/app/` mounts the same as `/app` and `/` the same as the root, and SCRIPT_NAME
/// followed by PATH_INFO is always the path.
fn split_script_name<'a>(path: &'a [u8], script_name: &'a [u8]) -> Option<(&'a [u8], &'a [u8])> {
    let mut mount = script_name;
    while let [rest @ .., b'/'] = mount {
        mount = rest;
    }
    if mount.is_empty() {
        // At the root every target is the app's, `*` and CONNECT's authority included.
        return Some((mount, path));
    }
    let rest = path.strip_prefix(mount)?;
    (rest.is_empty() || rest.starts_with(b"/")).then_some((mount, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_name_splits_on_segment_boundaries() {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let split = |p: &str, s: &str| split_script_name(p.as_bytes(), s.as_bytes()).map(|(a, b)| (text(a), text(b)));
        let some = |a: &str, b: &str| Some((a.to_owned(), b.to_owned()));
        assert_eq!(split("/app/x", "/app"), some("/app", "/x"));
        assert_eq!(split("/app", "/app"), some("/app", ""));
        assert_eq!(split("/app/", "/app"), some("/app", "/"));
        assert_eq!(split("/app//x", "/app"), some("/app", "//x"));
        assert_eq!(split("/a/b/c", "/a/b"), some("/a/b", "/c"));
        assert_eq!(split("/app/x", "/app/"), some("/app", "/x"));
        assert_eq!(split("/app", "/app//"), some("/app", ""));
        assert_eq!(split("/x", ""), some("", "/x"));
        assert_eq!(split("/x", "/"), some("", "/x"));
        assert_eq!(split("*", ""), some("", "*"));
        // Not on a boundary, or not under the mount point at all.
        for (p, s) in [
            ("/appx", "/app"),
            ("/appfoo/x", "/app"),
            ("/app.json", "/app"),
            ("/ap", "/app"),
            ("/other", "/app"),
            ("/", "/app"),
            ("/a/bc", "/a/b"),
            ("/APP/x", "/app"),
            ("*", "/app"),
            ("/x", "app"),
        ] {
            assert_eq!(split(p, s), None, "{p} under {s}");
        }
    }

    #[test]
    fn allow_list_matches_ips_networks_and_star() {
        let l = AllowList::parse(&["127.0.0.1".into(), "10.0.0.0/8".into(), "::1".into()]).unwrap();
        assert!(l.allows("127.0.0.1".parse().unwrap()));
        assert!(l.allows("10.200.3.4".parse().unwrap()));
        assert!(!l.allows("11.0.0.1".parse().unwrap()));
        assert!(l.allows("::1".parse().unwrap()));
        assert!(l.allows("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!l.allows("::2".parse().unwrap()));
        assert!(AllowList::parse(&["*".into()]).unwrap().allows("8.8.8.8".parse().unwrap()));
        assert!(AllowList::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(AllowList::parse(&["nope".into()]).is_err());
    }

    #[test]
    fn unix_server_name_from_host() {
        assert_eq!(unix_server_name(Some(b"example.com:8080"), "http"), ("example.com".into(), "8080".into()));
        assert_eq!(unix_server_name(Some(b"example.com"), "https"), ("example.com".into(), "443".into()));
        assert_eq!(unix_server_name(None, "http"), (String::new(), String::new()));
    }
}

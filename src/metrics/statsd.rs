//! A statsd client with Gunicorn's metric names and wire format.
//!
//! The socket is a connected, non-blocking datagram socket (UDP or a Unix datagram socket)
//! created once in the master; forked workers inherit it. A send that would block or fails is
//! dropped: metrics must never slow down or break request handling, and a lost datagram is what
//! statsd over UDP already accepts.

use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;

/// Where `statsd_host` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Udp { host: String, port: u16 },
    Unix(String),
}

#[derive(Debug)]
pub enum StatsdError {
    /// `statsd_host` is not `HOST[:PORT]`, `[V6]:PORT` or `unix://PATH`.
    Address(String),
    /// The host name does not resolve.
    Resolve {
        host: String,
        source: io::Error,
    },
    Socket(io::Error),
}

impl fmt::Display for StatsdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatsdError::Address(a) => {
                write!(f, "invalid statsd address {a:?}: expected HOST:PORT or unix://PATH")
            }
            StatsdError::Resolve { host, source } => {
                write!(f, "cannot resolve statsd host {host:?}: {source}")
            }
            StatsdError::Socket(e) => write!(f, "cannot create the statsd socket: {e}"),
        }
    }
}

impl std::error::Error for StatsdError {}

/// Parses `statsd_host` as Gunicorn does: `unix://PATH` (or `unix:PATH`), `[V6]:PORT`,
/// `HOST:PORT`, or `HOST` with the default port 8125.
pub fn parse_target(text: &str) -> Result<Target, StatsdError> {
    let bad = || StatsdError::Address(text.to_string());
    let text = text.trim();
    if let Some(path) = text.strip_prefix("unix://").or_else(|| text.strip_prefix("unix:")) {
        if path.is_empty() {
            return Err(bad());
        }
        return Ok(Target::Unix(path.to_string()));
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, tail) = rest.split_once(']').ok_or_else(bad)?;
        (host, tail.strip_prefix(':').unwrap_or(""))
    } else {
        match text.split_once(':') {
            Some((h, p)) => (h, p),
            None => (text, ""),
        }
    };
    let port = if port.is_empty() { 8125 } else { port.parse().map_err(|_| bad())? };
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Ok(Target::Udp { host: host.to_ascii_lowercase(), port })
}

/// Where and how metrics are sent.
#[derive(Debug)]
pub struct Statsd {
    sock: Sock,
    /// `statsd_prefix` with exactly one trailing dot, or empty.
    prefix: String,
    /// `|#tags` to append (DogStatsD), or empty.
    tags: String,
}

#[derive(Debug)]
enum Sock {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

impl Statsd {
    pub fn connect(target: &Target, prefix: &str, tags: &str) -> Result<Statsd, StatsdError> {
        let sock = match target {
            Target::Udp { host, port } => {
                let addr: SocketAddr = (host.as_str(), *port)
                    .to_socket_addrs()
                    .and_then(|mut a| a.next().ok_or_else(|| io::Error::other("no address found")))
                    .map_err(|source| StatsdError::Resolve { host: host.clone(), source })?;
                let local: SocketAddr = if addr.is_ipv6() {
                    "[::]:0".parse().map_err(|_| StatsdError::Address(host.clone()))?
                } else {
                    "0.0.0.0:0".parse().map_err(|_| StatsdError::Address(host.clone()))?
                };
                let s = UdpSocket::bind(local).map_err(StatsdError::Socket)?;
                s.connect(addr).map_err(StatsdError::Socket)?;
                s.set_nonblocking(true).map_err(StatsdError::Socket)?;
                Sock::Udp(s)
            }
            Target::Unix(path) => {
                let s = UnixDatagram::unbound().map_err(StatsdError::Socket)?;
                // Like Gunicorn, a listener that is not there yet is not fatal: sends fail
                // silently until it is.
                let _ = s.connect(path);
                s.set_nonblocking(true).map_err(StatsdError::Socket)?;
                Sock::Unix(s)
            }
        };
        Ok(Statsd { sock, prefix: normalize_prefix(prefix), tags: tags_suffix(tags) })
    }

    /// Sends one metric line `PREFIX NAME:VALUE|TYPE` (plus tags); never blocks.
    pub fn send(&self, name: &str, value: fmt::Arguments<'_>, kind: &str) {
        let mut line = String::with_capacity(64);
        let _ = fmt::write(&mut line, format_args!("{}{name}:{value}|{kind}{}", self.prefix, self.tags));
        let _ = match &self.sock {
            Sock::Udp(s) => s.send(line.as_bytes()),
            Sock::Unix(s) => s.send(line.as_bytes()),
        };
    }

    pub fn increment(&self, name: &str, by: u64) {
        // Gunicorn always writes the sample rate, `|c|@1.0`.
        self.send(name, format_args!("{by}"), "c|@1.0");
    }

    pub fn gauge(&self, name: &str, value: u64) {
        self.send(name, format_args!("{value}"), "g");
    }

    pub fn histogram(&self, name: &str, value: u64) {
        self.send(name, format_args!("{value}"), "h");
    }

    /// A timer in milliseconds, written like Python's `str(float)` (`12.0`, `0.512`).
    pub fn timer_ms(&self, name: &str, micros: u64) {
        self.send(name, format_args!("{}", PyFloatMs(micros)), "ms");
    }
}

/// `a.b...` -> `a.b.`; empty stays empty. (Gunicorn's regex leaves a one-character prefix
/// without its dot; that looks unintended and is not copied.)
fn normalize_prefix(prefix: &str) -> String {
    let p = prefix.trim_end_matches('.');
    if p.is_empty() { String::new() } else { format!("{p}.") }
}

fn tags_suffix(tags: &str) -> String {
    if tags.is_empty() { String::new() } else { format!("|#{tags}") }
}

/// Microseconds shown as milliseconds the way Python prints the float
/// `seconds * 1000 + micros / 1000`: at least one decimal, no trailing zeros.
struct PyFloatMs(u64);

impl fmt::Display for PyFloatMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 1000;
        let frac = self.0 % 1000;
        if frac == 0 {
            return write!(f, "{whole}.0");
        }
        let digits = format!("{frac:03}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let udp = |h: &str, p| Target::Udp { host: h.into(), port: p };
        assert_eq!(parse_target("localhost:9125").unwrap(), udp("localhost", 9125));
        assert_eq!(parse_target("Example.COM").unwrap(), udp("example.com", 8125));
        assert_eq!(parse_target("[::1]:8126").unwrap(), udp("::1", 8126));
        assert_eq!(parse_target("[::1]").unwrap(), udp("::1", 8125));
        assert_eq!(parse_target("unix:///run/statsd.sock").unwrap(), Target::Unix("/run/statsd.sock".into()));
        assert!(parse_target("host:port").is_err());
        assert!(parse_target("unix://").is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("app"), "app.");
        assert_eq!(normalize_prefix("app.web..."), "app.web.");
        assert_eq!(PyFloatMs(12_000).to_string(), "12.0");
        assert_eq!(PyFloatMs(512).to_string(), "0.512");
        assert_eq!(PyFloatMs(1_250).to_string(), "1.25");
        assert_eq!(tags_suffix("env:prod,team:web"), "|#env:prod,team:web");
    }

    #[test]
    fn sends_over_udp() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        let port = server.local_addr().unwrap().port();
        let target = Target::Udp { host: "127.0.0.1".into(), port };
        let s = Statsd::connect(&target, "web.", "a:b").unwrap();
        s.increment("gunicorn.requests", 1);
        s.timer_ms("gunicorn.request.duration", 3_500);
        s.gauge("gunicorn.workers", 2);
        let mut got = Vec::new();
        for _ in 0..3 {
            let mut buf = [0u8; 256];
            let n = server.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        assert_eq!(
            got,
            ["web.gunicorn.requests:1|c|@1.0|#a:b", "web.gunicorn.request.duration:3.5|ms|#a:b", "web.gunicorn.workers:2|g|#a:b",]
        );
    }
}

//! `--bind` values: parsing Gunicorn's address syntax, and the errors of binding.

use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::RawFd;
use std::path::PathBuf;

/// Gunicorn's port when `--bind` names only a host.
pub const DEFAULT_PORT: u16 = 8000;

/// A parsed `--bind` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddr {
    /// Host (name or literal, brackets removed, lower-cased as Gunicorn does) and port.
    Tcp {
        host: String,
        port: u16,
    },
    Unix(PathBuf),
    Fd(RawFd),
}

impl fmt::Display for BindAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindAddr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            BindAddr::Tcp { host, port } => write!(f, "{host}:{port}"),
            BindAddr::Unix(path) => write!(f, "unix:{}", path.display()),
            BindAddr::Fd(fd) => write!(f, "fd://{fd}"),
        }
    }
}

#[derive(Debug)]
pub enum BindError {
    /// The `--bind` value cannot be parsed.
    Syntax { value: String, why: &'static str },
    /// A host name did not resolve to any address.
    Resolve { host: String, source: Option<io::Error> },
    /// The address stayed busy through every retry.
    InUse { addr: String, attempts: u32 },
    /// Any other failure creating, binding or listening (permission denied, path too long, ...).
    Os { addr: String, op: &'static str, source: io::Error },
    /// A file that is not a socket sits at a unix socket path; we never delete it.
    NotASocket { path: PathBuf },
    /// An inherited or `fd://` descriptor is unusable.
    BadFd { fd: RawFd, why: String },
    /// The same descriptor was named twice; adopting it twice would close it twice.
    DuplicateFd { fd: RawFd },
    /// `LISTEN_FDS`/`LISTEN_PID`/`GUNICORN_FD` hold something that is not a valid value.
    Env { var: &'static str, value: String },
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::Syntax { value, why } => write!(f, "invalid bind address {value:?}: {why}"),
            BindError::Resolve { host, source: Some(e) } => {
                write!(f, "cannot resolve host {host:?}: {e}")
            }
            BindError::Resolve { host, source: None } => {
                write!(f, "host {host:?} resolves to no address")
            }
            BindError::InUse { addr, attempts } => write!(
                f,
                "can't bind {addr}: the address is already in use (tried {attempts} time{}); \
                 another server, perhaps an old ferrocorn still shutting down, is listening \
                 there: stop it, or choose another address with --bind",
                if *attempts == 1 { "" } else { "s" }
            ),
            BindError::Os { addr, op, source } => write!(f, "can't {op} {addr}: {source}"),
            BindError::NotASocket { path } => write!(
                f,
                "can't bind unix:{}: a file that is not a socket exists at that path \
                 (remove it or choose another path)",
                path.display()
            ),
            BindError::BadFd { fd, why } => write!(f, "can't use file descriptor {fd}: {why}"),
            BindError::DuplicateFd { fd } => {
                write!(f, "file descriptor {fd} is named more than once")
            }
            BindError::Env { var, value } => {
                write!(f, "environment variable {var}={value:?} is not valid")
            }
        }
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BindError::Resolve { source: Some(e), .. } | BindError::Os { source: e, .. } => Some(e),
            _ => None,
        }
    }
}

fn syntax(value: &str, why: &'static str) -> BindError {
    BindError::Syntax { value: value.to_string(), why }
}

fn parse_port(value: &str, port: &str) -> Result<u16, BindError> {
    if port.is_empty() {
        return Err(syntax(value, "empty port"));
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax(value, "the port is not a number"));
    }
    port.parse::<u16>().map_err(|_| syntax(value, "the port must be between 0 and 65535"))
}

/// Parses a `--bind` value the way Gunicorn's `parse_address` reads it.
///
/// `HOST` gets port 8000; `:PORT` means every IPv4 interface (Python binds `""` as
/// `INADDR_ANY`); `tcp://` is an accepted prefix; `unix://PATH` is `unix:PATH`. Unlike Gunicorn,
/// an empty value, a bare IPv6 address without brackets and a port over 65535 are refused here
/// rather than at bind time.
pub fn parse_bind(value: &str) -> Result<BindAddr, BindError> {
    let value_in = value;
    let value = value.trim();
    if value.is_empty() {
        return Err(syntax(value_in, "empty address"));
    }
    if let Some(rest) = value.strip_prefix("unix:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err(syntax(value_in, "empty unix socket path"));
        }
        return Ok(BindAddr::Unix(PathBuf::from(path)));
    }
    if let Some(fd) = value.strip_prefix("fd://") {
        return match fd.parse::<RawFd>() {
            Ok(n) if n >= 0 => Ok(BindAddr::Fd(n)),
            _ => Err(syntax(value_in, "fd:// must be followed by a file descriptor number")),
        };
    }
    let netloc = value.strip_prefix("tcp://").unwrap_or(value);
    let (host, port) = if let Some(rest) = netloc.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(syntax(value_in, "missing ']' after an IPv6 address"));
        };
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(syntax(value_in, "the text in brackets is not an IPv6 address"));
        }
        let port = match after {
            "" => DEFAULT_PORT,
            _ => match after.strip_prefix(':') {
                Some(p) => parse_port(value_in, p)?,
                None => return Err(syntax(value_in, "expected ':PORT' after ']'")),
            },
        };
        (host.to_string(), port)
    } else if let Some((host, port)) = netloc.split_once(':') {
        if port.contains(':') {
            return Err(syntax(value_in, "an IPv6 address must be written in brackets: [ADDR]:PORT"));
        }
        let host = if host.is_empty() { Ipv4Addr::UNSPECIFIED.to_string() } else { host.to_string() };
        (host, parse_port(value_in, port)?)
    } else {
        (netloc.to_string(), DEFAULT_PORT)
    };
    if host.bytes().any(|b| b.is_ascii_whitespace() || b == b'/') {
        return Err(syntax(value_in, "the host contains a space or '/'"));
    }
    Ok(BindAddr::Tcp { host: host.to_ascii_lowercase(), port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> BindAddr {
        BindAddr::Tcp { host: host.to_string(), port }
    }

    #[test]
    fn parse_table() {
        let ok: &[(&str, BindAddr)] = &[
            ("127.0.0.1", tcp("127.0.0.1", 8000)),
            ("127.0.0.1:9000", tcp("127.0.0.1", 9000)),
            ("LocalHost:80", tcp("localhost", 80)),
            ("example.com", tcp("example.com", 8000)),
            (":8080", tcp("0.0.0.0", 8080)),
            ("tcp://10.0.0.1:81", tcp("10.0.0.1", 81)),
            ("[::1]:8001", tcp("::1", 8001)),
            ("[::]", tcp("::", 8000)),
            ("[FE80::1]:0", tcp("fe80::1", 0)),
            ("unix:/run/app.sock", BindAddr::Unix("/run/app.sock".into())),
            ("unix:///run/app.sock", BindAddr::Unix("/run/app.sock".into())),
            ("unix:rel.sock", BindAddr::Unix("rel.sock".into())),
            ("fd://3", BindAddr::Fd(3)),
        ];
        for (input, want) in ok {
            assert_eq!(parse_bind(input).as_ref().ok(), Some(want), "{input}");
        }
        let bad = [
            "",
            "   ",
            "host:",
            "host:http",
            "host:65536",
            "host:-1",
            "::1",
            "::1:80",
            "[::1",
            "[::1]80",
            "[nothost]:80",
            "unix:",
            "unix://",
            "fd://",
            "fd://x",
            "fd://-3",
            "a b:80",
        ];
        for input in bad {
            let err = parse_bind(input).expect_err(input);
            assert!(matches!(err, BindError::Syntax { .. }), "{input}: {err}");
            assert!(err.to_string().contains("invalid bind address"), "{err}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["127.0.0.1:80", "[::1]:80", "unix:/x.sock", "fd://4"] {
            let parsed = parse_bind(s).expect(s);
            assert_eq!(parsed.to_string(), s);
            assert_eq!(parse_bind(&parsed.to_string()).ok(), Some(parsed));
        }
    }
}

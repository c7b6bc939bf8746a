//! PROXY protocol v1 (text) and v2 (binary) headers, as sent by HAProxy and cloud balancers.
//!
//! The format is HAProxy's "The PROXY protocol" specification (versions 1 and 2). The caller
//! calls [`parse_proxy_header`] once, at the start of a connection, when `proxy_protocol` is on.

use crate::HttpError;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Addresses carried by a PROXY header. `None` for `UNKNOWN` / `LOCAL` (use the socket's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyInfo {
    pub source: Option<SocketAddr>,
    pub destination: Option<SocketAddr>,
    /// Which protocol version carried it, for a caller that only allows one (Gunicorn's
    /// `proxy_protocol` can be restricted to v1 or v2).
    pub version: ProxyVersion,
}

/// PROXY protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyVersion {
    /// The text form, `PROXY TCP4 ...\r\n`.
    V1,
    /// The binary form, starting with the 12-byte signature.
    V2,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ProxyParsed {
    /// A whole PROXY header; `consumed` bytes belong to it, the request follows.
    Complete { info: ProxyInfo, consumed: usize },
    /// The bytes so far are a prefix of a PROXY header; read more.
    Partial,
    /// The connection does not start with a PROXY header; nothing was consumed. Gunicorn
    /// serves such a connection as plain HTTP (corpus case `valid/pp_03`), so the caller
    /// decides whether to accept it.
    NotProxy,
}

/// v1 lines are at most 107 bytes including the CRLF (spec section 2.1).
const V1_MAX: usize = 107;
const V1_PREFIX: &[u8] = b"PROXY ";
/// The v2 signature (spec section 2.2): it cannot start any valid HTTP/1 request.
const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// A header that carries no addresses (`UNKNOWN`, `LOCAL`, `UNSPEC`): use the socket's.
const fn no_addresses(version: ProxyVersion) -> ProxyInfo {
    ProxyInfo { source: None, destination: None, version }
}

/// Parses a PROXY v1 or v2 header at the start of `buf`.
pub fn parse_proxy_header(buf: &[u8]) -> Result<ProxyParsed, HttpError> {
    let is_prefix_of = |sig: &[u8]| buf.len() < sig.len() && sig.starts_with(buf);
    if buf.starts_with(V2_SIG) {
        parse_v2(buf)
    } else if buf.starts_with(V1_PREFIX) {
        parse_v1(buf)
    } else if is_prefix_of(V2_SIG) || is_prefix_of(V1_PREFIX) {
        Ok(ProxyParsed::Partial)
    } else {
        Ok(ProxyParsed::NotProxy)
    }
}

/// `PROXY TCP4|TCP6 src dst sport dport\r\n` or `PROXY UNKNOWN ...\r\n`, single spaces.
fn parse_v1(buf: &[u8]) -> Result<ProxyParsed, HttpError> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(lf) = memchr::memchr(b'\n', window) else {
        return if buf.len() >= V1_MAX { Err(HttpError::InvalidProxyLine) } else { Ok(ProxyParsed::Partial) };
    };
    if window[lf - 1] != b'\r' {
        return Err(HttpError::InvalidProxyLine);
    }
    let consumed = lf + 1;
    let line = &window[V1_PREFIX.len()..lf - 1];
    let mut parts = line.split(|&b| b == b' ');
    let v6 = match parts.next() {
        // "the receiver must ignore anything presented before the CRLF is found"
        Some(b"UNKNOWN") => return Ok(ProxyParsed::Complete { info: no_addresses(ProxyVersion::V1), consumed }),
        Some(b"TCP4") => false,
        Some(b"TCP6") => true,
        _ => return Err(HttpError::InvalidProxyLine),
    };
    let mut next = || parts.next().ok_or(HttpError::InvalidProxyLine);
    let (src, dst, sport, dport) = (next()?, next()?, next()?, next()?);
    if parts.next().is_some() {
        return Err(HttpError::InvalidProxyLine);
    }
    let (src, dst) = (parse_ip(src, v6)?, parse_ip(dst, v6)?);
    let (sport, dport) = (parse_port(sport)?, parse_port(dport)?);
    Ok(ProxyParsed::Complete {
        info: ProxyInfo {
            source: Some(SocketAddr::new(src, sport)),
            destination: Some(SocketAddr::new(dst, dport)),
            version: ProxyVersion::V1,
        },
        consumed,
    })
}

/// An address of the family the line announced (std's parsers are strict: no leading
/// zeros in IPv4 octets, no zone ids).
fn parse_ip(s: &[u8], v6: bool) -> Result<IpAddr, HttpError> {
    let s = std::str::from_utf8(s).map_err(|_| HttpError::InvalidProxyLine)?;
    let ip = if v6 { s.parse::<Ipv6Addr>().map(IpAddr::V6) } else { s.parse::<Ipv4Addr>().map(IpAddr::V4) };
    ip.map_err(|_| HttpError::InvalidProxyLine)
}

/// A decimal port 0..=65535 without sign or leading zeros.
fn parse_port(s: &[u8]) -> Result<u16, HttpError> {
    let ok = !s.is_empty() && s.len() <= 5 && s.iter().all(u8::is_ascii_digit) && (s == b"0" || s[0] != b'0');
    if !ok {
        return Err(HttpError::InvalidProxyLine);
    }
    let n = s.iter().fold(0u32, |n, &b| n * 10 + u32::from(b - b'0'));
    u16::try_from(n).map_err(|_| HttpError::InvalidProxyLine)
}

/// Binary header: signature, version/command, family/protocol, 16-bit length, addresses,
/// then TLVs, which are skipped.
fn parse_v2(buf: &[u8]) -> Result<ProxyParsed, HttpError> {
    let [ver_cmd, fam, hi, lo] = match buf.get(12..16) {
        Some(&[a, b, c, d]) => [a, b, c, d],
        _ => return Ok(ProxyParsed::Partial),
    };
    if ver_cmd >> 4 != 2 {
        return Err(HttpError::InvalidProxyHeader);
    }
    let len = usize::from(u16::from_be_bytes([hi, lo]));
    let consumed = 16 + len;
    let Some(body) = buf.get(16..consumed) else {
        // The command is checked before waiting for the rest, so junk fails fast.
        return if ver_cmd & 0x0f > 1 { Err(HttpError::InvalidProxyHeader) } else { Ok(ProxyParsed::Partial) };
    };
    match ver_cmd & 0x0f {
        // LOCAL: a health check from the proxy itself; addresses are those of the socket.
        0 => return Ok(ProxyParsed::Complete { info: no_addresses(ProxyVersion::V2), consumed }),
        1 => {}
        _ => return Err(HttpError::InvalidProxyHeader),
    }
    let info = match fam {
        // UNSPEC, or AF_UNIX stream: no IP addresses to report.
        0x00 | 0x31 => no_addresses(ProxyVersion::V2),
        // AF_INET, STREAM.
        0x11 => {
            let a = body.get(..12).ok_or(HttpError::InvalidProxyHeader)?;
            let ip = |o: usize| IpAddr::V4(Ipv4Addr::new(a[o], a[o + 1], a[o + 2], a[o + 3]));
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            ProxyInfo {
                source: Some(SocketAddr::new(ip(0), port(8))),
                destination: Some(SocketAddr::new(ip(4), port(10))),
                version: ProxyVersion::V2,
            }
        }
        // AF_INET6, STREAM.
        0x21 => {
            let a = body.get(..36).ok_or(HttpError::InvalidProxyHeader)?;
            let ip = |o: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&a[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(b))
            };
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            ProxyInfo {
                source: Some(SocketAddr::new(ip(0), port(32))),
                destination: Some(SocketAddr::new(ip(16), port(34))),
                version: ProxyVersion::V2,
            }
        }
        // Datagram transports or unknown families cannot carry an HTTP/1 connection.
        _ => return Err(HttpError::InvalidProxyHeader),
    };
    Ok(ProxyParsed::Complete { info, consumed })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> Option<SocketAddr> {
        s.parse().ok()
    }

    /// Every strict prefix must be Partial (or the same error), the whole must match.
    fn check_prefixes(input: &[u8], expect: Result<ProxyParsed, HttpError>) {
        for cut in 0..input.len() {
            match parse_proxy_header(&input[..cut]) {
                Ok(ProxyParsed::Partial) => {}
                other => assert_eq!(other, expect, "prefix of {cut} bytes"),
            }
        }
        assert_eq!(parse_proxy_header(input), expect);
    }

    #[test]
    fn v1() {
        let line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET";
        check_prefixes(
            line,
            Ok(ProxyParsed::Complete {
                info: ProxyInfo {
                    source: sa("192.168.0.1:56324"),
                    destination: sa("192.168.0.11:443"),
                    version: ProxyVersion::V1,
                },
                consumed: line.len() - 3,
            }),
        );
        let line = b"PROXY TCP6 ::1 2001:db8::2 1 65535\r\n";
        check_prefixes(
            line,
            Ok(ProxyParsed::Complete {
                info: ProxyInfo { source: sa("[::1]:1"), destination: sa("[2001:db8::2]:65535"), version: ProxyVersion::V1 },
                consumed: line.len(),
            }),
        );
        check_prefixes(
            b"PROXY UNKNOWN whatever\r\n",
            Ok(ProxyParsed::Complete { info: no_addresses(ProxyVersion::V1), consumed: 24 }),
        );
    }

    #[test]
    fn v1_refusals() {
        for bad in [
            &b"PROXY TCP4 192.168.0.1 192.16...\r\n"[..],
            b"PROXY TCP4 192.168.0.1 192.168.0.11 65iii 100000\r\n",
            b"PROXY TCP4 not-an-ip 192.168.0.11 56324 443\r\n",
            b"PROXY TCP4 ::1 ::1 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 65536\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n",
            b"PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n",
            b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n",
            b"PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n",
        ] {
            check_prefixes(bad, Err(HttpError::InvalidProxyLine));
        }
        let long = [&b"PROXY UNKNOWN "[..], &[b'x'; 120][..]].concat();
        assert_eq!(parse_proxy_header(&long), Err(HttpError::InvalidProxyLine));
    }

    #[test]
    fn v2() {
        let mut v4 = V2_SIG.to_vec();
        v4.extend_from_slice(&[0x21, 0x11, 0, 12, 192, 168, 1, 10, 192, 168, 1, 1, 0x30, 0x39, 0x01, 0xbb]);
        v4.extend_from_slice(b"GET");
        check_prefixes(
            &v4,
            Ok(ProxyParsed::Complete {
                info: ProxyInfo {
                    source: sa("192.168.1.10:12345"),
                    destination: sa("192.168.1.1:443"),
                    version: ProxyVersion::V2,
                },
                consumed: 28,
            }),
        );
        // LOCAL with a TLV: skipped.
        let mut local = V2_SIG.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 3, 0x04, 0, 0]);
        check_prefixes(&local, Ok(ProxyParsed::Complete { info: no_addresses(ProxyVersion::V2), consumed: 19 }));
        let mut bad = V2_SIG.to_vec();
        bad.extend_from_slice(&[0x11, 0x11, 0, 0]);
        assert_eq!(parse_proxy_header(&bad), Err(HttpError::InvalidProxyHeader));
        let mut short = V2_SIG.to_vec();
        short.extend_from_slice(&[0x21, 0x11, 0, 4, 1, 2, 3, 4]);
        assert_eq!(parse_proxy_header(&short), Err(HttpError::InvalidProxyHeader));
    }

    #[test]
    fn not_proxy() {
        assert_eq!(parse_proxy_header(b"GET / HTTP/1.1\r\n"), Ok(ProxyParsed::NotProxy));
        assert_eq!(parse_proxy_header(b"PRO"), Ok(ProxyParsed::Partial));
        assert_eq!(parse_proxy_header(b"\r\n\r\n"), Ok(ProxyParsed::Partial));
        assert_eq!(parse_proxy_header(b"\r\nGET"), Ok(ProxyParsed::NotProxy));
    }
}

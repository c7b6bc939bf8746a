//! PROXY protocol v1 (text) and v2 (binary) headers, as sent by HAProxy and cloud balancers.

use crate::HttpError;
use std::net::SocketAddr;

/// Addresses carried by a PROXY header. `None` for `UNKNOWN` / `LOCAL` (use the socket's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyInfo {
    pub source: Option<SocketAddr>,
    pub destination: Option<SocketAddr>,
}

#[derive(Debug)]
pub enum ProxyParsed {
    Complete { info: ProxyInfo, consumed: usize },
    Partial,
}

/// Parses a PROXY v1 or v2 header at the start of `buf`.
pub fn parse_proxy_header(buf: &[u8]) -> Result<ProxyParsed, HttpError> {
    let _ = buf;
    Err(HttpError::Invalid("proxy protocol not written yet"))
}

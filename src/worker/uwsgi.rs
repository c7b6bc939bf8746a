//! `protocol = "uwsgi"`: listeners that read nginx's `uwsgi_pass` packets instead of HTTP/1
//! request heads. The packet is parsed in `ferrocorn_http::uwsgi` into the same `RequestHead`;
//! this module decides who may speak it (`uwsgi_allow_ips`) and carries the front end's view
//! of the client (`REMOTE_ADDR`/`REMOTE_PORT`, the scheme) into the connection facts the
//! environ and the access log read. Responses are plain HTTP/1, which nginx's uwsgi module
//! expects, without chunking (the parsed head says HTTP/1.0, see `UwsgiRequest::head`).

use crate::wsgi::{AllowList, ConnInfo, Peer};
use ferrocorn_http::{HttpError, ParseOptions, Parsed, ProxyInfo, ProxyVersion, Scheme, UwsgiParsed};
use std::net::SocketAddr;

/// The wire protocol of every listener (`protocol`).
#[derive(Debug, Clone)]
pub enum Wire {
    Http,
    /// uwsgi packets, from TCP peers in this list (`uwsgi_allow_ips`) or any unix-socket peer.
    Uwsgi(AllowList),
}

/// Whether this peer may send requests at all. Gunicorn checks `uwsgi_allow_ips` as soon as
/// the connection is served, before reading anything, and never for unix sockets (they have
/// no address; only local processes reach them).
pub(super) fn admit(wire: &Wire, peer: &Peer) -> Result<(), HttpError> {
    match (wire, peer) {
        (Wire::Uwsgi(allow), Peer::Tcp(addr)) if !allow.allows(addr.ip()) => Err(HttpError::ForbiddenUwsgiRequest),
        _ => Ok(()),
    }
}

/// What the accepted socket itself says about the client, kept so that each request's vars
/// replace it rather than pile onto the previous request's.
pub(super) struct Socket {
    tls: bool,
    proxy: Option<ProxyInfo>,
}

impl Socket {
    pub(super) fn of(conn: &ConnInfo) -> Socket {
        Socket { tls: conn.tls, proxy: conn.proxy.clone() }
    }
}

/// Parses the next request head in the listener's protocol. For uwsgi, a complete packet also
/// points `conn` at the client the vars name: the peer already passed `uwsgi_allow_ips`, so it
/// is trusted to say who the client is, as a PROXY header from `proxy_allow_ips` is.
pub(super) fn parse_head(
    buf: &[u8],
    opts: &ParseOptions,
    wire: &Wire,
    conn: &mut ConnInfo,
    socket: &Socket,
) -> Result<Parsed, HttpError> {
    if let Wire::Http = wire {
        return ferrocorn_http::parse_request_head(buf, opts);
    }
    let (request, consumed) = match ferrocorn_http::parse_uwsgi_request(buf, opts)? {
        UwsgiParsed::Partial => return Ok(Parsed::Partial),
        UwsgiParsed::Complete { request, consumed } => (request, consumed),
    };
    let tls = match request.scheme {
        Some(Scheme::Https) => true,
        Some(Scheme::Http) => false,
        None => socket.tls,
    };
    let proxy = match request.remote {
        Some(source) => Some(client(source)),
        None => socket.proxy.clone(),
    };
    // Only rebuilt when something changed: the environ caches per-connection keys in `conn`.
    if conn.tls != tls || conn.proxy.as_ref().map(|p| p.source) != proxy.as_ref().map(|p| p.source) {
        let mut fresh = ConnInfo::new(conn.peer.clone(), conn.server.clone());
        fresh.tls = tls;
        fresh.proxy = proxy;
        *conn = fresh;
    }
    Ok(Parsed::Complete { head: request.head, consumed })
}

/// The client address as the environ and the access log take it from a PROXY header.
fn client(source: SocketAddr) -> ProxyInfo {
    // The version is only consulted when a PROXY header is read, which is over by now.
    ProxyInfo { source: Some(source), destination: None, version: ProxyVersion::V1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_list_applies_to_tcp_only() {
        let wire = Wire::Uwsgi(AllowList::parse(&["10.0.0.0/8".into()]).unwrap());
        assert_eq!(admit(&wire, &Peer::Tcp("10.1.2.3:5".parse().unwrap())), Ok(()));
        assert_eq!(admit(&wire, &Peer::Tcp("192.0.2.1:5".parse().unwrap())), Err(HttpError::ForbiddenUwsgiRequest));
        assert_eq!(admit(&wire, &Peer::Unix), Ok(()));
        assert_eq!(admit(&Wire::Http, &Peer::Tcp("192.0.2.1:5".parse().unwrap())), Ok(()));
    }
}

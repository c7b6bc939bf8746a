//! HTTP/1.x for ferrocorn: request heads, body framing, chunked decoding, PROXY protocol,
//! the uwsgi binary protocol, response heads. Nothing here knows about Python, sockets or the config file: callers pass
//! plain options and byte slices, which is what makes this crate the piece to fuzz.
//!
//! The strictness follows Gunicorn (the compatibility target) where it is stricter than
//! RFC 9112, and RFC 9112 otherwise; each decision cites its source next to the code.

pub mod body;
mod chars;
mod chunk_ext;
pub mod error;
pub mod head;
pub mod proxy;
pub mod response;
pub mod uwsgi;

pub use body::ChunkedDecoder;
pub use error::HttpError;
pub use head::{Framing, Header, HeaderMap, ParseOptions, Parsed, RequestHead, Version, parse_request_head};
pub use proxy::{ProxyInfo, ProxyParsed, ProxyVersion, parse_proxy_header};
pub use response::{BodyFraming, ResponseError, ResponsePlan, http_date, reason_phrase};
pub use uwsgi::{Scheme, UwsgiParsed, UwsgiRequest, parse_uwsgi_request};

//! Response heads: validating what the application sends and choosing how the body is framed.

use crate::{RequestHead, Version};
use std::fmt;

/// Something wrong with the status or headers an application supplied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseError {
    /// Placeholder until the validator lands.
    Invalid(&'static str),
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::Invalid(why) => write!(f, "invalid response: {why}"),
        }
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
pub fn validate_status(status: &[u8]) -> Result<u16, ResponseError> {
    let _ = status;
    Err(ResponseError::Invalid("not written yet"))
}

/// Validates one response header field from the application (no CR/LF/NUL, token name, ...).
pub fn validate_header(name: &[u8], value: &[u8]) -> Result<(), ResponseError> {
    let _ = (name, value);
    Err(ResponseError::Invalid("not written yet"))
}

/// Chooses framing and keep-alive for a response. `server_keep_alive` is false when the server
/// wants to close anyway (shutting down, max_requests reached, keepalive disabled).
pub fn plan(req: &RequestHead, status: u16, headers: &[(&[u8], &[u8])], server_keep_alive: bool) -> ResponsePlan {
    let _ = (req, status, headers, server_keep_alive, Version::Http11);
    ResponsePlan { framing: BodyFraming::UntilClose, keep_alive: false }
}

/// Appends a complete response head (status line, app headers, `Date`, `Server`, framing
/// headers, `Connection` when needed, blank line) to `out`.
pub fn write_head(
    out: &mut Vec<u8>,
    version: Version,
    status: &[u8],
    headers: &[(&[u8], &[u8])],
    plan: &ResponsePlan,
    date: &[u8],
    server: &[u8],
) {
    let _ = (out, version, status, headers, plan, date, server);
}

/// Appends one chunk in chunked encoding (`size CRLF data CRLF`); an empty `data` writes nothing.
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    let _ = (out, data);
}

/// The last chunk of a chunked body.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// A complete minimal error response (`Connection: close`) for a refused request.
pub fn error_response(status: u16, reason: &str, body: &str) -> Vec<u8> {
    let _ = (status, reason, body);
    Vec::new()
}

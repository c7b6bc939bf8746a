//! Request heads: request line and header fields, with Gunicorn's limits and strictness knobs.

use crate::HttpError;

/// HTTP version of a request (only 1.0 and 1.1 are accepted).
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
    /// `limit_request_line`; 0 means unlimited.
    pub limit_request_line: usize,
    /// `limit_request_fields`.
    pub limit_request_fields: usize,
    /// `limit_request_field_size`; 0 means unlimited.
    pub limit_request_field_size: usize,
    pub permit_obsolete_folding: bool,
    pub strip_header_spaces: bool,
    pub permit_unconventional_http_method: bool,
    pub casefold_http_method: bool,
    pub header_map: HeaderMap,
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
            casefold_http_method: false,
            header_map: HeaderMap::Drop,
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

/// Parses a request head from the start of `buf`.
pub fn parse_request_head(buf: &[u8], opts: &ParseOptions) -> Result<Parsed, HttpError> {
    let _ = (buf, opts);
    Err(HttpError::Invalid("parser not written yet"))
}

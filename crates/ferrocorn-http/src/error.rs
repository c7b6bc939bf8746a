//! One error type for everything a client can get wrong, with one mapping to a status code.

use std::fmt;

/// A request the server refuses. Every variant maps to exactly one status code in
/// [`HttpError::status`]; the connection is closed after the error response.
///
/// The variants are fieldless (like httparse's error) so that returning one costs nothing and
/// never echoes client bytes into logs; the `Display` text says what was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpError {
    // --- request line (RFC 9112 section 3) ---
    /// The request line is not `method SP request-target SP HTTP-version`.
    InvalidRequestLine,
    /// The method is not a token, or breaks Gunicorn's conventional-method rule.
    InvalidMethod,
    /// The request-target is not in a form allowed for this method, or has bytes outside
    /// visible ASCII.
    InvalidTarget,
    /// The version is not `HTTP/DIGIT.DIGIT`.
    InvalidVersion,
    /// A well-formed version whose major number is not 1 (505, RFC 9110 section 15.6.6).
    UnsupportedVersion,
    /// The request line is longer than `limit_request_line` (414).
    RequestLineTooLarge,
    /// More than one empty line before the request line.
    UnexpectedEmptyLine,

    // --- header section (RFC 9112 section 5, RFC 9110 section 5) ---
    /// A field line without a colon, or with an empty name.
    InvalidHeaderLine,
    /// A field name that is not a token (also whitespace before the colon, RFC 9112 5.1).
    InvalidHeaderName,
    /// A field value containing a control character.
    InvalidHeaderValue,
    /// A NUL byte in the request head.
    NulByte,
    /// A line ended by LF alone; RFC 9112 section 2.2 lets a server refuse it, and Gunicorn does.
    BareLf,
    /// A field line starting with whitespace while `permit_obsolete_folding` is off.
    ObsoleteFolding,
    /// More fields than `limit_request_fields` (431).
    TooManyFields,
    /// A field line (with its folded continuations) longer than `limit_request_field_size` (431).
    FieldTooLarge,
    /// A field name containing `_` with `header_map = refuse`.
    UnderscoreInHeaderName,
    /// A singleton field (`Host`, `Content-Type`) sent twice.
    DuplicateField,

    // --- message body framing (RFC 9112 section 6) ---
    /// `Content-Length` is not a plain decimal number that fits in 64 bits.
    InvalidContentLength,
    /// `Content-Length` sent more than once.
    DuplicateContentLength,
    /// Both `Content-Length` and `Transfer-Encoding` (RFC 9112 section 6.1 request smuggling).
    ContentLengthWithTransferEncoding,
    /// `Transfer-Encoding` whose final coding is not `chunked`, that applies `chunked` twice,
    /// or that arrives in an HTTP/1.0 request.
    InvalidTransferEncoding,
    /// A transfer coding this server does not know (501, RFC 9112 section 6.1).
    UnsupportedTransferCoding,

    // --- chunked body (RFC 9112 section 7.1) ---
    /// A chunk size that is not hex digits, overflows 64 bits, or has stray whitespace.
    InvalidChunkSize,
    /// A malformed chunk extension (bad quoted string, control character, bare CR).
    InvalidChunkExtension,
    /// Chunk data not followed by CRLF, or a trailer section not ended by CRLF.
    InvalidChunkTerminator,
    /// A chunk line longer than the decoder's line limit.
    ChunkLineTooLarge,
    /// A malformed trailer field line.
    InvalidTrailer,
    /// A trailer field that must not be sent as a trailer (RFC 9110 section 6.5.1).
    ForbiddenTrailer,
    /// More trailer fields, or longer ones, than the limits allow (431).
    TrailersTooLarge,

    // --- PROXY protocol ---
    /// A malformed PROXY v1 text line.
    InvalidProxyLine,
    /// A malformed PROXY v2 binary header.
    InvalidProxyHeader,
    /// A PROXY header from a peer outside `proxy_allow_ips` (Gunicorn's ForbiddenProxyRequest).
    ForbiddenProxyRequest,

    // --- uwsgi binary protocol ---
    /// A uwsgi packet whose vars block is truncated or inconsistent with its declared size.
    InvalidUwsgiPacket,
    /// A uwsgi packet whose `modifier1` is not 0 (a WSGI request); Gunicorn answers 501.
    UnsupportedUwsgiModifier,
    /// A uwsgi packet from a TCP peer outside `uwsgi_allow_ips` (403, as in Gunicorn).
    ForbiddenUwsgiRequest,
}

impl HttpError {
    /// The status code sent back for this error. Gunicorn answers 400 for nearly everything;
    /// where RFC 9110 has a precise code we use it.
    pub fn status(&self) -> u16 {
        use HttpError::*;
        match self {
            // RFC 9110 section 15.5.15: 414 URI Too Long.
            RequestLineTooLarge => 414,
            // RFC 6585 section 5: 431 Request Header Fields Too Large.
            TooManyFields | FieldTooLarge | TrailersTooLarge => 431,
            // RFC 9112 section 6.1: unknown transfer coding -> 501.
            UnsupportedTransferCoding => 501,
            // RFC 9110 section 15.6.6.
            UnsupportedVersion => 505,
            // Gunicorn answers an untrusted PROXY header with 403.
            ForbiddenProxyRequest | ForbiddenUwsgiRequest => 403,
            UnsupportedUwsgiModifier => 501,
            InvalidRequestLine
            | InvalidMethod
            | InvalidTarget
            | InvalidVersion
            | UnexpectedEmptyLine
            | InvalidHeaderLine
            | InvalidHeaderName
            | InvalidHeaderValue
            | NulByte
            | BareLf
            | ObsoleteFolding
            | UnderscoreInHeaderName
            | DuplicateField
            | InvalidContentLength
            | DuplicateContentLength
            | ContentLengthWithTransferEncoding
            | InvalidTransferEncoding
            | InvalidChunkSize
            | InvalidChunkExtension
            | InvalidChunkTerminator
            | ChunkLineTooLarge
            | InvalidTrailer
            | ForbiddenTrailer
            | InvalidProxyLine
            | InvalidProxyHeader
            | InvalidUwsgiPacket => 400,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HttpError::*;
        let msg = match self {
            InvalidRequestLine => "malformed request line",
            InvalidMethod => "invalid request method",
            InvalidTarget => "invalid request target",
            InvalidVersion => "malformed HTTP version",
            UnsupportedVersion => "HTTP version not supported",
            RequestLineTooLarge => "request line longer than limit_request_line",
            UnexpectedEmptyLine => "more than one empty line before the request line",
            InvalidHeaderLine => "header line without a field name and colon",
            InvalidHeaderName => "invalid header field name",
            InvalidHeaderValue => "control character in header field value",
            NulByte => "NUL byte in request head",
            BareLf => "line terminated by a bare LF instead of CRLF",
            ObsoleteFolding => "obsolete line folding in header (permit_obsolete_folding is off)",
            TooManyFields => "more header fields than limit_request_fields",
            FieldTooLarge => "header field longer than limit_request_field_size",
            UnderscoreInHeaderName => "header field name contains '_' (header_map is refuse)",
            DuplicateField => "a header field that must be unique was sent twice",
            InvalidContentLength => "invalid Content-Length",
            DuplicateContentLength => "Content-Length sent more than once",
            ContentLengthWithTransferEncoding => "both Content-Length and Transfer-Encoding sent",
            InvalidTransferEncoding => "invalid Transfer-Encoding (chunked must be final, once, in HTTP/1.1)",
            UnsupportedTransferCoding => "unsupported transfer coding",
            InvalidChunkSize => "invalid chunk size",
            InvalidChunkExtension => "invalid chunk extension",
            InvalidChunkTerminator => "chunk data or trailer section not terminated by CRLF",
            ChunkLineTooLarge => "chunk size line too long",
            InvalidTrailer => "invalid trailer field",
            ForbiddenTrailer => "field not allowed in trailers",
            TrailersTooLarge => "trailer section exceeds the header limits",
            InvalidProxyLine => "invalid PROXY protocol v1 line",
            InvalidProxyHeader => "invalid PROXY protocol v2 header",
            ForbiddenProxyRequest => "PROXY protocol header from a peer not in proxy_allow_ips",
            InvalidUwsgiPacket => "malformed uwsgi packet",
            UnsupportedUwsgiModifier => "unsupported uwsgi modifier1 (only 0, a WSGI request, is served)",
            ForbiddenUwsgiRequest => "uwsgi request from a peer not in uwsgi_allow_ips",
        };
        f.write_str(msg)
    }
}

impl std::error::Error for HttpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precise_statuses() {
        assert_eq!(HttpError::RequestLineTooLarge.status(), 414);
        assert_eq!(HttpError::TooManyFields.status(), 431);
        assert_eq!(HttpError::FieldTooLarge.status(), 431);
        assert_eq!(HttpError::UnsupportedTransferCoding.status(), 501);
        assert_eq!(HttpError::UnsupportedVersion.status(), 505);
        assert_eq!(HttpError::BareLf.status(), 400);
        assert_eq!(HttpError::InvalidChunkSize.to_string(), "invalid chunk size");
    }
}

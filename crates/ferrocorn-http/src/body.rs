//! Request body decoding: `Transfer-Encoding: chunked` (RFC 9112 section 7.1).
//!
//! `Content-Length` bodies need no decoder (the caller counts bytes); a request without either
//! has no body (RFC 9112 section 6.3, last item).
//!
//! httparse has `parse_chunk_size`, but it accepts whitespace after the size without an
//! extension (`0 \r\n`) and any byte inside extensions (including a bare CR), both of which
//! Gunicorn refuses; it is also not incremental. Hence this small state machine.

use crate::HttpError;
use crate::chars::{FIELD_VALUE, TCHAR};
use crate::chunk_ext::ExtState;

/// Where the decoder is inside the chunked body. One variant per step of the grammar:
///
/// ```text
/// chunked-body = *chunk last-chunk trailer-section CRLF
/// chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first hex digit of a chunk size.
    SizeStart,
    /// Inside the hex digits.
    Size,
    /// BWS after the size; only a `;` (extension) may follow (RFC 9112 section 7.1.1).
    SizeWs,
    /// Inside the chunk extensions, after the first `;`.
    Ext(ExtState),
    /// CR of the chunk-size line seen; `ext` says whether an extension was being read.
    SizeLf { ext: bool },
    /// Chunk data; `remaining` bytes to go.
    Data,
    /// CR after the chunk data expected.
    DataCr,
    /// LF after the chunk data expected.
    DataLf,
    /// Start of a trailer field line, or of the final CRLF.
    TrailerStart,
    /// Inside a trailer field name.
    TrailerName,
    /// Inside a trailer field value.
    TrailerValue,
    /// CR of a trailer line seen.
    TrailerLf,
    /// CR of the final empty line seen.
    EndLf,
    /// The whole chunked body has been read.
    Done,
}

/// Trailer fields that must not come after the body (RFC 9110 section 6.5.1): framing,
/// routing and connection-management fields. Gunicorn refuses these too.
const FORBIDDEN_TRAILERS: &[&[u8]] =
    &[b"content-length", b"transfer-encoding", b"host", b"connection", b"keep-alive", b"te", b"trailer", b"upgrade"];
/// Longest name in [`FORBIDDEN_TRAILERS`]; longer names need not be remembered.
const NAME_BUF: usize = 17;

/// Incremental chunked decoder: push any split of the input, get the data bytes out.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Chunk size being parsed, then bytes of chunk data left.
    remaining: u64,
    /// Bytes in the current chunk-size or trailer line so far.
    line_len: usize,
    trailer_fields: usize,
    /// The start of the current trailer name, for the forbidden-field check.
    name: [u8; NAME_BUF],
    name_len: usize,
    max_line: usize,
    max_trailer_fields: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::with_limits(8190, 100)
    }
}

impl ChunkedDecoder {
    /// A decoder with Gunicorn's default limits (8190-byte lines, 100 trailer fields).
    pub fn new() -> Self {
        ChunkedDecoder::default()
    }

    /// A decoder whose chunk-size lines and trailer lines are limited to `max_line` bytes and
    /// whose trailer section has at most `max_trailer_fields` fields; pass the head limits
    /// (`limit_request_field_size`, `limit_request_fields`). 0 means the default.
    pub fn with_limits(max_line: usize, max_trailer_fields: usize) -> Self {
        ChunkedDecoder {
            state: State::SizeStart,
            remaining: 0,
            line_len: 0,
            trailer_fields: 0,
            name: [0; NAME_BUF],
            name_len: 0,
            max_line: if max_line == 0 { 8190 } else { max_line },
            max_trailer_fields: if max_trailer_fields == 0 { 100 } else { max_trailer_fields },
        }
    }

    /// Decodes as much of `input` as it can, appending body data to `out`. Returns how many
    /// bytes of `input` were consumed; bytes after the final chunk and trailers are not consumed
    /// (they belong to the next pipelined request).
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, HttpError> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Done => break,
                State::Data => {
                    let avail = input.len() - i;
                    let n = usize::try_from(self.remaining).map_or(avail, |r| r.min(avail));
                    out.extend_from_slice(&input[i..i + n]);
                    i += n;
                    self.remaining -= n as u64;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                }
                _ => {
                    self.step(input[i])?;
                    i += 1;
                }
            }
        }
        Ok(i)
    }

    /// True once the last chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Advances over one byte of a chunk-size line, a CRLF or the trailer section.
    fn step(&mut self, b: u8) -> Result<(), HttpError> {
        use State::*;
        let in_size_line = matches!(self.state, SizeStart | Size | SizeWs | Ext(_));
        if in_size_line {
            self.line_len += 1;
            if self.line_len > self.max_line {
                return Err(HttpError::ChunkLineTooLarge);
            }
        }
        self.state = match (self.state, b) {
            (_, b'\n') if in_size_line => return Err(HttpError::BareLf),
            (SizeStart, _) => {
                // 1*HEXDIG: no sign, no whitespace, no empty size.
                self.remaining = u64::from(hex(b).ok_or(HttpError::InvalidChunkSize)?);
                Size
            }
            (Size, b'\r') => SizeLf { ext: false },
            (Size, b';') => Ext(ExtState::NameStart),
            (Size, b' ' | b'\t') => SizeWs,
            (Size, _) => {
                let d = hex(b).ok_or(HttpError::InvalidChunkSize)?;
                self.remaining = self
                    .remaining
                    .checked_mul(16)
                    .and_then(|v| v.checked_add(u64::from(d)))
                    .ok_or(HttpError::InvalidChunkSize)?;
                Size
            }
            (SizeWs, b' ' | b'\t') => SizeWs,
            (SizeWs, b';') => Ext(ExtState::NameStart),
            (SizeWs, _) => return Err(HttpError::InvalidChunkSize),
            // The grammar lives in chunk_ext.rs; the line may end only after a whole extension.
            (Ext(e), b'\r') if e.may_end() => SizeLf { ext: true },
            (Ext(e), _) => Ext(e.next(b).ok_or(HttpError::InvalidChunkExtension)?),
            (SizeLf { .. }, b'\n') => {
                self.line_len = 0;
                if self.remaining == 0 { TrailerStart } else { Data }
            }
            (SizeLf { ext: true }, _) => return Err(HttpError::InvalidChunkExtension),
            (SizeLf { ext: false }, _) => return Err(HttpError::InvalidChunkSize),
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => SizeStart,
            (DataCr | DataLf, _) => return Err(HttpError::InvalidChunkTerminator),
            // trailer-section = *( field-line CRLF ); parsed with limits and discarded.
            (TrailerStart, b'\r') => EndLf,
            (TrailerStart, b'\n') => return Err(HttpError::BareLf),
            (TrailerStart, _) if TCHAR[b as usize] => {
                self.trailer_fields += 1;
                if self.trailer_fields > self.max_trailer_fields {
                    return Err(HttpError::TrailersTooLarge);
                }
                self.line_len = 1;
                self.name[0] = b.to_ascii_lowercase();
                self.name_len = 1;
                TrailerName
            }
            // Includes obs-fold (a line starting with whitespace): refused in trailers.
            (TrailerStart, _) => return Err(HttpError::InvalidTrailer),
            (TrailerName, b':') => {
                self.trailer_line_byte()?;
                let name = &self.name[..self.name_len.min(NAME_BUF)];
                if self.name_len <= NAME_BUF && FORBIDDEN_TRAILERS.contains(&name) {
                    return Err(HttpError::ForbiddenTrailer);
                }
                TrailerValue
            }
            (TrailerName, _) if TCHAR[b as usize] => {
                self.trailer_line_byte()?;
                if self.name_len < NAME_BUF {
                    self.name[self.name_len] = b.to_ascii_lowercase();
                }
                self.name_len += 1;
                TrailerName
            }
            (TrailerName, _) => return Err(HttpError::InvalidTrailer),
            (TrailerValue, b'\r') => TrailerLf,
            (TrailerValue, b'\n') => return Err(HttpError::BareLf),
            (TrailerValue, _) if FIELD_VALUE[b as usize] => {
                self.trailer_line_byte()?;
                TrailerValue
            }
            (TrailerValue, _) => return Err(HttpError::InvalidTrailer),
            (TrailerLf, b'\n') => TrailerStart,
            (TrailerLf, _) => return Err(HttpError::InvalidTrailer),
            (EndLf, b'\n') => Done,
            (EndLf, _) => return Err(HttpError::InvalidChunkTerminator),
            (Data | Done, _) => self.state,
        };
        Ok(())
    }

    fn trailer_line_byte(&mut self) -> Result<(), HttpError> {
        self.line_len += 1;
        if self.line_len > self.max_line { Err(HttpError::TrailersTooLarge) } else { Ok(()) }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` split at `cut`, feeding the unconsumed rest back like a caller would.
    fn decode_split(input: &[u8], cut: usize) -> Result<(Vec<u8>, usize, bool), HttpError> {
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let mut used = d.decode(&input[..cut], &mut out)?;
        if used == cut {
            used += d.decode(&input[cut..], &mut out)?;
        }
        Ok((out, used, d.is_done()))
    }

    /// Runs `input` whole, at every split and byte by byte; all must agree.
    fn decode_all_ways(input: &[u8]) -> Result<(Vec<u8>, usize, bool), HttpError> {
        let whole = decode_split(input, input.len());
        for cut in 0..=input.len() {
            assert_eq!(decode_split(input, cut), whole, "split at {cut}");
        }
        let mut d = ChunkedDecoder::new();
        let mut out = Vec::new();
        let mut used = 0;
        let mut err = None;
        for i in 0..input.len() {
            if d.is_done() {
                break;
            }
            match d.decode(&input[i..=i], &mut out) {
                Ok(n) => used += n,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        match err {
            Some(e) => assert_eq!(whole, Err(e)),
            None => assert_eq!(whole, Ok((out, used, d.is_done()))),
        }
        whole
    }

    #[test]
    fn simple_and_pipelined() {
        let input = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        let (out, used, done) = decode_all_ways(input).unwrap();
        assert_eq!(out, b"hello world");
        assert!(done);
        assert_eq!(&input[used..], b"GET / HTTP/1.1\r\n\r\n");
    }

    #[test]
    fn extensions_trailers_and_case() {
        let input = b"A;a=b; c=\"x \\\" y\"\r\n0123456789\r\n000\r\nVary: *\r\nX-T: 1\r\n\r\n";
        let (out, used, done) = decode_all_ways(input).unwrap();
        assert_eq!(out, b"0123456789");
        assert!(done);
        assert_eq!(used, input.len());
        let (out, _, done) = decode_all_ways(b"5 ;ext\r\nhello\r\n0\r\n\r\n").unwrap();
        assert_eq!((out.as_slice(), done), (&b"hello"[..], true));
    }

    #[test]
    fn refusals() {
        let cases: &[(&[u8], HttpError)] = &[
            (b"6_0\r\n", HttpError::InvalidChunkSize),
            (b"0 \r\n\r\n", HttpError::InvalidChunkSize),
            (b" 0\r\n\r\n", HttpError::InvalidChunkSize),
            (b"-5\r\n", HttpError::InvalidChunkSize),
            (b"+5\r\n", HttpError::InvalidChunkSize),
            (b"\r\nhello", HttpError::InvalidChunkSize),
            (b"5\n;\r\n", HttpError::BareLf),
            (b"5;ext=val\rue\r\n", HttpError::InvalidChunkExtension),
            (b"5;a=\"x\r\n", HttpError::InvalidChunkExtension),
            (b"5;a\x01\r\n", HttpError::InvalidChunkExtension),
            (b"5\r\nhelloX\r\n", HttpError::InvalidChunkTerminator),
            (b"5\r\nhello\r\n0\r\n\rX", HttpError::InvalidChunkTerminator),
            (b"0\r\nX\r\n", HttpError::InvalidTrailer),
            (b"11111111111111111\r\n", HttpError::InvalidChunkSize),
            (b"0\r\nContent-Length: 9\r\n\r\n", HttpError::ForbiddenTrailer),
            (b"0\r\nhost: x\r\n\r\n", HttpError::ForbiddenTrailer),
            (b"0\r\nX: a\x07\r\n\r\n", HttpError::InvalidTrailer),
            (b"0\r\n folded\r\n\r\n", HttpError::InvalidTrailer),
            (b"0\r\nX: a\n\r\n", HttpError::BareLf),
        ];
        for (input, err) in cases {
            assert_eq!(decode_all_ways(input), Err(*err), "{:?}", String::from_utf8_lossy(input));
        }
    }

    /// Chunk-size lines with extensions, in a data chunk and in the last chunk: the whole
    /// line as a client sends it (the grammar's own tables are in chunk_ext.rs).
    #[test]
    fn chunk_extension_lines() {
        let accept: &[&[u8]] =
            &[b";a", b";a=b", b" ;a", b"\t;a", b" \t ; a = \"q\\\"x\"", b";a=\"\";b=c", b";a;b;c", b"; a\t=\tb ;c"];
        let reject: &[&[u8]] = &[
            b";",
            b" ;",
            b";=x",
            b";a b",
            b";a==b",
            b";\"a\"",
            b";a=b;",
            b";a=",
            b";a ",
            b";a=b ",
            b";a=\"b",
            b";a=\"b\\\x01\"",
            b";a=\"b\"c",
            b";a\x00",
            b";a\x7f",
            b";a=b\rc",
            b";a,b",
        ];
        for ext in accept {
            for body in [[b"5", *ext, b"\r\nhello\r\n0\r\n\r\n"].concat(), [b"5\r\nhello\r\n0", *ext, b"\r\n\r\n"].concat()] {
                let got = decode_all_ways(&body);
                assert_eq!(got, Ok((b"hello".to_vec(), body.len(), true)), "{:?}", String::from_utf8_lossy(&body));
            }
        }
        for ext in reject {
            for body in [[b"5", *ext, b"\r\nhello\r\n0\r\n\r\n"].concat(), [b"5\r\nhello\r\n0", *ext, b"\r\n\r\n"].concat()] {
                let got = decode_all_ways(&body);
                assert_eq!(got, Err(HttpError::InvalidChunkExtension), "{:?}", String::from_utf8_lossy(&body));
            }
        }
    }

    #[test]
    fn incomplete_is_not_done() {
        let (out, used, done) = decode_all_ways(b"5\r\nhello\r\n0\r\n").unwrap();
        assert_eq!((out.as_slice(), used, done), (&b"hello"[..], 13, false));
    }

    #[test]
    fn line_limits() {
        let mut d = ChunkedDecoder::with_limits(8, 1);
        assert_eq!(d.decode(b"5;aaaaaaaa\r\n", &mut Vec::new()), Err(HttpError::ChunkLineTooLarge));
        let mut d = ChunkedDecoder::with_limits(8, 1);
        assert_eq!(d.decode(b"0\r\nA: 1\r\nB: 2\r\n\r\n", &mut Vec::new()), Err(HttpError::TrailersTooLarge));
        let mut d = ChunkedDecoder::with_limits(8, 1);
        assert_eq!(d.decode(b"0\r\nA: 12345678\r\n\r\n", &mut Vec::new()), Err(HttpError::TrailersTooLarge));
    }
}

//! Request body decoding: `Transfer-Encoding: chunked` (RFC 9112 section 7.1).

use crate::HttpError;

/// Incremental chunked decoder: push any split of the input, get the data bytes out.
#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    done: bool,
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder::default()
    }

    /// Decodes as much of `input` as it can, appending body data to `out`. Returns how many
    /// bytes of `input` were consumed; bytes after the final chunk and trailers are not consumed
    /// (they belong to the next pipelined request).
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, HttpError> {
        let _ = (input, out);
        Err(HttpError::Invalid("chunked decoder not written yet"))
    }

    /// True once the last chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

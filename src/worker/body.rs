//! Receiving a request body completely before the application runs, so a client that dribbles
//! its upload costs a parked task, never an app thread. Bodies past a threshold go to an
//! unlinked temporary file, keeping memory bounded whatever the upload size.

use crate::wsgi::Body;
use ferrocorn_http::{ChunkedDecoder, Framing, HttpError};
use std::fs::File;
use std::io::Write;
use std::path::Path;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why a body could not be received.
#[derive(Debug)]
pub enum BodyError {
    /// The client broke the framing (bad chunk, ...): answered with a 4xx.
    Http(HttpError),
    /// The connection closed or failed before the body was complete.
    Io(std::io::Error),
    /// No data within the read timeout.
    TimedOut,
    /// The temporary file could not be written.
    Spill(std::io::Error),
}

/// Accumulates body bytes in memory, then in a temp file past `threshold`.
struct Sink<'a> {
    mem: Vec<u8>,
    file: Option<(File, u64)>,
    threshold: usize,
    dir: Option<&'a Path>,
}

impl Sink<'_> {
    fn push(&mut self, data: &[u8]) -> Result<(), BodyError> {
        if let Some((file, len)) = &mut self.file {
            file.write_all(data).map_err(BodyError::Spill)?;
            *len += data.len() as u64;
            return Ok(());
        }
        if self.mem.len() + data.len() <= self.threshold {
            self.mem.extend_from_slice(data);
            return Ok(());
        }
        let mut file = match self.dir {
            Some(dir) => tempfile::tempfile_in(dir),
            None => tempfile::tempfile(),
        }
        .map_err(BodyError::Spill)?;
        file.write_all(&self.mem).map_err(BodyError::Spill)?;
        file.write_all(data).map_err(BodyError::Spill)?;
        let len = (self.mem.len() + data.len()) as u64;
        self.mem = Vec::new();
        self.file = Some((file, len));
        Ok(())
    }

    fn finish(self) -> Body {
        match self.file {
            Some((file, len)) => Body::File { file, len },
            None => Body::Memory(self.mem),
        }
    }
}

/// Reads the body described by `framing`. `buf` holds bytes already read past the head; on
/// return it holds whatever follows the body (the next pipelined request).
pub async fn read_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    framing: Framing,
    threshold: usize,
    dir: Option<&Path>,
    timeout: Option<std::time::Duration>,
) -> Result<Body, BodyError> {
    let mut sink = Sink { mem: Vec::new(), file: None, threshold, dir };
    match framing {
        Framing::None => return Ok(Body::empty()),
        Framing::Length(total) => {
            let mut left = total;
            let first = (buf.len() as u64).min(left) as usize;
            if first > 0 {
                if (first as u64) == left && first as u64 <= threshold as u64 {
                    let rest = buf.split_off(first);
                    let body = std::mem::replace(buf, rest);
                    return Ok(Body::Memory(body));
                }
                sink.push(&buf[..first])?;
                buf.drain(..first);
                left -= first as u64;
            }
            if left > 0 && left <= threshold as u64 {
                sink.mem.reserve(left as usize);
            }
            let mut chunk = vec![0u8; 64 * 1024];
            while left > 0 {
                let want = (chunk.len() as u64).min(left) as usize;
                let n = read_some(stream, &mut chunk[..want], timeout).await?;
                sink.push(&chunk[..n])?;
                left -= n as u64;
            }
        }
        Framing::Chunked => {
            let mut decoder = ChunkedDecoder::new();
            let mut out = Vec::new();
            loop {
                if !buf.is_empty() {
                    let used = decoder.decode(buf, &mut out).map_err(BodyError::Http)?;
                    buf.drain(..used);
                    if !out.is_empty() {
                        sink.push(&out)?;
                        out.clear();
                    }
                }
                if decoder.is_done() {
                    break;
                }
                let mut chunk = [0u8; 16 * 1024];
                let n = read_some(stream, &mut chunk, timeout).await?;
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
    Ok(sink.finish())
}

async fn read_some<S: AsyncRead + Unpin>(
    stream: &mut S,
    into: &mut [u8],
    timeout: Option<std::time::Duration>,
) -> Result<usize, BodyError> {
    let read = stream.read(into);
    let n = match timeout {
        Some(t) => tokio::time::timeout(t, read).await.map_err(|_| BodyError::TimedOut)?,
        None => read.await,
    }
    .map_err(BodyError::Io)?;
    if n == 0 {
        return Err(BodyError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "client closed the connection before the body was complete",
        )));
    }
    Ok(n)
}

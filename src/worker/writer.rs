//! Writing one response, for every app kind: the head and body framing (from
//! `ferrocorn_http::response`), async writes with the io deadline, vectored writes, sendfile,
//! and the blocking writes a sync-class app makes from inside its inline call. No Python here.

pub use crate::wsgi::ResponseStart;
use ferrocorn_http::RequestHead;
use ferrocorn_http::response::{self, BodyFraming, ResponsePlan};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// What the connection knows about the response it is about to write.
pub struct WriteContext<'a> {
    pub head: &'a RequestHead,
    /// The worker allows keep-alive (running, keepalive > 0).
    pub keep_allowed: bool,
    pub date: [u8; 29],
    pub server_header: &'a [u8],
}

/// One response from its head to its last byte: framing state and what the access log needs.
pub struct ResponseWriter {
    plan: ResponsePlan,
    is_head: bool,
    /// Body bytes the Content-Length still allows.
    remaining: Option<u64>,
    /// Body bytes put on the wire (after framing limits), for the access log and post_request.
    pub sent: u64,
    pub status: Vec<u8>,
    /// The app's headers (what post_request sees).
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The Content-Length value we added, if any (sent after the app's headers).
    added_length: Option<String>,
    pub content_length: Option<u64>,
}

impl ResponseWriter {
    /// Plans the response and appends its head to `wire`. `known_len` is the whole body's
    /// length when it is already known: a body without a Content-Length then gets one, which is
    /// cheaper than chunking and lets HTTP/1.0 clients keep the connection.
    pub fn begin(cx: &WriteContext<'_>, start: ResponseStart, known_len: Option<u64>, wire: &mut Vec<u8>) -> ResponseWriter {
        let ResponseStart { status, code, headers, content_length, wants_close } = start;
        let added_length = match (content_length, known_len) {
            (None, Some(len)) if !(100..200).contains(&code) && code != 204 && code != 304 => Some(len.to_string()),
            _ => None,
        };
        let refs = refs(&headers, added_length.as_deref());
        let plan = response::plan(cx.head, code, &refs, cx.keep_allowed && !wants_close);
        response::write_head(wire, cx.head.version, &status, &refs, &plan, &cx.date, cx.server_header);
        let remaining = match plan.framing {
            BodyFraming::Length(n) => Some(n),
            _ => None,
        };
        ResponseWriter {
            plan,
            is_head: &*cx.head.method == "HEAD",
            remaining,
            sent: 0,
            status,
            headers,
            added_length,
            content_length,
        }
    }

    /// The headers as sent (the access log's `{header}o`).
    pub fn header_refs(&self) -> Vec<(&[u8], &[u8])> {
        refs(&self.headers, self.added_length.as_deref())
    }

    /// Whether body bytes go on the wire at all (not for HEAD, 1xx, 204, 304).
    pub fn has_body(&self) -> bool {
        !self.is_head && self.plan.framing != BodyFraming::Empty
    }

    pub fn framing(&self) -> BodyFraming {
        self.plan.framing
    }

    /// How many of `len` further body bytes may go out unframed (a Length body is cut at its
    /// Content-Length, as Gunicorn does), counted as sent.
    pub fn take_raw(&mut self, len: u64) -> u64 {
        if !self.has_body() {
            return 0;
        }
        let n = match self.remaining {
            Some(left) => {
                let n = len.min(left);
                self.remaining = Some(left - n);
                n
            }
            None => len,
        };
        self.sent = self.sent.saturating_add(n);
        n
    }

    /// Frames `data` without copying it: appends any chunk-size line to `prefix` and returns
    /// the part of `data` to send and what follows it.
    pub fn frame_parts<'d>(&mut self, data: &'d [u8], prefix: &mut Vec<u8>) -> (&'d [u8], &'static [u8]) {
        if data.is_empty() || !self.has_body() {
            return (&[], b"");
        }
        match self.plan.framing {
            BodyFraming::Chunked => {
                prefix.extend_from_slice(format!("{:X}\r\n", data.len()).as_bytes());
                self.sent = self.sent.saturating_add(data.len() as u64);
                (data, b"\r\n")
            }
            _ => {
                let n = self.take_raw(data.len() as u64);
                // n <= data.len(), so it fits a usize.
                (&data[..usize::try_from(n).unwrap_or(data.len())], b"")
            }
        }
    }

    /// Appends `data` to `wire`, framed.
    pub fn frame(&mut self, wire: &mut Vec<u8>, data: &[u8]) {
        let (body, suffix) = self.frame_parts(data, wire);
        wire.extend_from_slice(body);
        wire.extend_from_slice(suffix);
    }

    /// Appends what ends the body (the last chunk).
    pub fn finish(&mut self, wire: &mut Vec<u8>) {
        if self.plan.framing == BodyFraming::Chunked && !self.is_head {
            wire.extend_from_slice(response::LAST_CHUNK);
        }
    }

    /// Whether the connection may carry another request: the plan allows it and the body was
    /// complete (a body shorter than its Content-Length breaks the framing).
    pub fn keep_alive(&self) -> bool {
        let short = matches!(self.remaining, Some(left) if left > 0) && self.has_body();
        self.plan.keep_alive && !short
    }
}

fn refs<'a>(headers: &'a [(Vec<u8>, Vec<u8>)], added_length: Option<&'a str>) -> Vec<(&'a [u8], &'a [u8])> {
    let mut refs: Vec<(&[u8], &[u8])> = Vec::with_capacity(headers.len() + 1);
    refs.extend(headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())));
    if let Some(len) = added_length {
        refs.push((b"Content-Length", len.as_bytes()));
    }
    refs
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "client stopped reading")
}

/// Writes `data` under the io deadline.
pub async fn write_all<S: AsyncWrite + Unpin>(stream: &mut S, data: &[u8], timeout: Option<Duration>) -> io::Result<()> {
    let mut w = std::pin::pin!(stream.write_all(data));
    // Most responses fit the socket buffer and are written by the first attempt: only a write
    // that has to wait gets a timer (arming and cancelling one costs more than the write).
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(w.as_mut().poll(cx))).await;
    if let std::task::Poll::Ready(r) = first {
        return r;
    }
    match timeout {
        Some(t) => tokio::time::timeout(t, w).await.map_err(|_| timed_out())?,
        None => w.await,
    }
}

/// Writes `parts` in order with vectored writes (no copying them together), under the io
/// deadline.
pub async fn write_parts<S: AsyncWrite + Unpin>(stream: &mut S, parts: &[&[u8]], timeout: Option<Duration>) -> io::Result<()> {
    let write = async {
        let mut slices: Vec<io::IoSlice<'_>> = parts.iter().filter(|p| !p.is_empty()).map(|p| io::IoSlice::new(p)).collect();
        let mut slices = &mut slices[..];
        while !slices.is_empty() {
            let n = stream.write_vectored(slices).await?;
            if n == 0 {
                return Err(io::Error::from(io::ErrorKind::WriteZero));
            }
            io::IoSlice::advance_slices(&mut slices, n);
        }
        Ok(())
    };
    match timeout {
        Some(t) => tokio::time::timeout(t, write).await.map_err(|_| timed_out())?,
        None => write.await,
    }
}

/// A stream as the blocking writer and sendfile see it.
pub enum Direct<'a> {
    /// A plain socket: bytes go to the fd as they are.
    Plain(RawFd),
    /// TLS: plaintext goes into the session, records to the fd.
    Tls(RawFd, &'a mut rustls::ServerConnection),
}

/// Streams that can be written without the event loop (from a sync app's inline call) and
/// that say whether sendfile can reach the client.
pub trait DirectIo {
    fn direct(&mut self) -> Direct<'_>;
    /// The plain socket under this stream, when bytes written to it reach the client as they
    /// are (not TLS).
    fn plain(&self) -> Option<&dyn PlainSocket>;
}

/// The async side of a plain socket, for sendfile.
pub trait PlainSocket {
    fn raw_fd(&self) -> RawFd;
    /// Runs `f` when the socket may be writable; a `WouldBlock` from `f` clears readiness.
    fn poll_try_write(
        &self,
        cx: &mut std::task::Context<'_>,
        f: &mut dyn FnMut() -> io::Result<usize>,
    ) -> std::task::Poll<io::Result<usize>>;
}

macro_rules! plain_stream {
    ($t:ty) => {
        impl PlainSocket for $t {
            fn raw_fd(&self) -> RawFd {
                self.as_raw_fd()
            }
            fn poll_try_write(
                &self,
                cx: &mut std::task::Context<'_>,
                f: &mut dyn FnMut() -> io::Result<usize>,
            ) -> std::task::Poll<io::Result<usize>> {
                loop {
                    match self.poll_write_ready(cx) {
                        std::task::Poll::Ready(Ok(())) => {}
                        std::task::Poll::Ready(Err(e)) => return std::task::Poll::Ready(Err(e)),
                        std::task::Poll::Pending => return std::task::Poll::Pending,
                    }
                    match self.try_io(tokio::io::Interest::WRITABLE, &mut *f) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                        r => return std::task::Poll::Ready(r),
                    }
                }
            }
        }
        impl DirectIo for $t {
            fn direct(&mut self) -> Direct<'_> {
                Direct::Plain(self.as_raw_fd())
            }
            fn plain(&self) -> Option<&dyn PlainSocket> {
                Some(self)
            }
        }
    };
}

plain_stream!(tokio::net::TcpStream);
plain_stream!(tokio::net::UnixStream);

impl<S: AsRawFd> DirectIo for tokio_rustls::server::TlsStream<S> {
    fn direct(&mut self) -> Direct<'_> {
        let (io, conn) = self.get_mut();
        Direct::Tls(io.as_raw_fd(), conn)
    }
    fn plain(&self) -> Option<&dyn PlainSocket> {
        None
    }
}

/// Waits until `fd` is writable, at most until `deadline`.
fn wait_writable(fd: RawFd, deadline: Option<Instant>) -> io::Result<()> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(timed_out());
                }
                // Capped below i32::MAX ms; the loop waits again if that was not enough.
                PollTimeout::try_from(left.min(Duration::from_secs(3600))).unwrap_or(PollTimeout::MAX)
            }
        };
        // SAFETY: the fd belongs to the stream the caller holds for the duration of this call.
        let bfd = unsafe { BorrowedFd::borrow_raw(fd) };
        let mut fds = [PollFd::new(bfd, PollFlags::POLLOUT)];
        match poll(&mut fds, timeout) {
            Ok(0) => continue,
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// One nonblocking write to `fd`, waiting for writability on EAGAIN.
struct FdWriter {
    fd: RawFd,
    deadline: Option<Instant>,
}

impl io::Write for FdWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[io::IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        // SAFETY: as in wait_writable.
        let bfd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        loop {
            match nix::sys::uio::writev(bfd, bufs) {
                Ok(n) => return Ok(n),
                Err(nix::errno::Errno::EAGAIN) => wait_writable(self.fd, self.deadline)?,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes `parts` to the stream, blocking this thread until they are written or the io
/// deadline passes. Used only while a sync-class app runs on the engine's thread, when the
/// event loop cannot run; nothing else writes to the stream meanwhile.
pub fn write_blocking(direct: Direct<'_>, parts: &[&[u8]], timeout: Option<Duration>) -> io::Result<()> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    match direct {
        Direct::Plain(fd) => {
            let mut w = FdWriter { fd, deadline };
            let mut slices: Vec<io::IoSlice<'_>> = parts.iter().filter(|p| !p.is_empty()).map(|p| io::IoSlice::new(p)).collect();
            let mut slices = &mut slices[..];
            while !slices.is_empty() {
                let n = io::Write::write_vectored(&mut w, slices)?;
                if n == 0 {
                    return Err(io::Error::from(io::ErrorKind::WriteZero));
                }
                io::IoSlice::advance_slices(&mut slices, n);
            }
            Ok(())
        }
        Direct::Tls(fd, conn) => {
            let mut w = FdWriter { fd, deadline };
            for part in parts {
                let mut part: &[u8] = part;
                while !part.is_empty() {
                    // The session buffers a bounded amount of plaintext; drain records in between.
                    let n = io::Write::write(&mut conn.writer(), part)?;
                    part = &part[n..];
                    while conn.wants_write() {
                        conn.write_tls(&mut w)?;
                    }
                }
            }
            while conn.wants_write() {
                conn.write_tls(&mut w)?;
            }
            Ok(())
        }
    }
}

/// Sends `count` bytes of `file` from `offset` to the socket with sendfile(2), under the io
/// deadline for each wait. Returns the bytes sent: fewer than `count` when the file is shorter.
pub async fn sendfile_all(
    sock: &dyn PlainSocket,
    file: RawFd,
    offset: u64,
    count: u64,
    timeout: Option<Duration>,
) -> io::Result<u64> {
    let mut off = i64::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut done: u64 = 0;
    let out = sock.raw_fd();
    while done < count {
        // A large count in one call keeps the syscalls few; the kernel caps each at ~2 GiB.
        let want = usize::try_from(count - done).unwrap_or(usize::MAX).min(1 << 30);
        let send = std::future::poll_fn(|cx| {
            sock.poll_try_write(cx, &mut || {
                // SAFETY: both fds stay open for this call (the socket is borrowed, the file
                // is the caller's own duplicate).
                let (o, i) = unsafe { (BorrowedFd::borrow_raw(out), BorrowedFd::borrow_raw(file)) };
                nix::sys::sendfile::sendfile64(o, i, Some(&mut off), want).map_err(io::Error::from)
            })
        });
        let n = match timeout {
            Some(t) => tokio::time::timeout(t, send).await.map_err(|_| timed_out())??,
            None => send.await?,
        };
        if n == 0 {
            break;
        }
        done = done.saturating_add(n as u64);
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocorn_http::{ParseOptions, Parsed, parse_request_head};

    fn head(raw: &[u8]) -> RequestHead {
        match parse_request_head(raw, &ParseOptions::default()) {
            Ok(Parsed::Complete { head, .. }) => head,
            _ => panic!("bad test request"),
        }
    }

    fn start(cl: Option<u64>) -> ResponseStart {
        let mut headers = vec![(b"X-A".to_vec(), b"1".to_vec())];
        if let Some(n) = cl {
            headers.push((b"Content-Length".to_vec(), n.to_string().into_bytes()));
        }
        ResponseStart { status: b"200 OK".to_vec(), code: 200, headers, content_length: cl, wants_close: false }
    }

    fn cx(h: &RequestHead) -> WriteContext<'_> {
        WriteContext { head: h, keep_allowed: true, date: [b'x'; 29], server_header: b"ferrocorn" }
    }

    #[test]
    fn a_length_body_is_cut_and_a_short_one_ends_keep_alive() {
        let h = head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        let mut wire = Vec::new();
        let mut w = ResponseWriter::begin(&cx(&h), start(Some(5)), None, &mut wire);
        wire.clear();
        w.frame(&mut wire, b"abc");
        assert!(!w.keep_alive(), "two bytes still owed");
        w.frame(&mut wire, b"defgh");
        assert_eq!(wire, b"abcde");
        assert_eq!(w.sent, 5);
        assert!(w.keep_alive());
    }

    #[test]
    fn head_requests_frame_nothing_and_keep_alive() {
        let h = head(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
        let mut wire = Vec::new();
        let mut w = ResponseWriter::begin(&cx(&h), start(Some(5)), None, &mut wire);
        assert!(wire.windows(17).any(|x| x == b"Content-Length: 5"));
        wire.clear();
        w.frame(&mut wire, b"abc");
        w.finish(&mut wire);
        assert!(wire.is_empty());
        assert_eq!(w.take_raw(5), 0);
        assert!(w.keep_alive());
    }

    #[test]
    fn unknown_length_is_chunked_and_a_known_one_is_added() {
        let h = head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        let mut wire = Vec::new();
        let mut w = ResponseWriter::begin(&cx(&h), start(None), None, &mut wire);
        assert_eq!(w.framing(), BodyFraming::Chunked);
        wire.clear();
        w.frame(&mut wire, b"abc");
        w.finish(&mut wire);
        assert_eq!(wire, b"3\r\nabc\r\n0\r\n\r\n");
        let mut wire = Vec::new();
        let w = ResponseWriter::begin(&cx(&h), start(None), Some(7), &mut wire);
        assert_eq!(w.framing(), BodyFraming::Length(7));
        assert!(w.header_refs().iter().any(|(n, v)| *n == b"Content-Length" && *v == b"7"));
    }

    #[test]
    fn blocking_writes_reach_a_peer_that_reads_slowly() {
        let (a, b) = std::os::unix::net::UnixStream::pair().expect("pair");
        a.set_nonblocking(true).expect("nonblocking");
        let data = vec![7u8; 4 << 20];
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            std::thread::sleep(Duration::from_millis(50));
            io::Read::read_to_end(&mut &b, &mut got).expect("read");
            got.len()
        });
        write_blocking(Direct::Plain(a.as_raw_fd()), &[b"head", &data], Some(Duration::from_secs(10))).expect("write");
        drop(a);
        assert_eq!(reader.join().expect("reader"), 4 + (4 << 20));
    }

    #[test]
    fn a_blocking_write_to_a_peer_that_never_reads_times_out() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("pair");
        a.set_nonblocking(true).expect("nonblocking");
        let data = vec![7u8; 16 << 20];
        let err = write_blocking(Direct::Plain(a.as_raw_fd()), &[&data], Some(Duration::from_millis(100))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}

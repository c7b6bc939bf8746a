//! One client connection: read a head, receive the body, run the app, write the response,
//! repeat while keep-alive allows. Every wait on the client has a deadline, and the app is
//! only entered once a request is complete.

use super::body::{BodyError, read_body};
use super::sink::{self, Outlet};
use super::writer::{self, DirectIo, ResponseStart, ResponseWriter};
use super::{AppKind, AppState, Lifecycle, ProxyMode, Shared};
use crate::hooks::Hook;
use crate::log::{AccessRecord, Captured};
use crate::wsgi::{
    AppCall, AppFailure, Body, ConnInfo, EarlyHints, FileBody, Input, Peer, Pull, ResponseSink, StartResponse, format_exception,
};
use crate::{log_debug, log_error, log_exception};
use ferrocorn_http::response;
use ferrocorn_http::{Framing, HttpError, ParseOptions, Parsed, ProxyParsed, RequestHead, Version, parse_proxy_header};
use pyo3::prelude::*;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes of a list/tuple response gathered before the first write; a streamed (generator)
/// body is written as each piece is yielded instead.
const PULL_BUDGET: usize = 256 * 1024;

/// How waiting for the next request ended.
enum HeadWait {
    Head(RequestHead),
    /// The client closed, went idle past keep-alive, or the worker is draining.
    Closed,
    /// The client sent something we refuse.
    Refused(HttpError),
}

pub async fn serve<S>(mut stream: S, mut conn: ConnInfo, sh: Rc<Shared>)
where
    S: AsyncRead + AsyncWrite + DirectIo + Unpin,
{
    let mut buf: Vec<u8> = Vec::with_capacity(4096);

    // Unix-socket peers are local processes: trusted for both, as in Gunicorn.
    let (proxy_trusted, forwarder_trusted) = match &conn.peer {
        Peer::Tcp(addr) => (sh.settings.proxy_allow.allows(addr.ip()), sh.settings.forwarded_allow.allows(addr.ip())),
        Peer::Unix => (true, true),
    };
    // Only trusted forwarders may pass `forwarder_headers` (SCRIPT_NAME, ...) through.
    let parse = if forwarder_trusted { &sh.settings.parse_trusted } else { &sh.settings.parse };
    if let Err(e) = super::uwsgi::admit(&sh.settings.wire, &conn.peer) {
        log_debug!("uwsgi request from {} refused: not in uwsgi_allow_ips", peer_text(&conn.peer));
        refuse(&mut stream, &e).await;
        return;
    }
    let mode = sh.settings.proxy_protocol;
    if mode != ProxyMode::Off {
        match read_proxy_header(&mut stream, &mut buf, &sh).await {
            // A version the mode does not accept is not a PROXY header: as HTTP it is malformed.
            Ok(Some(info)) if !mode.accepts(info.version) => {
                refuse(&mut stream, &HttpError::InvalidRequestLine).await;
                return;
            }
            // Gunicorn answers 403 rather than letting an untrusted peer pick its own address.
            Ok(Some(_)) if !proxy_trusted => {
                log_debug!("PROXY header from untrusted {}", peer_text(&conn.peer));
                refuse(&mut stream, &HttpError::ForbiddenProxyRequest).await;
                return;
            }
            Ok(Some(info)) => conn.proxy = Some(info),
            Ok(None) if !buf.is_empty() => {}
            Ok(None) => return,
            Err(e) => {
                refuse(&mut stream, &e).await;
                return;
            }
        }
    }

    // `gunicorn.socket`, made on the connection's first request that reaches the app and
    // shared by the rest: a dup and a socket object per request would cost the hello path.
    let client_socket = SocketRelease(Arc::default(), sh.clone());
    let socket = super::uwsgi::Socket::of(&conn);
    let mut first = true;
    loop {
        let head = match wait_for_head(&mut stream, &mut buf, &sh, parse, first, &mut conn, &socket).await {
            HeadWait::Head(h) => h,
            HeadWait::Closed => return,
            HeadWait::Refused(e) => {
                log_debug!("Invalid request from {}: {e}", peer_text(&conn.peer));
                refuse(&mut stream, &e).await;
                return;
            }
        };
        first = false;
        sh.heartbeat.beat();

        if head.expect_continue
            && head.framing != Framing::None
            && write_all(&mut stream, b"HTTP/1.1 100 Continue\r\n\r\n", &sh).await.is_err()
        {
            return;
        }
        let body = match read_body(
            &mut stream,
            &mut buf,
            head.framing,
            sh.settings.spill_threshold,
            sh.settings.tmp_upload_dir.as_deref(),
            sh.settings.read_timeout(),
        )
        .await
        {
            Ok(b) => b,
            Err(BodyError::Http(e)) => {
                refuse(&mut stream, &e).await;
                return;
            }
            Err(BodyError::Spill(e)) => {
                log_error!("Could not store the request body in a temporary file: {e}");
                let resp = response::error_response(500, "Internal Server Error", "Internal Server Error\n");
                let _ = write_all(&mut stream, &resp, &sh).await;
                return;
            }
            Err(BodyError::Io(_)) | Err(BodyError::TimedOut) => return,
        };

        let keep = match sh.app.kind {
            AppKind::Wsgi => handle(&mut stream, Arc::new(head), body, &conn, &sh, &client_socket.0).await,
            AppKind::Tornado => super::tornado::handle(&mut stream, Arc::new(head), body, &conn, &sh).await,
        };
        sh.heartbeat.beat();
        if !keep {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

pub(crate) fn peer_text(peer: &Peer) -> String {
    match peer {
        Peer::Tcp(a) => a.to_string(),
        Peer::Unix => "unix socket".into(),
    }
}

async fn refuse<S: AsyncWrite + Unpin>(stream: &mut S, e: &HttpError) {
    let status = e.status();
    let body = format!("{}\n{e}\n", response::reason_phrase(status));
    let resp = response::error_response(status, response::reason_phrase(status), &body);
    let _ = stream.write_all(&resp).await;
    let _ = stream.shutdown().await;
}

async fn read_proxy_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    sh: &Shared,
) -> Result<Option<ferrocorn_http::ProxyInfo>, HttpError> {
    loop {
        match parse_proxy_header(buf)? {
            ProxyParsed::Complete { info, consumed } => {
                buf.drain(..consumed);
                return Ok(Some(info));
            }
            ProxyParsed::Partial => {}
            // Served as plain HTTP, as Gunicorn does (corpus case valid/pp_03).
            ProxyParsed::NotProxy => return Ok(None),
        }
        match read_more(stream, buf, sh.settings.read_timeout()).await {
            Some(_) => {}
            None => return Ok(None),
        }
    }
}

/// Reads into `buf`; `None` on EOF, error or timeout.
async fn read_more<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut Vec<u8>, timeout: Option<Duration>) -> Option<usize> {
    buf.reserve(4096);
    let read = stream.read_buf(buf);
    let res = match timeout {
        Some(t) => tokio::time::timeout(t, read).await.ok()?,
        None => read.await,
    };
    match res {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(n),
    }
}

async fn wait_for_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    sh: &Shared,
    parse: &ParseOptions,
    first: bool,
    conn: &mut ConnInfo,
    socket: &super::uwsgi::Socket,
) -> HeadWait {
    // The whole head must arrive within `timeout` of its first byte (or of accept): a per-read
    // deadline alone lets a client dribble a byte at a time forever (slowloris).
    let mut head_deadline: Option<tokio::time::Instant> = None;
    loop {
        if !buf.is_empty() {
            match super::uwsgi::parse_head(buf, parse, &sh.settings.wire, conn, socket) {
                Ok(Parsed::Complete { head, consumed }) => {
                    buf.drain(..consumed);
                    return HeadWait::Head(head);
                }
                Ok(Parsed::Partial) => {}
                Err(e) => return HeadWait::Refused(e),
            }
        }
        let idle = buf.is_empty() && !first;
        if idle {
            // Between requests: close at once when draining, else wait up to keep-alive.
            if sh.lifecycle.get() != Lifecycle::Running {
                return HeadWait::Closed;
            }
            let ka = sh.settings.keepalive;
            let read = read_more(stream, buf, Some(ka));
            tokio::select! {
                r = read => if r.is_none() { return HeadWait::Closed },
                _ = sh.drain.notified() => return HeadWait::Closed,
            }
        } else {
            let left = match sh.settings.read_timeout() {
                Some(t) => {
                    let deadline = *head_deadline.get_or_insert_with(|| tokio::time::Instant::now() + t);
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        return HeadWait::Closed;
                    }
                    Some(left)
                }
                None => None,
            };
            if read_more(stream, buf, left).await.is_none() {
                return HeadWait::Closed;
            }
        }
    }
}

/// Writes `data` under the io deadline.
pub(super) async fn write_all<S: AsyncWrite + Unpin>(stream: &mut S, data: &[u8], sh: &Shared) -> std::io::Result<()> {
    writer::write_all(stream, data, sh.settings.read_timeout()).await
}

/// Bodies at least this large are written with the head by `writev` rather than copied.
const VECTORED_BODY: usize = 16 * 1024;

/// What the first step of the app call produced.
enum Started {
    Response {
        /// `None` when write() already sent the head.
        start: Option<ResponseStart>,
        /// Still producing body (`None` once the iterable is exhausted and closed).
        call: Option<AppCall>,
        body: BodyKind,
    },
    /// Answer with this status without calling (or after failing) the app.
    Error(u16),
    /// The app raised SystemExit (the master's timeout abort raises it too): the worker exits
    /// with this status.
    Exit(i32),
}

/// Where the response body comes from.
enum BodyKind {
    /// Pulled from the app's iterable (`out`, then further steps).
    Pulled,
    /// A `wsgi.file_wrapper` over a regular file: sent with sendfile, never read in Python.
    File(FileBody),
    /// A `wsgi.file_wrapper` answering HEAD: nothing to read or send.
    Unread,
}

/// What post_request needs, kept from pre_request time.
struct RequestHookState {
    req: Py<PyAny>,
    environ: Py<PyAny>,
    /// Requests this worker has handled, this one included (`worker.nr` in post_request).
    nr: u64,
}

/// Builds `req` and calls pre_request. `Err` means the hook raised: as in Gunicorn, the request is
/// answered with a 500 and the app is not called.
fn run_pre_request(
    py: Python<'_>,
    app: &AppState,
    head: &RequestHead,
    conn: &ConnInfo,
    environ: &Bound<'_, pyo3::types::PyDict>,
    nr: u64,
) -> Result<Option<RequestHookState>, ()> {
    let scheme: String = environ.get_item("wsgi.url_scheme").ok().flatten().and_then(|s| s.extract().ok()).unwrap_or_default();
    let peer = match &conn.peer {
        Peer::Tcp(a) => a.to_string(),
        Peer::Unix => String::new(),
    };
    let req = match app.hooks.request(py, head, &scheme, &peer) {
        Ok(r) => r,
        Err(e) => {
            log_error!("cannot build the request object for hooks: {e}");
            return Ok(None);
        }
    };
    // Gunicorn counts the request after pre_request: nr is 0 for the first one here, 1 after.
    let _ = app.worker.bind(py).setattr("nr", nr.saturating_sub(1));
    if !app.hooks.call_checked(py, Hook::PreRequest, (app.worker.clone_ref(py), req.clone())) {
        return Err(());
    }
    Ok(Some(RequestHookState { req: req.unbind(), environ: environ.clone().into_any().unbind(), nr }))
}

#[allow(clippy::too_many_arguments)]
fn run_post_request(
    py: Python<'_>,
    app: &AppState,
    state: &RequestHookState,
    status: &[u8],
    headers: &[(Vec<u8>, Vec<u8>)],
    length: Option<u64>,
    sent: u64,
    head: &RequestHead,
) {
    if !app.hooks.has(Hook::PostRequest) {
        return;
    }
    let version = match head.version {
        ferrocorn_http::Version::Http10 => (1, 0),
        ferrocorn_http::Version::Http11 => (1, 1),
    };
    let _ = app.worker.bind(py).setattr("nr", state.nr);
    match app.hooks.response(py, status, headers, length, sent, version) {
        Ok(resp) => app.hooks.call(
            py,
            Hook::PostRequest,
            (app.worker.clone_ref(py), state.req.clone_ref(py), state.environ.clone_ref(py), resp),
        ),
        Err(e) => log_error!("cannot build the response object for hooks: {e}"),
    }
}

fn report_failure(py: Python<'_>, head: &RequestHead, f: &AppFailure) {
    let uri = String::from_utf8_lossy(&head.target);
    match f {
        // Gunicorn's wording: "Error handling request METHOD URI", then the traceback.
        AppFailure::Raised(e) => {
            log_exception!("Error handling request {} {uri}\n{}", head.method, format_exception(py, e))
        }
        AppFailure::NoStartResponse => {
            log_error!("Error handling request {uri}: the application returned without calling start_response()")
        }
        // The sync worker's timeout abort arrives here too: the request is answered 500 if
        // nothing was sent, and the error log says which request it was (as Gunicorn's does).
        AppFailure::Exit(code) => {
            log_error!("Error handling request {} {uri}: SystemExit({code}); the worker exits", head.method)
        }
    }
}

/// What the Python half needs besides the request.
struct StepArgs {
    nr: u64,
    sink: Arc<dyn ResponseSink>,
    /// A file response may skip the app's iterator: sendfile is on and the stream is plain.
    sendfile: bool,
    /// The client socket's fd for `gunicorn.socket` (plain streams only), and the connection's
    /// socket object once made.
    socket: Option<(RawFd, ClientSocket)>,
}

/// The connection's `gunicorn.socket` object, made once.
type ClientSocket = Arc<std::sync::Mutex<Option<Py<PyAny>>>>;

/// Closes the connection's `gunicorn.socket` when the connection ends: its duplicate fd would
/// otherwise keep the TCP connection open (no FIN to the client) until Python collects it.
struct SocketRelease(ClientSocket, Rc<Shared>);

impl Drop for SocketRelease {
    fn drop(&mut self) {
        let taken = self.0.lock().ok().and_then(|mut s| s.take());
        if let Some(sock) = taken {
            self.1.executor.detached(move |py| {
                if let Err(e) = sock.bind(py).call_method0("close") {
                    log_debug!("closing gunicorn.socket: {e}");
                }
            });
        }
    }
}

/// The Python half of starting a request: environ, pre_request, app call, first body bytes into
/// `out`. When the body is already complete, post_request runs here too.
#[allow(clippy::too_many_arguments)]
fn start_app(
    py: Python<'_>,
    app: &AppState,
    head: &RequestHead,
    conn: &ConnInfo,
    body: Body,
    out: &mut Vec<u8>,
    args: StepArgs,
    captured: &mut Captured,
) -> (Started, Option<RequestHookState>) {
    let environ = match app.ctx.build(py, head, conn, Input::new(body)) {
        Ok(env) => env,
        Err(e) => {
            log_error!("Error handling request {}: {e}", String::from_utf8_lossy(&head.target));
            return (Started::Error(e.status()), None);
        }
    };
    let sr = match add_response_keys(py, &environ, args.sink, args.socket) {
        Ok(sr) => sr,
        Err(e) => {
            log_error!("Error handling request {}\n{}", String::from_utf8_lossy(&head.target), format_exception(py, &e));
            return (Started::Error(500), None);
        }
    };
    let hook_state = if app.request_hooks {
        match run_pre_request(py, app, head, conn, &environ, args.nr) {
            Ok(state) => state,
            Err(()) => return (Started::Error(500), None),
        }
    } else {
        None
    };
    let started = call_app(py, app, head, environ.clone(), sr, out, hook_state, args.sendfile);
    // After the call, so keys that middleware added are seen (Gunicorn reads them at the end).
    *captured = app.access_capture.capture(&environ);
    started
}

/// The environ keys that reach the connection, as Gunicorn 27 sets them: `wsgi.early_hints`
/// and `gunicorn.socket`. Returns the `start_response` they share.
fn add_response_keys(
    py: Python<'_>,
    environ: &Bound<'_, pyo3::types::PyDict>,
    sink: Arc<dyn ResponseSink>,
    socket: Option<(RawFd, ClientSocket)>,
) -> PyResult<Py<StartResponse>> {
    let sr = Py::new(py, StartResponse::with_sink(Some(sink)))?;
    environ.set_item(pyo3::intern!(py, "wsgi.early_hints"), EarlyHints::new(sr.clone_ref(py)))?;
    if let Some((fd, cell)) = socket {
        // Only this request's lane uses the cell: the connection runs one request at a time.
        let mut slot = cell.lock().map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("gunicorn.socket lock poisoned"))?;
        let sock = match slot.as_ref() {
            Some(s) => s.clone_ref(py),
            None => {
                let s = client_socket(py, fd)?.unbind();
                *slot = Some(s.clone_ref(py));
                s
            }
        };
        drop(slot);
        environ.set_item(pyo3::intern!(py, "gunicorn.socket"), sock)?;
    }
    Ok(sr)
}

/// A `socket.socket` for the client connection, on a duplicate of its fd (the engine keeps
/// the original): what apps that take over the connection (websockets) look for.
fn client_socket(py: Python<'_>, fd: RawFd) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: the fd is the connection's, open for this whole call; only duplicated here.
    let dup = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
    let raw = std::os::fd::IntoRawFd::into_raw_fd(dup);
    let socket = py.import(pyo3::intern!(py, "socket"))?.getattr(pyo3::intern!(py, "socket"))?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("fileno", raw)?;
    socket.call((), Some(&kwargs)).inspect_err(|_| {
        // SAFETY: the socket object was not created, so the duplicate is still ours to close.
        drop(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) });
    })
}

/// Runs post_request for a request that failed before a response began.
fn post_request_failed(py: Python<'_>, app: &AppState, head: &RequestHead, state: &Option<RequestHookState>) {
    if let Some(state) = state {
        run_post_request(py, app, state, b"500 Internal Server Error", &[], None, 0, head);
    }
}

#[allow(clippy::too_many_arguments)]
fn call_app(
    py: Python<'_>,
    app: &AppState,
    head: &RequestHead,
    environ: Bound<'_, pyo3::types::PyDict>,
    sr: Py<StartResponse>,
    out: &mut Vec<u8>,
    hook_state: Option<RequestHookState>,
    sendfile: bool,
) -> (Started, Option<RequestHookState>) {
    let mut call = match AppCall::start(py, app.app.bind(py), environ, sr) {
        Ok(c) => c,
        Err(f) => {
            report_failure(py, head, &f);
            post_request_failed(py, app, head, &hook_state);
            return (failure_outcome(&f), hook_state);
        }
    };
    // A file response is sent from its fd (or not at all for HEAD), never read through Python.
    let is_head = &*head.method == "HEAD";
    let file = if call.is_file_wrapper(py) && (sendfile || is_head) {
        match call.regular_file(py) {
            Some(f) => Some(BodyKind::File(f)),
            None if is_head => Some(BodyKind::Unread),
            None => None,
        }
    } else {
        None
    };
    let pulled = match file {
        Some(_) if call.start_response.borrow(py).status.is_some() => Ok(Pull::Done),
        Some(_) => Err(AppFailure::NoStartResponse),
        None => call.pull(py, out, PULL_BUDGET),
    };
    match pulled {
        Ok(pull) => {
            let mut sr = call.start_response.borrow_mut(py);
            let start = ResponseStart {
                status: sr.status.clone().unwrap_or_default(),
                code: sr.code,
                // Taken, not copied: a later start_response(..., exc_info) cannot change what
                // this response sends once its first bytes exist, and nothing else reads them.
                headers: std::mem::take(&mut sr.headers),
                content_length: sr.content_length,
                wants_close: sr.wants_close,
            };
            let head_sent = sr.head_sent;
            drop(sr);
            let body = file.unwrap_or(BodyKind::Pulled);
            let call = if pull == Pull::Done {
                close_call(py, call, &head.target);
                if let Some(state) = &hook_state {
                    let produced = match &body {
                        BodyKind::File(f) => start.content_length.unwrap_or(f.available).min(f.available),
                        _ => out.len() as u64,
                    };
                    let len = start.content_length.unwrap_or(produced);
                    run_post_request(py, app, state, &start.status, &start.headers, Some(len), produced, head);
                }
                None
            } else {
                Some(call)
            };
            let start = if head_sent { None } else { Some(start) };
            (Started::Response { start, call, body }, hook_state)
        }
        Err(f) => {
            report_failure(py, head, &f);
            close_call(py, call, &head.target);
            post_request_failed(py, app, head, &hook_state);
            (failure_outcome(&f), hook_state)
        }
    }
}

fn failure_outcome(f: &AppFailure) -> Started {
    match f {
        AppFailure::Exit(code) => Started::Exit(*code),
        _ => Started::Error(500),
    }
}

/// Runs the app for one request and writes its response; returns whether to keep the
/// connection open.
async fn handle<S: AsyncWrite + DirectIo + Unpin>(
    stream: &mut S,
    head: Arc<RequestHead>,
    body: Body,
    conn: &ConnInfo,
    sh: &Rc<Shared>,
    client_socket: &ClientSocket,
) -> bool {
    // The wall-clock start is only for the access log's %(t)s; the duration uses t0.
    let started_at = if sh.access_log.is_some() { SystemTime::now() } else { SystemTime::UNIX_EPOCH };
    let t0 = Instant::now();
    let _queued = super::AppQueueGuard::new(sh);
    let lane = sh.executor.lane().await;
    // In flight from here (the app has a lane) until the response is written, on any return.
    let _busy = sh.stats.as_ref().map(|s| s.begin_request(&head.method, &head.path));
    sh.count_request();

    if crate::log::enabled(crate::log::Level::Debug) {
        log_debug!("{} {}", head.method, String::from_utf8_lossy(&head.path));
    }
    let plain = stream.plain().map(|p| p.raw_fd());
    let (mut outlet, sink) = Outlet::new(stream, sh, &head);
    let args = StepArgs {
        nr: sh.requests_served(),
        sink,
        sendfile: sh.settings.sendfile && plain.is_some(),
        socket: plain.map(|fd| (fd, client_socket.clone())),
    };
    let (app, h, c) = (sh.app.clone(), head.clone(), conn.clone());
    let deadline = super::overtime::deadline(sh);
    let first = outlet.run(sh, &lane, &head, move |py| {
        let mut out = Vec::new();
        let mut captured = Captured::Nothing;
        let (started, hook_state) = start_app(py, &app, &h, &c, body, &mut out, args, &mut captured);
        (started, out, hook_state, captured)
    });
    let Some((started, mut out, hook_state, captured)) = super::overtime::within(deadline, first).await else {
        timed_out(&mut outlet, sh, lane, &head, conn, deadline, started_at, t0).await;
        return false;
    };
    // The headers as sent are only collected when an access log will read them.
    let log = |sh: &Shared, status: &[u8], sent: u64, w: Option<&ResponseWriter>| {
        let headers = match (w, &sh.access_log) {
            (Some(w), Some(_)) => w.header_refs(),
            _ => Vec::new(),
        };
        log_access(sh, &head, conn, status, sent, &headers, &captured, started_at, t0)
    };

    let (start, mut call, body_kind) = match started {
        Started::Response { start, call, body } => (start, call, body),
        Started::Exit(code) => {
            drop(lane);
            // Gunicorn's sync worker answers 500 to a request its timeout aborted (and to any
            // SystemExit) when nothing was sent yet; behind a proxy a bare close is a 502.
            finish_failed(&mut outlet, sh, &log).await;
            sh.exit_immediately(code);
            return false;
        }
        Started::Error(code) => {
            drop(lane);
            if outlet.progress.writer.is_none() {
                let reason = response::reason_phrase(code);
                let resp = response::error_response(code, reason, &format!("{reason}\n"));
                let _ = write_all(outlet.stream, &resp, sh).await;
                log(sh, format!("{code} {reason}").as_bytes(), 0, None);
            } else {
                finish_failed(&mut outlet, sh, &log).await;
            }
            return false;
        }
    };
    let done = call.is_none();
    // A finished app frees its lane before the (possibly slow) write.
    let lane = if done {
        drop(lane);
        None
    } else {
        Some(lane)
    };
    if outlet.progress.failed {
        // write() found the client gone; the app has been told (OSError) and is finished.
        if let (Some(lane), Some(r)) = (lane.as_ref(), call.take()) {
            let target = head.clone();
            sh.executor.run(lane, move |py| close_call(py, r, &target.target)).await;
        }
        finish_failed(&mut outlet, sh, &log).await;
        return false;
    }

    let mut wire = Vec::new();
    let ok;
    let timeout = sh.settings.read_timeout();
    if let Some(start) = start {
        let known = match (&body_kind, done) {
            (BodyKind::File(f), _) => Some(start.content_length.unwrap_or(f.available).min(f.available)),
            (BodyKind::Unread, _) => None,
            (BodyKind::Pulled, true) => Some(out.len() as u64),
            (BodyKind::Pulled, false) => None,
        };
        wire.reserve(256);
        let writer = ResponseWriter::begin(&sink::context(sh, &head), start, known, &mut wire);
        outlet.progress.writer = Some(writer);
    }
    let Some(mut w) = outlet.progress.writer.take() else {
        // Unreachable: either the app's write() or the code above started the response.
        return false;
    };
    match body_kind {
        BodyKind::File(file) => {
            ok = send_file(outlet.stream, &mut w, &wire, &file, sh).await.is_ok();
        }
        BodyKind::Unread => {
            w.finish(&mut wire);
            ok = write_all(outlet.stream, &wire, sh).await.is_ok();
        }
        BodyKind::Pulled => {
            // A large body goes out beside the head in one vectored write instead of being
            // copied behind it.
            let mut prefix = std::mem::take(&mut wire);
            let (piece, suffix) = w.frame_parts(&out, &mut prefix);
            let mut last: &[u8] = b"";
            if done && w.has_body() && w.framing() == response::BodyFraming::Chunked {
                last = response::LAST_CHUNK;
            }
            ok = if piece.len() >= VECTORED_BODY {
                writer::write_parts(outlet.stream, &[&prefix, piece, suffix, last], timeout).await.is_ok()
            } else {
                prefix.extend_from_slice(piece);
                prefix.extend_from_slice(suffix);
                prefix.extend_from_slice(last);
                prefix.is_empty() || write_all(outlet.stream, &prefix, sh).await.is_ok()
            };
            wire = prefix;
        }
    }
    out.clear();
    if !ok {
        outlet.progress.failed = true;
    }

    let mut hook_state = hook_state;
    // post_request needs the status and headers at the end; shared, not copied per piece.
    let finish_meta = hook_state.as_ref().map(|_| Arc::new((w.status.clone(), w.headers.clone(), w.content_length)));
    outlet.progress.writer = Some(w);
    // One buffer for the pieces, moved to the app's lane and back each step.
    let mut data = out;
    let mut produced = 0u64;
    let mut lane_slot = lane;
    // A call still running always has its lane (`lane_slot` is only empty when done).
    if let Some(mut running) = call.take() {
        while let Some(lane) = lane_slot.as_ref() {
            if outlet.progress.failed {
                // The client went away mid-stream: still close the iterable (PEP 3333), and
                // run post_request once.
                let (target, app, hs, meta) = (head.clone(), sh.app.clone(), hook_state.take(), finish_meta.clone());
                let sent = outlet.progress.writer.as_ref().map_or(0, |w| w.sent);
                sh.executor
                    .run(lane, move |py| {
                        close_call(py, running, &target.target);
                        if let (Some(state), Some(meta)) = (&hs, &meta) {
                            run_post_request(py, &app, state, &meta.0, &meta.1, meta.2, sent, &target);
                        }
                    })
                    .await;
                break;
            }
            let target = head.clone();
            let app = sh.app.clone();
            let hs = hook_state.take();
            let meta = finish_meta.clone();
            let before = produced;
            data.clear();
            let step = outlet.run(sh, lane, &head, move |py| {
                let r = running.pull(py, &mut data, PULL_BUDGET);
                let produced = before + data.len() as u64;
                let finish = |py: Python<'_>| {
                    if let (Some(state), Some(meta)) = (&hs, &meta) {
                        run_post_request(py, &app, state, &meta.0, &meta.1, meta.2, produced, &target);
                    }
                };
                match r {
                    Ok(Pull::More) => (Some(running), data, Ok(()), hs),
                    Ok(Pull::Done) => {
                        close_call(py, running, &target.target);
                        finish(py);
                        (None, data, Ok(()), None)
                    }
                    Err(f) => {
                        report_failure(py, &target, &f);
                        close_call(py, running, &target.target);
                        finish(py);
                        let exit = if let AppFailure::Exit(code) = f { Some(code) } else { None };
                        (None, data, Err(exit), None)
                    }
                }
            });
            let Some((back, returned, step, hs)) = super::overtime::within(deadline, step).await else {
                let lane = lane_slot.take();
                if let Some(lane) = lane {
                    timed_out(&mut outlet, sh, lane, &head, conn, deadline, started_at, t0).await;
                }
                return false;
            };
            data = returned;
            hook_state = hs;
            produced += data.len() as u64;
            if let Err(exit) = step {
                // Part of the response is on the wire: the only honest signal left is closing.
                finish_failed(&mut outlet, sh, &log).await;
                if let Some(code) = exit {
                    sh.exit_immediately(code);
                }
                return false;
            }
            let Some(w) = outlet.progress.writer.as_mut() else { break };
            wire.clear();
            w.frame(&mut wire, &data);
            let finished = back.is_none();
            if finished {
                w.finish(&mut wire);
            }
            if !wire.is_empty() && !outlet.progress.failed && write_all(outlet.stream, &wire, sh).await.is_err() {
                outlet.progress.failed = true;
            }
            sh.heartbeat.beat();
            match back {
                Some(r) => running = r,
                None => break,
            }
        }
    }
    drop(lane_slot);
    let Some(w) = outlet.progress.writer.take() else { return false };
    log(sh, &w.status, w.sent, Some(&w));
    !outlet.progress.failed && w.keep_alive()
}

/// The app ran past `request_timeout`: answers 503 if nothing was sent yet (else the
/// connection just closes), writes the access line, and hands the stuck lane to `overtime`.
#[allow(clippy::too_many_arguments)]
async fn timed_out<S: AsyncWrite + DirectIo + Unpin>(
    outlet: &mut Outlet<'_, S>,
    sh: &Shared,
    lane: super::executor::Lane<'_>,
    head: &RequestHead,
    conn: &ConnInfo,
    deadline: Option<tokio::time::Instant>,
    started_at: SystemTime,
    t0: Instant,
) {
    // 503, not 504: ferrocorn is the origin server, not a gateway whose upstream failed, and
    // the condition is temporary (the worker is being replaced).
    let w = outlet.progress.writer.take();
    match &w {
        Some(w) => {
            let headers = if sh.access_log.is_some() { w.header_refs() } else { Vec::new() };
            log_access(sh, head, conn, &w.status, w.sent, &headers, &Captured::Nothing, started_at, t0);
        }
        None => {
            if !outlet.progress.failed {
                let resp = response::error_response(503, "Service Unavailable", "Service Unavailable\n");
                let _ = write_all(outlet.stream, &resp, sh).await;
            }
            log_access(sh, head, conn, b"503 Service Unavailable", 0, &[], &Captured::Nothing, started_at, t0);
        }
    }
    super::overtime::give_up(sh, lane, head, conn, deadline);
}

/// Ends a response that failed: a 500 when nothing was sent yet, else nothing more (the
/// connection closes); one access line either way, with the status the client got.
async fn finish_failed<S: AsyncWrite + DirectIo + Unpin>(
    outlet: &mut Outlet<'_, S>,
    sh: &Shared,
    log: &impl Fn(&Shared, &[u8], u64, Option<&ResponseWriter>),
) {
    match outlet.progress.writer.take() {
        Some(w) => log(sh, &w.status, w.sent, Some(&w)),
        None if outlet.progress.failed => log(sh, b"500 Internal Server Error", 0, None),
        None => {
            let resp = response::error_response(500, "Internal Server Error", "Internal Server Error\n");
            let _ = write_all(outlet.stream, &resp, sh).await;
            log(sh, b"500 Internal Server Error", 0, None);
        }
    }
}

/// Writes the head in `wire`, then the file's bytes with sendfile, framed.
async fn send_file<S: AsyncWrite + DirectIo + Unpin>(
    stream: &mut S,
    w: &mut ResponseWriter,
    wire: &[u8],
    file: &FileBody,
    sh: &Shared,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let timeout = sh.settings.read_timeout();
    let count = match w.framing() {
        response::BodyFraming::Chunked => file.available,
        _ => w.take_raw(file.available),
    };
    let mut head = wire.to_vec();
    let chunked = w.has_body() && w.framing() == response::BodyFraming::Chunked && count > 0;
    if chunked {
        head.extend_from_slice(format!("{count:X}\r\n").as_bytes());
        w.sent = w.sent.saturating_add(count);
    }
    write_all(stream, &head, sh).await?;
    if w.has_body() && count > 0 {
        let Some(sock) = stream.plain() else {
            return Err(std::io::Error::other("sendfile on a stream that is not a plain socket"));
        };
        let n = writer::sendfile_all(sock, file.fd.as_raw_fd(), file.offset, count, timeout).await?;
        if n < count {
            // The file shrank under us: the framing promised more, so the connection must close.
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the file ended before its length"));
        }
    }
    let mut tail = Vec::new();
    if chunked {
        tail.extend_from_slice(b"\r\n");
    }
    w.finish(&mut tail);
    if tail.is_empty() { Ok(()) } else { write_all(stream, &tail, sh).await }
}

fn close_call(py: Python<'_>, mut call: AppCall, target: &[u8]) {
    if let Err(e) = call.close(py) {
        log_error!("Error closing the response of {}\n{}", String::from_utf8_lossy(target), format_exception(py, &e));
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn log_access(
    sh: &Shared,
    head: &RequestHead,
    conn: &ConnInfo,
    status: &[u8],
    sent: u64,
    resp_headers: &[(&[u8], &[u8])],
    environ: &Captured,
    start: SystemTime,
    t0: Instant,
) {
    let request_time = t0.elapsed();
    crate::metrics::request_done(status_code(status), request_time);
    let Some(log) = &sh.access_log else { return };
    let remote = match (&conn.proxy, &conn.peer) {
        (Some(p), _) if p.source.is_some() => p.source.map(|s| s.ip().to_string()).unwrap_or_default(),
        (_, Peer::Tcp(a)) => a.ip().to_string(),
        (_, Peer::Unix) => String::new(),
    };
    let req_headers: Vec<(&[u8], &[u8])> = head.headers.iter().map(|h| (&*h.name, &*h.value)).collect();
    let protocol = match head.version {
        Version::Http10 => "HTTP/1.0",
        Version::Http11 => "HTTP/1.1",
    };
    log.write(&AccessRecord {
        remote_addr: &remote,
        method: &head.method,
        raw_uri: &head.target,
        // Percent-decoded, as PATH_INFO is (%(U)s).
        path: &head.path,
        query: &head.query,
        protocol,
        status,
        response_length: Some(sent),
        request_headers: &req_headers,
        response_headers: resp_headers,
        environ,
        request_time,
        start,
    });
}

/// The numeric code at the start of a status line such as `200 OK`.
fn status_code(status: &[u8]) -> Option<u16> {
    let digits = status.split(|&b| b == b' ').next()?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

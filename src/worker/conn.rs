//! One client connection: read a head, receive the body, run the app, write the response,
//! repeat while keep-alive allows. Every wait on the client has a deadline, and the app is
//! only entered once a request is complete.

use super::body::{BodyError, read_body};
use super::{AppKind, AppState, Lifecycle, ProxyMode, Shared};
use crate::hooks::Hook;
use crate::log::{AccessRecord, Captured};
use crate::wsgi::{AppCall, AppFailure, Body, ConnInfo, Input, Peer, Pull, format_exception};
use crate::{log_debug, log_error, log_exception};
use ferrocorn_http::response::{self, BodyFraming, ResponsePlan};
use ferrocorn_http::{Framing, HttpError, ParseOptions, Parsed, ProxyParsed, RequestHead, Version, parse_proxy_header};
use pyo3::prelude::*;
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
    S: AsyncRead + AsyncWrite + Unpin,
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
            AppKind::Wsgi => handle(&mut stream, Arc::new(head), body, &conn, &sh).await,
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

pub(super) async fn write_all<S: AsyncWrite + Unpin>(stream: &mut S, data: &[u8], sh: &Shared) -> std::io::Result<()> {
    let mut w = std::pin::pin!(stream.write_all(data));
    // Most responses fit the socket buffer and are written by the first attempt: only a write
    // that has to wait gets a timer (arming and cancelling one costs more than the write).
    let first = std::future::poll_fn(|cx| std::task::Poll::Ready(w.as_mut().poll(cx))).await;
    if let std::task::Poll::Ready(r) = first {
        return r;
    }
    match sh.settings.read_timeout() {
        Some(t) => tokio::time::timeout(t, w)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "client stopped reading"))?,
        None => w.await,
    }
}

/// Bodies at least this large are written with the head by `writev` rather than copied.
const VECTORED_BODY: usize = 16 * 1024;

/// Writes `head` then `body` with vectored writes, under the same deadline as [`write_all`].
async fn write_all_parts<S: AsyncWrite + Unpin>(stream: &mut S, head: &[u8], body: &[u8], sh: &Shared) -> std::io::Result<()> {
    let write = async {
        let (mut a, mut b) = (head, body);
        while !a.is_empty() || !b.is_empty() {
            let bufs = [std::io::IoSlice::new(a), std::io::IoSlice::new(b)];
            let n = stream.write_vectored(&bufs).await?;
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::WriteZero));
            }
            if n < a.len() {
                a = &a[n..];
            } else {
                b = &b[n - a.len()..];
                a = &[];
            }
        }
        Ok(())
    };
    match sh.settings.read_timeout() {
        Some(t) => tokio::time::timeout(t, write)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "client stopped reading"))?,
        None => write.await,
    }
}

/// What the first step of the app call produced.
enum Started {
    Response {
        status: Vec<u8>,
        code: u16,
        headers: Vec<(Vec<u8>, Vec<u8>)>,
        content_length: Option<u64>,
        wants_close: bool,
        /// Still producing body (`None` once the iterable is exhausted and closed).
        call: Option<AppCall>,
    },
    /// Answer with this status without calling (or after failing) the app.
    Error(u16),
    /// The app raised SystemExit: the worker exits with this status.
    Exit(i32),
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
        AppFailure::Exit(code) => log_debug!("SystemExit({code}) during {uri}: the worker exits"),
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
    nr: u64,
    captured: &mut Captured,
) -> (Started, Option<RequestHookState>) {
    let environ = match app.ctx.build(py, head, conn, Input::new(body)) {
        Ok(env) => env,
        Err(e) => {
            log_error!("Error handling request {}: {e}", String::from_utf8_lossy(&head.target));
            return (Started::Error(e.status()), None);
        }
    };
    let hook_state = if app.request_hooks {
        match run_pre_request(py, app, head, conn, &environ, nr) {
            Ok(state) => state,
            Err(()) => return (Started::Error(500), None),
        }
    } else {
        None
    };
    let started = call_app(py, app, head, environ.clone(), out, hook_state);
    // After the call, so keys that middleware added are seen (Gunicorn reads them at the end).
    *captured = app.access_capture.capture(&environ);
    started
}

fn call_app(
    py: Python<'_>,
    app: &AppState,
    head: &RequestHead,
    environ: Bound<'_, pyo3::types::PyDict>,
    out: &mut Vec<u8>,
    hook_state: Option<RequestHookState>,
) -> (Started, Option<RequestHookState>) {
    let mut call = match AppCall::start(py, app.app.bind(py), environ) {
        Ok(c) => c,
        Err(f) => {
            report_failure(py, head, &f);
            return (failure_outcome(&f), hook_state);
        }
    };
    match call.pull(py, out, PULL_BUDGET) {
        Ok(pull) => {
            let sr = call.start_response.borrow(py);
            let (status, code, content_length, wants_close) =
                (sr.status.clone().unwrap_or_default(), sr.code, sr.content_length, sr.wants_close);
            drop(sr);
            // Taken, not copied: a later start_response(..., exc_info) cannot change what this
            // response sends once its first bytes exist, and nothing else reads them.
            let headers = std::mem::take(&mut call.start_response.borrow_mut(py).headers);
            let call = if pull == Pull::Done {
                close_call(py, call, &head.target);
                if let Some(state) = &hook_state {
                    let len = content_length.unwrap_or(out.len() as u64);
                    run_post_request(py, app, state, &status, &headers, Some(len), out.len() as u64, head);
                }
                None
            } else {
                Some(call)
            };
            (Started::Response { status, code, headers, content_length, wants_close, call }, hook_state)
        }
        Err(f) => {
            report_failure(py, head, &f);
            close_call(py, call, &head.target);
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
async fn handle<S: AsyncWrite + Unpin>(
    stream: &mut S,
    head: Arc<RequestHead>,
    body: Body,
    conn: &ConnInfo,
    sh: &Rc<Shared>,
) -> bool {
    // The wall-clock start is only for the access log's %(t)s; the duration uses t0.
    let started_at = if sh.access_log.is_some() { SystemTime::now() } else { SystemTime::UNIX_EPOCH };
    let t0 = Instant::now();
    let _queued = super::AppQueueGuard::new(sh);
    let lane = sh.executor.lane().await;
    // In flight from here (the app has a lane) until the response is written, on any return.
    let _busy = sh.stats.as_ref().map(|s| s.begin());
    sh.count_request();

    if crate::log::enabled(crate::log::Level::Debug) {
        log_debug!("{} {}", head.method, String::from_utf8_lossy(&head.path));
    }
    let (app, h, c) = (sh.app.clone(), head.clone(), conn.clone());
    let nr = sh.requests_served();
    let (started, mut out, hook_state, captured) = sh
        .executor
        .run(&lane, move |py| {
            let mut out = Vec::new();
            let mut captured = Captured::Nothing;
            let (started, hook_state) = start_app(py, &app, &h, &c, body, &mut out, nr, &mut captured);
            (started, out, hook_state, captured)
        })
        .await;

    let (status, code, headers, content_length, wants_close, mut call) = match started {
        Started::Response { status, code, headers, content_length, wants_close, call } => {
            (status, code, headers, content_length, wants_close, call)
        }
        Started::Exit(code) => {
            drop(lane);
            sh.exit_immediately(code);
            return false;
        }
        Started::Error(code) => {
            drop(lane);
            let reason = response::reason_phrase(code);
            let resp = response::error_response(code, reason, &format!("{reason}\n"));
            let _ = write_all(stream, &resp, sh).await;
            log_access(sh, &head, conn, format!("{code} {reason}").as_bytes(), 0, &[], &captured, started_at, t0);
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

    // A complete body without a length gets one: cheaper than chunking and it lets HTTP/1.0
    // clients keep the connection (Gunicorn would chunk or close).
    let length_text = match (content_length, done) {
        (None, true) if !(100..200).contains(&code) && code != 204 && code != 304 => Some(out.len().to_string()),
        _ => None,
    };
    let mut header_refs: Vec<(&[u8], &[u8])> = headers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())).collect();
    if let Some(text) = &length_text {
        header_refs.push((b"Content-Length", text.as_bytes()));
    }
    let server_keep = sh.keep_alive_allowed() && !wants_close;
    let plan = response::plan(&head, code, &header_refs, server_keep);

    let is_head = &*head.method == "HEAD";
    // A large body with a length goes out beside the head in one vectored write instead of
    // being copied behind it.
    let vectored = !is_head && out.len() >= VECTORED_BODY && matches!(plan.framing, BodyFraming::Length(_));
    let mut wire = Vec::with_capacity(256 + if vectored { 0 } else { out.len() });
    response::write_head(&mut wire, head.version, &status, &header_refs, &plan, &sh.date(), &sh.settings.server_header);
    let mut sent_body: u64 = 0;
    let mut keep = plan.keep_alive;
    let mut remaining = match plan.framing {
        BodyFraming::Length(n) => Some(n),
        _ => None,
    };
    let out_len_first = out.len() as u64;
    let mut ok = if vectored {
        let left = remaining.unwrap_or(0);
        // A body longer than its Content-Length is cut, as in frame_into.
        let n = (out.len() as u64).min(left) as usize;
        remaining = Some(left - n as u64);
        sent_body += n as u64;
        write_all_parts(stream, &wire, &out[..n], sh).await.is_ok()
    } else {
        frame_into(&mut wire, &out, &plan, is_head, &mut remaining, &mut sent_body);
        if done && plan.framing == BodyFraming::Chunked && !is_head {
            wire.extend_from_slice(response::LAST_CHUNK);
        }
        write_all(stream, &wire, sh).await.is_ok()
    };
    out.clear();

    let mut hook_state = hook_state;
    let mut produced = out_len_first;
    // post_request needs the status and headers at the end; shared, not copied per piece.
    let finish_meta = hook_state.as_ref().map(|_| Arc::new((status.clone(), headers.clone())));
    // One buffer for the pieces, moved to the app's lane and back each step.
    let mut data = out;
    if let (Some(lane), Some(mut running)) = (lane.as_ref(), call.take()) {
        while ok {
            let target = head.clone();
            let app = sh.app.clone();
            let hs = hook_state.take();
            let meta = finish_meta.clone();
            let before = produced;
            data.clear();
            let (back, returned, step, hs) = sh
                .executor
                .run(lane, move |py| {
                    let r = running.pull(py, &mut data, PULL_BUDGET);
                    let produced = before + data.len() as u64;
                    let finish = |py: Python<'_>| {
                        if let (Some(state), Some(meta)) = (&hs, &meta) {
                            run_post_request(py, &app, state, &meta.0, &meta.1, content_length, produced, &target);
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
                })
                .await;
            data = returned;
            hook_state = hs;
            produced += data.len() as u64;
            if let Err(exit) = step {
                if let Some(code) = exit {
                    sh.exit_immediately(code);
                }
                // Part of the response is on the wire: the only honest signal left is closing.
                return false;
            }
            wire.clear();
            frame_into(&mut wire, &data, &plan, is_head, &mut remaining, &mut sent_body);
            let finished = back.is_none();
            if finished && plan.framing == BodyFraming::Chunked && !is_head {
                wire.extend_from_slice(response::LAST_CHUNK);
            }
            if !wire.is_empty() {
                ok = write_all(stream, &wire, sh).await.is_ok();
            }
            sh.heartbeat.beat();
            match back {
                Some(r) if !ok => {
                    // The client went away mid-stream: still close the iterable (PEP 3333).
                    let target = head.clone();
                    sh.executor.run(lane, move |py| close_call(py, r, &target.target)).await;
                    break;
                }
                Some(r) => running = r,
                None => break,
            }
        }
    }
    drop(lane);
    if !ok {
        return false;
    }
    if let Some(left) = remaining {
        if left > 0 && !is_head {
            // The app sent less than its Content-Length: the framing is broken, so close.
            keep = false;
        }
    }
    log_access(sh, &head, conn, &status, sent_body, &header_refs, &captured, started_at, t0);
    keep
}

fn close_call(py: Python<'_>, mut call: AppCall, target: &[u8]) {
    if let Err(e) = call.close(py) {
        log_error!("Error closing the response of {}\n{}", String::from_utf8_lossy(target), format_exception(py, &e));
    }
}

/// Appends `data` to `wire` framed per `plan`; HEAD bodies are dropped, and a body longer than
/// its Content-Length is cut (as Gunicorn does).
pub(super) fn frame_into(
    wire: &mut Vec<u8>,
    data: &[u8],
    plan: &ResponsePlan,
    is_head: bool,
    remaining: &mut Option<u64>,
    sent: &mut u64,
) {
    if data.is_empty() || is_head {
        return;
    }
    match plan.framing {
        BodyFraming::Empty => {}
        BodyFraming::Length(_) => {
            let left = remaining.unwrap_or(0);
            let n = (data.len() as u64).min(left) as usize;
            wire.extend_from_slice(&data[..n]);
            *remaining = Some(left - n as u64);
            *sent += n as u64;
        }
        BodyFraming::Chunked => {
            response::write_chunk(wire, data);
            *sent += data.len() as u64;
        }
        BodyFraming::UntilClose => {
            wire.extend_from_slice(data);
            *sent += data.len() as u64;
        }
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

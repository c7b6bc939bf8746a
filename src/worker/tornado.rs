//! One request to a native `tornado.web.Application` (`-k tornado`).
//!
//! The engine has already parsed the head and received the whole body, as for WSGI. The
//! request is handed to the Tornado loop (on the worker's main thread) as Tornado's own HTTP
//! server would hand it over: `app.start_request()` with a connection object of ours
//! (`ferrocorn.workers.gtornado`). The handler then runs on the loop for as long as it likes
//! (`async` handlers included); what it writes comes back here as [`Event`]s over a channel,
//! and the engine frames and writes it. A write's future resolves once the bytes are written,
//! so `await self.flush()` still means "the client took it".

use super::Shared;
use super::conn::{log_access, write_all};
use super::sink;
use super::writer::{ResponseStart, ResponseWriter};
use crate::log::Captured;
use crate::log_error;
use crate::wsgi::{Body, ConnInfo, Peer, format_exception};
use ferrocorn_http::response;
use ferrocorn_http::{RequestHead, Version};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use std::os::unix::fs::FileExt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;

/// What the handler did, in order.
enum Event {
    Head {
        code: u16,
        reason: Vec<u8>,
        headers: Vec<(Vec<u8>, Vec<u8>)>,
        chunk: Vec<u8>,
        ack: Py<PyAny>,
    },
    Data {
        chunk: Vec<u8>,
        ack: Py<PyAny>,
    },
    Finish,
    /// The request failed before a response began (e.g. Tornado refused the Host header).
    Fail(u16),
}

/// The handler's way back to the engine; lives on the Python connection object.
#[pyclass(frozen, module = "ferrocorn._core")]
pub struct TornadoSink {
    tx: mpsc::UnboundedSender<Event>,
}

/// Latin-1, as HTTP/1 field text is carried (Tornado encodes headers the same way).
fn latin1(s: &str) -> Vec<u8> {
    s.chars().map(|c| if (c as u32) < 256 { c as u8 } else { b'?' }).collect()
}

#[pymethods]
impl TornadoSink {
    /// Returns false when the client is gone (the caller resolves the future itself).
    fn head(&self, code: u16, reason: &str, headers: Vec<(String, String)>, chunk: Vec<u8>, ack: Py<PyAny>) -> bool {
        let headers = headers
            .iter()
            .map(|(n, v)| (latin1(n), latin1(v)))
            // Tornado already refuses CR/LF in values; anything else invalid is dropped rather
            // than written, as for WSGI apps.
            .filter(|(n, v)| response::validate_header(n, v).is_ok() || response::is_hop_by_hop(n))
            .collect();
        self.tx.send(Event::Head { code, reason: latin1(reason), headers, chunk, ack }).is_ok()
    }

    fn data(&self, chunk: Vec<u8>, ack: Py<PyAny>) -> bool {
        self.tx.send(Event::Data { chunk, ack }).is_ok()
    }

    fn finish(&self) {
        let _ = self.tx.send(Event::Finish);
    }

    fn fail(&self, code: u16) {
        let _ = self.tx.send(Event::Fail(code));
    }
}

/// The request as plain values, so the Python side needs no engine types.
struct RequestArgs {
    method: String,
    uri: String,
    version: &'static str,
    headers: Vec<(String, String)>,
    body: Body,
    remote_ip: String,
    protocol: &'static str,
}

fn latin1_text(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

impl RequestArgs {
    fn new(head: &RequestHead, conn: &ConnInfo, body: Body) -> RequestArgs {
        RequestArgs {
            method: head.method.to_string(),
            uri: latin1_text(&head.target),
            version: match head.version {
                Version::Http10 => "HTTP/1.0",
                Version::Http11 => "HTTP/1.1",
            },
            headers: head.headers.iter().map(|h| (latin1_text(&h.name), latin1_text(&h.value))).collect(),
            body,
            // Tornado's own server reports 0.0.0.0 for unix sockets.
            remote_ip: match &conn.peer {
                Peer::Tcp(a) => a.ip().to_string(),
                Peer::Unix => "0.0.0.0".into(),
            },
            protocol: if conn.tls { "https" } else { "http" },
        }
    }
}

fn body_bytes(body: &Body) -> std::io::Result<Vec<u8>> {
    match body {
        Body::Memory(v) => Ok(v.clone()),
        Body::File { file, len } => {
            let mut buf = vec![0u8; *len as usize];
            file.read_exact_at(&mut buf, 0)?;
            Ok(buf)
        }
    }
}

/// Starts the request on the loop; returns the Python connection object (for the close
/// callback) or the status to answer with.
fn start(py: Python<'_>, app: &Bound<'_, PyAny>, args: RequestArgs, tx: mpsc::UnboundedSender<Event>) -> Result<Py<PyAny>, u16> {
    let body = match body_bytes(&args.body) {
        Ok(b) => b,
        Err(e) => {
            log_error!("Error handling request {}: cannot read the request body: {e}", args.uri);
            return Err(500);
        }
    };
    let sink = match Py::new(py, TornadoSink { tx }) {
        Ok(s) => s,
        Err(e) => {
            log_error!("Error handling request {}\n{}", args.uri, format_exception(py, &e));
            return Err(500);
        }
    };
    let started = py.import("ferrocorn.workers.gtornado").and_then(|m| {
        m.call_method1(
            "start_request",
            (
                app,
                sink,
                args.method,
                &args.uri,
                args.version,
                args.headers,
                PyBytes::new(py, &body),
                args.remote_ip,
                args.protocol,
            ),
        )
    });
    match started {
        Ok(conn) => Ok(conn.unbind()),
        Err(e) => {
            log_error!("Error handling request {}\n{}", args.uri, format_exception(py, &e));
            Err(500)
        }
    }
}

fn ack(py: Python<'_>, fut: Py<PyAny>) {
    let done = py.import("ferrocorn.workers.gtornado").and_then(|m| m.call_method1("_resolve", (fut,)));
    if let Err(e) = done {
        log_error!("cannot resolve a Tornado write future\n{}", format_exception(py, &e));
    }
}

fn connection_lost(py: Python<'_>, conn: Py<PyAny>) {
    if let Err(e) = conn.bind(py).call_method0("_connection_lost") {
        log_error!("Error in a Tornado close callback\n{}", format_exception(py, &e));
    }
}

async fn refuse<S: AsyncWrite + Unpin>(
    stream: &mut S,
    sh: &Shared,
    head: &RequestHead,
    conn: &ConnInfo,
    code: u16,
    t: (SystemTime, Instant),
) {
    let reason = response::reason_phrase(code);
    let resp = response::error_response(code, reason, &format!("{reason}\n"));
    let _ = write_all(stream, &resp, sh).await;
    log_access(sh, head, conn, format!("{code} {reason}").as_bytes(), 0, &[], &Captured::Nothing, t.0, t.1);
}

/// Serves one request with the Tornado application; returns whether to keep the connection.
pub async fn handle<S: AsyncWrite + Unpin>(
    stream: &mut S,
    head: Arc<RequestHead>,
    body: Body,
    conn: &ConnInfo,
    sh: &Rc<Shared>,
) -> bool {
    let times = (SystemTime::now(), Instant::now());
    let lane = sh.executor.lane().await;
    // In flight from here until the response is written (see conn::handle).
    let _busy = sh.stats.as_ref().map(|s| s.begin_request(&head.method, &head.path));
    sh.count_request();

    let (tx, mut rx) = mpsc::unbounded_channel();
    let args = RequestArgs::new(&head, conn, body);
    let app = sh.app.clone();
    let tconn = match sh.executor.run(&lane, move |py| start(py, app.app.bind(py), args, tx)).await {
        Ok(c) => c,
        Err(code) => {
            refuse(stream, sh, &head, conn, code, times).await;
            return false;
        }
    };

    let (code, reason, headers, chunk, first_ack) = match rx.recv().await {
        Some(Event::Head { code, reason, headers, chunk, ack }) => (code, reason, headers, chunk, ack),
        Some(Event::Fail(code)) => {
            refuse(stream, sh, &head, conn, code, times).await;
            return false;
        }
        // Data before a head cannot happen (Tornado always writes headers first); a handler
        // that was dropped without answering leaves nothing to say but an error.
        Some(Event::Data { .. }) | Some(Event::Finish) | None => {
            log_error!("Error handling request {}: the handler ended without a response", latin1_text(&head.target));
            refuse(stream, sh, &head, conn, 500, times).await;
            return false;
        }
    };

    let mut status = code.to_string().into_bytes();
    status.push(b' ');
    status.extend_from_slice(&reason);
    let start = ResponseStart { status, code, headers, content_length: None, wants_close: false };
    let mut wire = Vec::with_capacity(256 + chunk.len());
    // Tornado's own Content-Length (if any) is among the headers: plan() reads it from there.
    let mut w = ResponseWriter::begin(&sink::context(sh, &head), start, None, &mut wire);
    w.frame(&mut wire, &chunk);

    let mut pending_ack = Some(first_ack);
    let mut ok = true;
    let mut finished = false;
    loop {
        // Coalesce whatever the handler has written meanwhile into one write.
        loop {
            match rx.try_recv() {
                Ok(Event::Data { chunk, ack: a }) => {
                    w.frame(&mut wire, &chunk);
                    if let Some(prev) = pending_ack.replace(a) {
                        sh.executor.run(&lane, move |py| ack(py, prev)).await;
                    }
                }
                Ok(Event::Finish) => {
                    finished = true;
                    break;
                }
                Ok(Event::Head { .. }) | Ok(Event::Fail(_)) => {}
                Err(_) => break,
            }
        }
        if finished {
            w.finish(&mut wire);
        }
        if !wire.is_empty() {
            ok = write_all(stream, &wire, sh).await.is_ok();
            wire.clear();
        }
        if let Some(a) = pending_ack.take() {
            sh.executor.run(&lane, move |py| ack(py, a)).await;
        }
        sh.heartbeat.beat();
        if !ok || finished {
            break;
        }
        match rx.recv().await {
            Some(Event::Data { chunk, ack: a }) => {
                w.frame(&mut wire, &chunk);
                pending_ack = Some(a);
            }
            Some(Event::Finish) => finished = true,
            Some(Event::Head { .. }) | Some(Event::Fail(_)) => {}
            // The handler was dropped mid-response: the framing cannot be completed.
            None => {
                ok = false;
                break;
            }
        }
    }
    if !ok {
        sh.executor.run(&lane, move |py| connection_lost(py, tconn)).await;
    }
    drop(lane);
    // Every request that reached the app gets its access line, a broken one included.
    log_access(sh, &head, conn, &w.status, w.sent, &w.header_refs(), &Captured::Nothing, times.0, times.1);
    ok && w.keep_alive()
}

//! The Prometheus text endpoint (`--metrics-bind`): a listener the master serves itself, from
//! its single-threaded loop, so it must never wait on a metrics client.
//!
//! Everything is non-blocking. A connection is kept (at most [`MAX_PENDING`] of them, each for
//! at most [`READ_DEADLINE_MS`]) only until its request head has arrived; then the answer is
//! written with one `write(2)` into a send buffer made large enough for it, and the connection
//! is shut down and closed. A write that would block drops the connection. Waiting for the
//! request before answering matters: closing a socket that later receives the client's request
//! makes the kernel send a reset, which can destroy the answer before the client reads it.

use crate::worker::stats::Snapshot;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};

/// Connections waiting for their request; the oldest is dropped beyond this.
pub const MAX_PENDING: usize = 16;
/// How long a connection may take to send its request head.
pub const READ_DEADLINE_MS: u64 = 2000;
/// A request head longer than this is answered as it stands (the request is ignored anyway).
const MAX_HEAD: usize = 8192;
/// Send buffer for answers: far above the few KiB a scrape of even a large pool needs.
const SEND_BUFFER: usize = 1 << 20;

struct Pending {
    stream: TcpStream,
    head: Vec<u8>,
    deadline: u64,
}

/// What a pending connection needs next.
enum Step {
    Wait,
    Answer,
    Drop,
}

/// No `Drop` that shuts connections down: a forked worker drops its copy of the endpoint, and
/// a shutdown there would cut the master's pending exchanges; closing its descriptors is enough.
pub struct Endpoint {
    listener: TcpListener,
    pending: Vec<Pending>,
}

impl Endpoint {
    pub fn bind(host: &str, port: u16) -> io::Result<Endpoint> {
        let listener = TcpListener::bind((host, port))?;
        listener.set_nonblocking(true)?;
        Ok(Endpoint { listener, pending: Vec::new() })
    }

    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// The descriptors the master's poll should wake on.
    pub fn poll_fds(&self, out: &mut Vec<RawFd>) {
        out.push(self.listener.as_raw_fd());
        out.extend(self.pending.iter().map(|p| p.stream.as_raw_fd()));
    }

    /// Accepts what is waiting, answers connections whose request has arrived, and drops
    /// expired ones. `render` builds the metrics text, at most once per call.
    pub fn serve(&mut self, now_ms: u64, ready: Readiness, render: impl FnOnce() -> String) {
        self.accept_all(now_ms);
        let mut render = Some(render);
        let mut body: Option<String> = None;
        let mut i = 0;
        while i < self.pending.len() {
            let p = &mut self.pending[i];
            match read_head(p, now_ms) {
                Step::Wait => {
                    i += 1;
                    continue;
                }
                Step::Drop => {}
                Step::Answer => {
                    let answer = match route(&p.head) {
                        Route::Metrics => {
                            let text = body.get_or_insert_with(|| render.take().map(|f| f()).unwrap_or_default());
                            response("200 OK", text)
                        }
                        Route::Healthz => response("200 OK", "ok\n"),
                        Route::Readyz => match ready {
                            Readiness::Ready => response("200 OK", "ready\n"),
                            Readiness::NotReady(why) => response("503 Service Unavailable", &format!("not ready: {why}\n")),
                        },
                        Route::NotFound => {
                            response("404 Not Found", "Not Found: the metrics are at /metrics, probes at /healthz and /readyz\n")
                        }
                    };
                    // One attempt: a client too slow to take a few KiB is not waited for.
                    if let Ok(n) = p.stream.write(answer.as_bytes()) {
                        if n < answer.len() {
                            crate::log_debug!("metrics client too slow, answer cut");
                        }
                    }
                }
            }
            // Shutdown, not just close: a worker forked while this connection was pending holds
            // a copy of the descriptor, and the client must see the end now.
            let p = self.pending.swap_remove(i);
            let _ = p.stream.shutdown(Shutdown::Both);
        }
    }

    fn accept_all(&mut self, now_ms: u64) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
                    if self.pending.len() >= MAX_PENDING {
                        let oldest = self.pending.remove(0);
                        let _ = oldest.stream.shutdown(Shutdown::Both);
                    }
                    self.pending.push(Pending { stream, head: Vec::new(), deadline: now_ms + READ_DEADLINE_MS });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if e.kind() != io::ErrorKind::WouldBlock {
                        crate::log_debug!("metrics accept: {e}");
                    }
                    return;
                }
            }
        }
    }
}

/// Reads whatever has arrived, without blocking.
fn read_head(p: &mut Pending, now_ms: u64) -> Step {
    let mut buf = [0u8; 2048];
    loop {
        match p.stream.read(&mut buf) {
            Ok(0) if p.head.is_empty() => return Step::Drop,
            Ok(0) => return Step::Answer,
            Ok(n) => {
                p.head.extend_from_slice(&buf[..n]);
                if p.head.len() >= MAX_HEAD {
                    return Step::Answer;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return Step::Drop,
        }
    }
    if head_complete(&p.head) {
        Step::Answer
    } else if now_ms >= p.deadline {
        Step::Drop
    } else {
        Step::Wait
    }
}

fn head_complete(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n")
}

/// Whether the server should get traffic, for `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// Why not, as the probe's body says it.
    NotReady(&'static str),
}

/// What a request asks for. Anything unknown is a 404, so a typo is noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `GET /metrics` (or `/metrics?...`, or `/`).
    Metrics,
    /// `GET /healthz`: the master is alive and its loop turns.
    Healthz,
    /// `GET /readyz`: workers have booted and the server is not draining.
    Readyz,
    NotFound,
}

fn route(head: &[u8]) -> Route {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    match (method, path) {
        (b"GET", b"/metrics" | b"/") => Route::Metrics,
        (b"GET", b"/healthz") => Route::Healthz,
        (b"GET", b"/readyz") => Route::Readyz,
        _ => Route::NotFound,
    }
}

#[cfg(test)]
fn is_metrics_request(head: &[u8]) -> bool {
    route(head) == Route::Metrics
}

fn response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// One live worker, as the master knows it.
pub struct WorkerRow {
    pub pid: i32,
    pub age: u64,
    pub stats: Snapshot,
}

/// Counts of workers that have exited since start, folded in when they were reaped.
#[derive(Debug, Default, Clone, Copy)]
pub struct Exited {
    pub requests: u64,
    pub busy_us: u64,
}

/// The exposition text (format 0.0.4): per-worker series labelled by pid and age, then totals
/// over the live workers plus those that have exited.
pub fn render(workers: &[WorkerRow], exited: Exited) -> String {
    let mut out = String::with_capacity(512 + workers.len() * 400);
    let mut family = |name: &str, kind: &str, help: &str, value: &dyn Fn(&Snapshot) -> String| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for w in workers {
            let _ = writeln!(out, "{name}{{pid=\"{}\",age=\"{}\"}} {}", w.pid, w.age, value(&w.stats));
        }
    };
    family("ferrocorn_worker_requests_total", "counter", "Requests served by the worker.", &|s| s.requests.to_string());
    family("ferrocorn_worker_requests_in_flight", "gauge", "Requests the worker is handling now.", &|s| s.in_flight.to_string());
    family("ferrocorn_worker_busy_seconds_total", "counter", "Time the worker spent handling requests.", &|s| seconds(s.busy_us));
    family("ferrocorn_worker_memory_rss_bytes", "gauge", "Resident memory of the worker.", &|s| s.rss_bytes.to_string());

    let sum = |f: fn(&Snapshot) -> u64| workers.iter().map(|w| f(&w.stats)).sum::<u64>();
    let totals: [(&str, &str, &str, String); 5] = [
        ("ferrocorn_workers", "gauge", "Worker processes alive.", workers.len().to_string()),
        (
            "ferrocorn_requests_total",
            "counter",
            "Requests served by all workers since start, including workers that have exited.",
            (exited.requests + sum(|s| s.requests)).to_string(),
        ),
        ("ferrocorn_requests_in_flight", "gauge", "Requests being handled now.", sum(|s| s.in_flight).to_string()),
        (
            "ferrocorn_busy_seconds_total",
            "counter",
            "Time all workers spent handling requests since start.",
            seconds(exited.busy_us + sum(|s| s.busy_us)),
        ),
        ("ferrocorn_memory_rss_bytes", "gauge", "Resident memory of all workers.", sum(|s| s.rss_bytes).to_string()),
    ];
    for (name, kind, help, value) in totals {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    }
    out
}

/// The listen backlog gauge, appended to [`render`]'s text when `enable_backlog_metric` is on.
pub fn render_backlog(out: &mut String, queued: u64) {
    let name = "ferrocorn_listen_backlog";
    let help = "Connections queued on the listening TCP sockets, not yet accepted by a worker.";
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {queued}");
}

fn seconds(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_workers_and_totals() {
        let rows =
            [WorkerRow { pid: 7, age: 1, stats: Snapshot { requests: 3, in_flight: 1, busy_us: 1_500_000, rss_bytes: 4096 } }];
        let text = render(&rows, Exited { requests: 2, busy_us: 1 });
        assert!(text.contains("ferrocorn_worker_requests_total{pid=\"7\",age=\"1\"} 3\n"));
        assert!(text.contains("ferrocorn_worker_busy_seconds_total{pid=\"7\",age=\"1\"} 1.500000\n"));
        assert!(text.contains("\nferrocorn_requests_total 5\n"));
        assert!(text.contains("\nferrocorn_busy_seconds_total 1.500001\n"));
        assert!(text.contains("# TYPE ferrocorn_workers gauge\nferrocorn_workers 1\n"));
    }

    #[test]
    fn recognises_the_metrics_path_only() {
        assert!(is_metrics_request(b"GET /metrics HTTP/1.1\r\n\r\n"));
        assert!(is_metrics_request(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"));
        assert!(!is_metrics_request(b"GET /other HTTP/1.1\r\n\r\n"));
        assert!(!is_metrics_request(b"POST /metrics HTTP/1.1\r\n\r\n"));
        assert!(!is_metrics_request(b""));
        assert_eq!(route(b"GET /healthz HTTP/1.1\r\n\r\n"), Route::Healthz);
        assert_eq!(route(b"GET /readyz?verbose HTTP/1.1\r\n\r\n"), Route::Readyz);
        assert_eq!(route(b"POST /readyz HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert!(head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n"));
    }
}

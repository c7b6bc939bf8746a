//! Metrics: statsd with Gunicorn's names (`gunicorn.requests`, `gunicorn.request.duration`,
//! `gunicorn.request.status.NNN`, `gunicorn.workers`, `gunicorn.log.*`, `gunicorn.backlog`).
//!
//! The client is installed once in the master before any fork and is never replaced, so the
//! hot path reads it without a lock; when `statsd_host` is unset every call is one load and a
//! branch.

pub mod backlog;
pub mod prometheus;
pub mod statsd;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use statsd::{Statsd, StatsdError, Target, parse_target};

static STATSD: OnceLock<Statsd> = OnceLock::new();

/// Installs the statsd client (first call wins; later calls are ignored).
pub fn install_statsd(client: Statsd) {
    let _ = STATSD.set(client);
}

fn statsd() -> Option<&'static Statsd> {
    STATSD.get()
}

/// One finished request: Gunicorn's duration timer, request counter and per-status counter.
pub fn request_done(status_code: Option<u16>, duration: Duration) {
    let Some(s) = statsd() else { return };
    s.timer_ms("gunicorn.request.duration", duration.as_micros() as u64);
    s.increment("gunicorn.requests", 1);
    if let Some(code) = status_code {
        s.increment(&format!("gunicorn.request.status.{code}"), 1);
    }
}

/// Which `gunicorn.log.*` counter an error-log line counts under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogCounter {
    Critical,
    Error,
    Warning,
    /// An error logged with a traceback (Gunicorn's `log.exception`).
    Exception,
}

pub fn count_log(counter: LogCounter) {
    let Some(s) = statsd() else { return };
    let name = match counter {
        LogCounter::Critical => "gunicorn.log.critical",
        LogCounter::Error => "gunicorn.log.error",
        LogCounter::Warning => "gunicorn.log.warning",
        LogCounter::Exception => "gunicorn.log.exception",
    };
    s.increment(name, 1);
}

/// The master's worker count; sent as the `gunicorn.workers` gauge when it changes, as
/// Gunicorn does.
pub fn workers(count: usize) {
    static LAST: AtomicU64 = AtomicU64::new(u64::MAX);
    let Some(s) = statsd() else { return };
    let count = count as u64;
    if LAST.swap(count, Ordering::Relaxed) != count {
        s.gauge("gunicorn.workers", count);
    }
}

/// The listen backlog (`enable_backlog_metric`): Gunicorn sends it on every turn of the
/// master's loop as the `gunicorn.backlog` histogram.
pub fn backlog(queued: u64) {
    let Some(s) = statsd() else { return };
    s.histogram("gunicorn.backlog", queued);
}

//! `request_timeout`: a request that stays in the app past it is answered without its lane.
//!
//! The thread or greenlet running it cannot be stopped safely (Python offers no way to
//! interrupt another thread's code, and killing a greenlet mid-call leaves the app's state
//! half-changed), so the engine stops waiting for it: the client gets a 503 if nothing was sent
//! yet, the stack of the stuck code is logged, the lane is never handed out again, and the
//! worker drains and is replaced, as after `max_requests`.

use super::executor::{Executor, Lane};
use super::{Shared, stuck};
use crate::log_info;
use crate::wsgi::{ConnInfo, Peer};
use ferrocorn_http::RequestHead;
use std::future::Future;
use std::time::Duration;

/// The deadline of a request whose app call starts now; `None` when the setting is off.
pub fn deadline(sh: &Shared) -> Option<tokio::time::Instant> {
    sh.settings.request_timeout.and_then(|t| tokio::time::Instant::now().checked_add(t))
}

/// Awaits one app step, unless the deadline passes first (`None`; the step is then abandoned:
/// the app goes on running on its lane, and its result is dropped when it ends).
pub async fn within<R>(deadline: Option<tokio::time::Instant>, step: impl Future<Output = R>) -> Option<R> {
    match deadline {
        None => Some(step.await),
        Some(d) => tokio::time::timeout_at(d, step).await.ok(),
    }
}

/// After the deadline: logs the stuck request, keeps its lane from serving anything else, and
/// starts the worker's graceful replacement.
pub fn give_up(sh: &Shared, lane: Lane<'_>, head: &RequestHead, conn: &ConnInfo, deadline: Option<tokio::time::Instant>) {
    let port = match (&conn.proxy, &conn.peer) {
        (Some(p), _) if p.source.is_some() => p.source.map(|s| s.port().to_string()),
        (_, Peer::Tcp(a)) => Some(a.port().to_string()),
        (_, Peer::Unix) => None,
    };
    let limit = sh.settings.request_timeout.unwrap_or(Duration::ZERO);
    stuck::report_request(
        &sh.executor,
        stuck::Overdue {
            method: head.method.to_string(),
            // RAW_URI is the target decoded as Latin-1.
            uri: head.target.iter().map(|&b| char::from(b)).collect(),
            port,
            // Counted from the deadline: no clock read on every request to know when it started.
            running: limit.saturating_add(deadline.map_or(Duration::ZERO, |d| d.elapsed())),
            limit,
        },
    );
    match sh.executor {
        // The thread is still in the app: a job queued to it would wait behind the stuck
        // code, so neither the thread nor its permit ever comes back.
        Executor::Pool { .. } => std::mem::forget(lane),
        // Each greenlet lane has its own id and greenlet: releasing it lets the greenlet end
        // once the app returns, and no later request can land on it.
        _ => drop(lane),
    }
    if sh.lifecycle.get() == super::Lifecycle::Running {
        log_info!("Restarting worker after a request timed out.");
        sh.start_draining();
    }
}

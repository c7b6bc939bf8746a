//! The master's side of `--metrics-bind`: the per-worker counter table it maps before forking,
//! the totals of workers that have exited, and the endpoint it serves from its loop.

pub use crate::metrics::prometheus::Readiness;
use crate::metrics::prometheus::{self, Endpoint, Exited, WorkerRow};
use crate::sock::{Listener, ListenerKind};
use crate::sys::SharedSlots;
use crate::worker::MAX_WORKER_SLOTS;
use crate::worker::stats::{self, WorkerStats};
use std::os::fd::RawFd;
use std::sync::Arc;

pub struct Metrics {
    /// `None` in a master started by USR2 until the old master lets go of the port.
    endpoint: Option<Endpoint>,
    table: Arc<SharedSlots>,
    exited: Exited,
    /// The last listen backlog measured (`enable_backlog_metric`), for the gauge.
    backlog: Option<u64>,
}

impl Metrics {
    /// The counter table; made before any worker is forked, so every worker has its counters
    /// even when the endpoint itself opens later.
    pub fn new() -> std::io::Result<Metrics> {
        Ok(Metrics { endpoint: None, table: stats::new_table(MAX_WORKER_SLOTS)?, exited: Exited::default(), backlog: None })
    }

    pub fn is_open(&self) -> bool {
        self.endpoint.is_some()
    }

    /// Binds the endpoint; returns its URL.
    pub fn open(&mut self, host: &str, port: u16) -> std::io::Result<String> {
        let endpoint = Endpoint::bind(host, port)?;
        let url = format!("http://{}/metrics", endpoint.local_addr()?);
        self.endpoint = Some(endpoint);
        Ok(url)
    }

    /// The counters of the worker in heartbeat slot `slot`.
    pub fn stats(&self, slot: usize) -> WorkerStats {
        WorkerStats::new(self.table.clone(), slot)
    }

    /// A worker was reaped: keep its counts in the totals before its slot is reused.
    pub fn fold(&mut self, slot: usize) {
        let s = self.stats(slot).snapshot();
        self.exited.requests += s.requests;
        self.exited.busy_us += s.busy_us;
    }

    pub fn poll_fds(&self, out: &mut Vec<RawFd>) {
        if let Some(e) = &self.endpoint {
            e.poll_fds(out);
        }
    }

    /// Serves whatever is ready; `workers` yields (pid, age, slot) of the live workers.
    pub fn serve(&mut self, now_ms: u64, ready: Readiness, workers: impl Iterator<Item = (i32, u64, usize)>) {
        let Some(endpoint) = &mut self.endpoint else { return };
        let table = self.table.clone();
        let exited = self.exited;
        let backlog = self.backlog;
        endpoint.serve(now_ms, ready, move || {
            let mut rows: Vec<WorkerRow> = workers
                .map(|(pid, age, slot)| WorkerRow { pid, age, stats: WorkerStats::new(table.clone(), slot).snapshot() })
                .collect();
            rows.sort_by_key(|r| r.age);
            let mut text = prometheus::render(&rows, exited);
            if let Some(n) = backlog {
                prometheus::render_backlog(&mut text, n);
            }
            text
        });
    }
}

impl super::Arbiter {
    /// `/readyz`: ready while running with at least one booted worker that is not being
    /// stopped; not ready while stopping (draining), so a load balancer stops sending traffic.
    pub(super) fn readiness(&self) -> Readiness {
        if self.state != super::State::Running || self.halt.is_some() {
            return Readiness::NotReady("stopping");
        }
        let serving = self.workers.values().any(|w| {
            w.generation != super::RETIRING && crate::worker::heartbeat::Heartbeat::new(self.slots.clone(), w.slot).booted()
        });
        if serving { Readiness::Ready } else { Readiness::NotReady("no worker has booted") }
    }
}

/// `enable_backlog_metric`, once per turn of the master's loop as in Gunicorn: the connections
/// queued on all TCP listeners, as the statsd histogram, a debug line, and the Prometheus
/// gauge. Nothing is reported when no listener can say (unix sockets only, or not Linux).
pub fn report_backlog(listeners: &[Listener], metrics: Option<&mut Metrics>) {
    let queued: Option<u64> = listeners
        .iter()
        .filter(|l| matches!(l.kind(), ListenerKind::Tcp(_)))
        .filter_map(|l| crate::metrics::backlog::queued(l.raw_fd()))
        .map(u64::from)
        .reduce(u64::saturating_add);
    let Some(queued) = queued else { return };
    crate::log_debug!("socket backlog: {queued}");
    crate::metrics::backlog(queued);
    if let Some(m) = metrics {
        m.backlog = Some(queued);
    }
}

//! Per-worker counters for the Prometheus endpoint (`--metrics-bind`), in shared memory the
//! master maps before forking, next to the heartbeat slots.
//!
//! A worker updates its own words with relaxed atomics (no syscall, no lock on the request
//! path); the master reads them when it is scraped, and folds a worker's totals into its own
//! when it reaps the worker, so counters survive worker restarts.

use crate::sys::SharedSlots;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Words per worker. Padded to a 64-byte cache line so two workers on two cores never write
/// the same line on every request.
const STRIDE: usize = 8;
const REQUESTS: usize = 0;
const IN_FLIGHT: usize = 1;
const BUSY_US: usize = 2;
const RSS: usize = 3;

/// One worker's counters, as read by the master.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub requests: u64,
    pub in_flight: u64,
    pub busy_us: u64,
    pub rss_bytes: u64,
}

/// The counter table: `slots` words for each of `workers` workers.
pub fn new_table(workers: usize) -> std::io::Result<Arc<SharedSlots>> {
    SharedSlots::new(workers * STRIDE).map(Arc::new)
}

#[derive(Clone)]
pub struct WorkerStats {
    table: Arc<SharedSlots>,
    index: usize,
}

impl WorkerStats {
    pub fn new(table: Arc<SharedSlots>, index: usize) -> WorkerStats {
        WorkerStats { table, index }
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        self.table.slot(self.index * STRIDE + i)
    }

    /// Called by the master before forking into this slot.
    pub fn reset(&self) {
        for i in 0..STRIDE {
            self.word(i).store(0, Ordering::Relaxed);
        }
    }

    /// A request was taken up; the guard counts it as served and adds the time it was held to
    /// the busy total when dropped, on every way out of the request path.
    pub fn begin(&self) -> Busy<'_> {
        self.word(IN_FLIGHT).fetch_add(1, Ordering::Relaxed);
        Busy { stats: self, since: Instant::now() }
    }

    /// Written once per heartbeat tick, not per request: reading it costs a file read.
    pub fn set_rss(&self, bytes: u64) {
        self.word(RSS).store(bytes, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            requests: self.word(REQUESTS).load(Ordering::Relaxed),
            in_flight: self.word(IN_FLIGHT).load(Ordering::Relaxed),
            busy_us: self.word(BUSY_US).load(Ordering::Relaxed),
            rss_bytes: self.word(RSS).load(Ordering::Relaxed),
        }
    }
}

/// A request in flight (see [`WorkerStats::begin`]).
pub struct Busy<'a> {
    stats: &'a WorkerStats,
    since: Instant,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let us = self.since.elapsed().as_micros().min(u64::MAX as u128) as u64;
        self.stats.word(BUSY_US).fetch_add(us, Ordering::Relaxed);
        self.stats.word(REQUESTS).fetch_add(1, Ordering::Relaxed);
        self.stats.word(IN_FLIGHT).fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_counts_once_and_clears_in_flight() {
        let table = new_table(2).unwrap();
        let a = WorkerStats::new(table.clone(), 1);
        {
            let _g = a.begin();
            assert_eq!(a.snapshot().in_flight, 1);
        }
        let s = a.snapshot();
        assert_eq!((s.requests, s.in_flight), (1, 0));
        assert_eq!(WorkerStats::new(table, 0).snapshot(), Snapshot::default());
        a.reset();
        assert_eq!(a.snapshot(), Snapshot::default());
    }
}

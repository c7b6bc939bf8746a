//! Per-worker counters for the Prometheus endpoint (`--metrics-bind`), in shared memory the
//! master maps before forking, next to the heartbeat slots.
//!
//! A worker updates its own words with relaxed atomics (no syscall, no lock on the request
//! path); the master reads them when it is scraped, and folds a worker's totals into its own
//! when it reaps the worker, so counters survive worker restarts.
//!
//! Beside the counters, each worker publishes what its busy lanes are doing (method, path and
//! start time of up to [`LANE_SLOTS`] requests in the app) for `ferrocorn ctl top`. Each entry
//! is a seqlock: the worker's single engine thread is its only writer, and the master retries
//! (or skips) an entry it catches mid-write, so it never shows a torn one. Publishing costs a
//! few relaxed stores; the pages of a worker slot are only touched once a worker uses it.

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

/// Requests per worker whose method and path are published; the rest are only counted
/// (`in_flight` minus the entries shown). Sync has one lane, gthread usually a few threads.
pub const LANE_SLOTS: usize = 8;
/// Bytes of the path kept per entry (longer ones are cut and flagged).
pub const PATH_BYTES: usize = 64;
const METHOD_BYTES: usize = 16;
/// Words per lane entry: sequence, start, lengths, method, path (13), padded to 128 bytes.
const LANE_WORDS: usize = 16;
const L_SEQ: usize = 0;
const L_STARTED_MS: usize = 1;
const L_META: usize = 2;
const L_METHOD: usize = 3;
const L_PATH: usize = L_METHOD + METHOD_BYTES / 8;
/// Set in `L_META` while the entry holds a request.
const BUSY: u64 = 1 << 63;
const CUT: u64 = 1 << 62;
/// Words of one worker's whole record: counters, then its lane entries.
const RECORD: usize = STRIDE + LANE_SLOTS * LANE_WORDS;

/// One worker's counters, as read by the master.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub requests: u64,
    pub in_flight: u64,
    pub busy_us: u64,
    pub rss_bytes: u64,
}

/// One request in the app, as the master reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneView {
    pub method: String,
    /// The path, cut to [`PATH_BYTES`] (`cut` says so); non-UTF-8 bytes are replaced.
    pub path: String,
    pub cut: bool,
    pub running: std::time::Duration,
}

/// The counter table: one record for each of `workers` workers.
pub fn new_table(workers: usize) -> std::io::Result<Arc<SharedSlots>> {
    SharedSlots::new(workers * RECORD).map(Arc::new)
}

/// Packs up to `words.len() * 8` bytes of `bytes` into `words` (zero padded).
fn store_bytes<'a>(words: impl Iterator<Item = &'a AtomicU64>, bytes: &[u8]) {
    for (i, w) in words.enumerate() {
        let mut chunk = [0u8; 8];
        let from = bytes.get(i * 8..).unwrap_or(&[]);
        let n = from.len().min(8);
        chunk[..n].copy_from_slice(&from[..n]);
        w.store(u64::from_le_bytes(chunk), Ordering::Relaxed);
    }
}

fn load_bytes(words: impl Iterator<Item = u64>, len: usize) -> Vec<u8> {
    let mut out: Vec<u8> = words.flat_map(u64::to_le_bytes).collect();
    out.truncate(len);
    out
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
        self.table.slot(self.index * RECORD + i)
    }

    fn lane_word(&self, lane: usize, i: usize) -> &AtomicU64 {
        self.word(STRIDE + lane * LANE_WORDS + i)
    }

    /// Called by the master before forking into this slot.
    pub fn reset(&self) {
        for i in 0..RECORD {
            self.word(i).store(0, Ordering::Relaxed);
        }
    }

    /// A request was taken up; the guard counts it as served and adds the time it was held to
    /// the busy total when dropped, on every way out of the request path.
    pub fn begin(&self) -> Busy<'_> {
        self.word(IN_FLIGHT).fetch_add(1, Ordering::Relaxed);
        Busy { stats: self, since: Instant::now(), lane: None }
    }

    /// [`begin`](Self::begin), also publishing the request's method and path in a free lane
    /// entry (if one is left) until the guard drops.
    pub fn begin_request(&self, method: &str, path: &[u8]) -> Busy<'_> {
        let mut busy = self.begin();
        // Only this worker's engine thread writes its entries, so a free one stays free
        // between this look and the write.
        busy.lane = (0..LANE_SLOTS).find(|&l| self.lane_word(l, L_META).load(Ordering::Relaxed) & BUSY == 0);
        if let Some(lane) = busy.lane {
            let method = &method.as_bytes()[..method.len().min(METHOD_BYTES)];
            let cut = path.len() > PATH_BYTES;
            let path = &path[..path.len().min(PATH_BYTES)];
            let len = |b: &[u8]| u64::try_from(b.len()).unwrap_or(0);
            let meta = BUSY | if cut { CUT } else { 0 } | (len(method) << 8) | len(path);
            let w = |i| self.lane_word(lane, i);
            self.write_lane(lane, || {
                w(L_STARTED_MS).store(crate::sys::monotonic_ms(), Ordering::Relaxed);
                w(L_META).store(meta, Ordering::Relaxed);
                store_bytes((L_METHOD..L_PATH).map(&w), method);
                store_bytes((L_PATH..L_PATH + PATH_BYTES / 8).map(w), path);
            });
        }
        busy
    }

    /// A seqlock write of one entry: the sequence is odd while the words change.
    fn write_lane(&self, lane: usize, f: impl FnOnce()) {
        let seq = self.lane_word(lane, L_SEQ);
        let s = seq.load(Ordering::Relaxed);
        seq.store(s.wrapping_add(1), Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        f();
        seq.store(s.wrapping_add(2), Ordering::Release);
    }

    fn clear_lane(&self, lane: usize) {
        self.write_lane(lane, || self.lane_word(lane, L_META).store(0, Ordering::Relaxed));
    }

    /// The requests this worker has published, as of now (read by the master).
    pub fn lanes(&self) -> Vec<LaneView> {
        let now = crate::sys::monotonic_ms();
        (0..LANE_SLOTS).filter_map(|lane| self.read_lane(lane, now)).collect()
    }

    fn read_lane(&self, lane: usize, now_ms: u64) -> Option<LaneView> {
        let seq = self.lane_word(lane, L_SEQ);
        // A writer holds an entry for a few stores: a handful of tries always gets through,
        // and an entry still changing after them is skipped for this answer.
        for _ in 0..64 {
            let before = seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let meta = self.lane_word(lane, L_META).load(Ordering::Relaxed);
            let started = self.lane_word(lane, L_STARTED_MS).load(Ordering::Relaxed);
            let method: Vec<u64> = (L_METHOD..L_PATH).map(|i| self.lane_word(lane, i).load(Ordering::Relaxed)).collect();
            let path: Vec<u64> =
                (L_PATH..L_PATH + PATH_BYTES / 8).map(|i| self.lane_word(lane, i).load(Ordering::Relaxed)).collect();
            std::sync::atomic::fence(Ordering::Acquire);
            if seq.load(Ordering::Relaxed) != before {
                continue;
            }
            if meta & BUSY == 0 {
                return None;
            }
            let method_len = usize::try_from((meta >> 8) & 0xff).unwrap_or(0).min(METHOD_BYTES);
            let path_len = usize::try_from(meta & 0xff).unwrap_or(0).min(PATH_BYTES);
            return Some(LaneView {
                method: String::from_utf8_lossy(&load_bytes(method.into_iter(), method_len)).into_owned(),
                path: String::from_utf8_lossy(&load_bytes(path.into_iter(), path_len)).into_owned(),
                cut: meta & CUT != 0,
                running: std::time::Duration::from_millis(now_ms.saturating_sub(started)),
            });
        }
        None
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
    /// The lane entry this request is published in.
    lane: Option<usize>,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let us = self.since.elapsed().as_micros().min(u64::MAX as u128) as u64;
        self.stats.word(BUSY_US).fetch_add(us, Ordering::Relaxed);
        self.stats.word(REQUESTS).fetch_add(1, Ordering::Relaxed);
        self.stats.word(IN_FLIGHT).fetch_sub(1, Ordering::Relaxed);
        if let Some(lane) = self.lane {
            self.stats.clear_lane(lane);
        }
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

    #[test]
    fn lanes_are_published_while_held_and_capped() {
        let table = new_table(2).unwrap();
        let a = WorkerStats::new(table.clone(), 1);
        let long = vec![b'x'; PATH_BYTES + 10];
        let guards: Vec<_> = (0..LANE_SLOTS + 2).map(|_| a.begin_request("PROPFIND", &long)).collect();
        let lanes = a.lanes();
        assert_eq!(lanes.len(), LANE_SLOTS);
        assert_eq!(a.snapshot().in_flight, u64::try_from(LANE_SLOTS + 2).unwrap());
        assert!(lanes.iter().all(|l| l.method == "PROPFIND" && l.path.len() == PATH_BYTES && l.cut));
        assert!(WorkerStats::new(table.clone(), 0).lanes().is_empty());
        drop(guards);
        assert!(a.lanes().is_empty());
        {
            let _g = a.begin_request("GET", b"/sleep?\xff");
            let lanes = a.lanes();
            assert_eq!((lanes[0].method.as_str(), lanes[0].path.as_str(), lanes[0].cut), ("GET", "/sleep?\u{fffd}", false));
        }
        assert!(a.lanes().is_empty());
    }

    #[test]
    fn an_entry_caught_mid_write_is_not_shown() {
        let table = new_table(1).unwrap();
        let a = WorkerStats::new(table, 0);
        let _g = a.begin_request("GET", b"/a");
        let seq = a.lane_word(0, L_SEQ);
        seq.fetch_add(1, Ordering::Relaxed);
        assert!(a.lanes().is_empty());
        seq.fetch_add(1, Ordering::Relaxed);
        assert_eq!(a.lanes().len(), 1);
    }
}

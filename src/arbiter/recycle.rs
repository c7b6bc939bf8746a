//! Recycling workers by memory (`max_worker_rss`) and by age (`max_worker_lifetime`).
//!
//! One worker at a time, and never at the cost of capacity: the worker over its limit is set
//! aside (it keeps serving, but no longer counts towards the pool, so `manage_workers` forks its
//! replacement); once every worker of the pool has booted, the old one gets TERM and drains
//! within `graceful_timeout` as usual.

use super::{Arbiter, RECYCLING, RETIRING, State};
use crate::worker::heartbeat::Heartbeat;
use crate::{log_info, sys};
use std::time::{Duration, Instant};

/// What the run flow prepared from the config; zero turns a limit off.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecycleSpec {
    pub max_rss_mib: u64,
    pub rss_jitter_mib: u64,
    pub max_lifetime: Duration,
    pub lifetime_jitter: Duration,
}

/// One worker's limits, drawn (with jitter) when it is forked.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    rss_bytes: Option<u64>,
    lifetime: Option<Duration>,
}

/// The worker being replaced, while its replacement boots.
#[derive(Debug, Clone, Copy)]
pub struct Recycling {
    pid: i32,
}

impl Arbiter {
    /// A random amount in `0..=max` (xorshift64 on the master's seed: plenty for spreading
    /// restarts and recycling, no crate needed). Also draws `max_requests_jitter`.
    pub(super) fn draw(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % max.saturating_add(1)
    }

    /// The limits for a worker about to be forked.
    pub(super) fn draw_limits(&mut self) -> Limits {
        let r = self.spec.recycle;
        let rss_bytes = match r.max_rss_mib {
            0 => None,
            mib => Some(mib.saturating_add(self.draw(r.rss_jitter_mib)).saturating_mul(1024 * 1024)),
        };
        let lifetime = if r.max_lifetime.is_zero() {
            None
        } else {
            let jitter_ms = u64::try_from(r.lifetime_jitter.as_millis()).unwrap_or(u64::MAX);
            Some(r.max_lifetime.saturating_add(Duration::from_millis(self.draw(jitter_ms))))
        };
        Limits { rss_bytes, lifetime }
    }

    /// One pass: finish the replacement in progress, or start one for the first worker found
    /// over a limit.
    pub(super) fn check_recycle(&mut self) {
        if self.state != State::Running {
            return;
        }
        if let Some(r) = self.recycling {
            if !self.workers.contains_key(&r.pid) {
                self.recycling = None;
            } else if self.pool_booted() {
                log_info!("Worker (pid:{}) replaced; stopping it gracefully", r.pid);
                sys::kill(r.pid, libc::SIGTERM);
                self.tally.workers_killed += 1;
                if let Some(w) = self.workers.get_mut(&r.pid) {
                    w.generation = RETIRING;
                }
                self.recycling = None;
            }
            return;
        }
        let now = Instant::now();
        let current = self.generation;
        let over = self.workers.iter().find_map(|(&pid, w)| {
            if w.generation != current || w.abort != super::Abort::None {
                return None;
            }
            if let Some(limit) = w.limits.lifetime {
                let age = now.saturating_duration_since(w.born);
                if age >= limit {
                    return Some((pid, format!("has run {}s, max_worker_lifetime is {}s", age.as_secs(), limit.as_secs())));
                }
            }
            let limit = w.limits.rss_bytes?;
            let rss = super::control::rss_bytes(pid)?;
            (rss > limit).then(|| (pid, format!("uses {} MiB, over its max_worker_rss of {} MiB", rss >> 20, limit >> 20)))
        });
        if let Some((pid, why)) = over {
            log_info!("Worker (pid:{pid}) {why}: starting its replacement");
            if let Some(w) = self.workers.get_mut(&pid) {
                w.generation = RECYCLING;
            }
            self.recycling = Some(Recycling { pid });
        }
    }

    /// Whether the pool is at its target with every worker booted.
    fn pool_booted(&self) -> bool {
        let current = self.generation;
        let booted = self
            .workers
            .values()
            .filter(|w| w.generation == current && Heartbeat::new(self.slots.clone(), w.slot).booted())
            .count();
        booted >= self.num_workers
    }
}

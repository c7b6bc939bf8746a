//! Worker liveness and state for the master: two shared-memory words per worker.
//!
//! The first holds the last time (monotonic ms) the worker's event loop ran: a sync worker stuck
//! inside the application stops updating it, which is exactly Gunicorn's timeout semantics. The
//! second holds flags the master polls: booted (the app loaded), and reload requested (a watched
//! file changed). Both cost one atomic operation, never a syscall or a file.

use crate::sys::{SharedSlots, monotonic_ms};
use std::sync::Arc;
use std::sync::atomic::Ordering;

const BOOTED: u64 = 1;
const RELOAD: u64 = 2;

#[derive(Clone)]
pub struct Heartbeat {
    slots: Arc<SharedSlots>,
    index: usize,
}

impl Heartbeat {
    /// `slots` holds `2 * workers` words: heartbeats first, then flags.
    pub fn new(slots: Arc<SharedSlots>, index: usize) -> Heartbeat {
        Heartbeat { slots, index }
    }

    fn flags(&self) -> &std::sync::atomic::AtomicU64 {
        self.slots.slot(self.slots.len() / 2 + self.index)
    }

    /// Records that the worker is alive now: one atomic store.
    pub fn beat(&self) {
        self.slots.slot(self.index).store(monotonic_ms(), Ordering::Relaxed);
    }

    /// Milliseconds since the last beat, as seen by the master.
    pub fn silent_for_ms(&self) -> u64 {
        monotonic_ms().saturating_sub(self.slots.slot(self.index).load(Ordering::Relaxed))
    }

    /// Called by the master before forking into this slot.
    pub fn reset(&self) {
        self.flags().store(0, Ordering::Relaxed);
        self.beat();
    }

    pub fn mark_booted(&self) {
        self.flags().fetch_or(BOOTED, Ordering::Relaxed);
    }

    pub fn booted(&self) -> bool {
        self.flags().load(Ordering::Relaxed) & BOOTED != 0
    }

    pub fn request_reload(&self) {
        self.flags().fetch_or(RELOAD, Ordering::Relaxed);
    }

    /// True once per request: the master clears the flag as it reads it.
    pub fn take_reload_request(&self) -> bool {
        self.flags().fetch_and(!RELOAD, Ordering::Relaxed) & RELOAD != 0
    }
}

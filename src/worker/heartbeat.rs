//! Worker liveness for the master's timeout check: one shared-memory slot per worker holding
//! the last time (monotonic ms) the worker's event loop ran. A sync worker stuck inside the
//! application stops updating it, which is exactly Gunicorn's timeout semantics.

use crate::sys::{monotonic_ms, SharedSlots};
use std::sync::Arc;
use std::sync::atomic::Ordering;

#[derive(Clone)]
pub struct Heartbeat {
    slots: Arc<SharedSlots>,
    index: usize,
}

impl Heartbeat {
    pub fn new(slots: Arc<SharedSlots>, index: usize) -> Heartbeat {
        Heartbeat { slots, index }
    }

    /// Records that the worker is alive now: one atomic store.
    pub fn beat(&self) {
        self.slots.slot(self.index).store(monotonic_ms(), Ordering::Relaxed);
    }

    /// Milliseconds since the last beat, as seen by the master.
    pub fn silent_for_ms(&self) -> u64 {
        monotonic_ms().saturating_sub(self.slots.slot(self.index).load(Ordering::Relaxed))
    }
}

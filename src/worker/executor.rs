//! App executors: where the Python side of a request runs.
//!
//! The I/O engine never runs Python except through here. `Inline` (the sync class) runs the
//! app on the engine's own thread: one request at a time, no thread handoff, and a hung app
//! stops the heartbeat exactly as Gunicorn's sync worker does. `Pool` (gthread) runs it on N
//! Python threads while the engine keeps accepting, parsing and parking keep-alive connections,
//! which cost no thread.
//!
//! `Hub` (gevent, eventlet, tornado) hands each step to the event loop that owns the worker's
//! main thread (see `hub.rs`); up to `worker_connections` requests are in the app at once, each
//! in its own greenlet, and the engine keeps its own thread.
//!
//! A request keeps the same thread or greenlet (its *lane*) from the app call to the last body
//! chunk, so `threading.local` state set by the app is still there when its generator resumes.

use super::hub::{self, HubClient, Message};
use pyo3::prelude::*;
use std::cell::{Cell, RefCell};
use std::sync::{Arc, mpsc};
use tokio::sync::{Semaphore, SemaphorePermit, oneshot};

type Job = Box<dyn FnOnce(Python<'_>) + Send>;

pub enum Executor {
    Inline { slot: Semaphore },
    Pool { lanes: Vec<mpsc::Sender<Job>>, free: RefCell<Vec<usize>>, slots: Semaphore },
    Hub { client: HubClient, next_lane: Cell<u64>, slots: Semaphore },
}

/// The right to run one request's Python side, on one thread, until dropped.
pub struct Lane<'a> {
    exec: &'a Executor,
    index: usize,
    _permit: SemaphorePermit<'a>,
}

impl Drop for Lane<'_> {
    fn drop(&mut self) {
        match self.exec {
            Executor::Pool { free, .. } => free.borrow_mut().push(self.index),
            Executor::Hub { client, .. } => client.0.push(Message::LaneDone(self.index as u64)),
            Executor::Inline { .. } => {}
        }
    }
}

impl Executor {
    pub fn inline() -> Executor {
        Executor::Inline { slot: Semaphore::new(1) }
    }

    /// Starts `threads` Python threads. Each holds a Python thread state for its whole life
    /// (released while idle), so thread-locals survive between a request's steps.
    pub fn pool(threads: usize) -> std::io::Result<Executor> {
        let threads = threads.max(1);
        let mut lanes = Vec::with_capacity(threads);
        for i in 0..threads {
            let (tx, rx) = mpsc::channel::<Job>();
            // Only this thread receives; the mutex just makes the receiver shareable with
            // `detach` (which wants `Sync`), and is never contended.
            let rx = std::sync::Mutex::new(rx);
            std::thread::Builder::new().name(format!("ferrocorn-app-{i}")).spawn(move || {
                Python::attach(|py| {
                    while let Ok(job) = py.detach(|| rx.lock().map_err(|_| mpsc::RecvError).and_then(|r| r.recv())) {
                        job(py);
                    }
                });
            })?;
            lanes.push(tx);
        }
        Ok(Executor::Pool { lanes, free: RefCell::new((0..threads).rev().collect()), slots: Semaphore::new(threads) })
    }

    /// Hands work to an event loop driven elsewhere (on the worker's main thread); `capacity`
    /// requests may be in the app at once (`worker_connections`).
    pub fn hub(inbox: Arc<hub::Inbox>, capacity: usize) -> Executor {
        Executor::Hub {
            client: HubClient(inbox),
            next_lane: Cell::new(hub::DRIVER_LANE + 1),
            slots: Semaphore::new(capacity.max(1)),
        }
    }

    /// Resolves once the place where Python runs is free to run something: at once for
    /// `Inline` and `Pool` (the engine's own loop is what the heartbeat measures), after a
    /// round trip through the loop for `Hub`, so a greenlet that blocks the hub stops the
    /// heartbeat and the master's timeout applies, as with Gunicorn's gevent worker.
    pub async fn responsive(&self) {
        if let Executor::Hub { client, .. } = self {
            let (tx, rx) = oneshot::channel::<()>();
            client.0.push(Message::Run {
                lane: hub::DRIVER_LANE,
                job: Box::new(move |_py| {
                    let _ = tx.send(());
                }),
            });
            let _ = rx.await;
        }
    }

    /// How many requests can be in the app at once when that is a small fixed number (the
    /// sync class's one, gthread's threads); `None` for the greenlet classes, whose limit is
    /// `worker_connections`.
    pub fn app_lanes(&self) -> Option<usize> {
        match self {
            Executor::Inline { .. } => Some(1),
            Executor::Pool { lanes, .. } => Some(lanes.len()),
            Executor::Hub { .. } => None,
        }
    }

    /// Waits for a free lane.
    pub async fn lane(&self) -> Lane<'_> {
        match self {
            Executor::Inline { slot } => {
                // The semaphore is never closed, so acquire cannot fail.
                let permit = slot.acquire().await.expect("executor semaphore closed");
                Lane { exec: self, index: 0, _permit: permit }
            }
            Executor::Pool { free, slots, .. } => {
                let permit = slots.acquire().await.expect("executor semaphore closed");
                let index = free.borrow_mut().pop().expect("a permit always has a free lane");
                Lane { exec: self, index, _permit: permit }
            }
            Executor::Hub { next_lane, slots, .. } => {
                let permit = slots.acquire().await.expect("executor semaphore closed");
                let id = next_lane.get();
                next_lane.set(id + 1);
                Lane { exec: self, index: id as usize, _permit: permit }
            }
        }
    }

    /// Runs `f` with the GIL somewhere Python runs, without waiting for it: for releasing
    /// Python objects the engine holds (it never takes the GIL itself in gthread or hub).
    pub fn detached(&self, f: impl FnOnce(Python<'_>) + Send + 'static) {
        match self {
            Executor::Inline { .. } => Python::attach(f),
            Executor::Pool { lanes, .. } => {
                // Any thread will do; a busy one runs it after its current step.
                if let Some(lane) = lanes.first() {
                    let _ = lane.send(Box::new(f));
                }
            }
            Executor::Hub { client, .. } => client.0.push(Message::Run { lane: hub::DRIVER_LANE, job: Box::new(f) }),
        }
    }

    /// Runs `f` with the GIL on the lane's thread and returns its result.
    pub async fn run<R, F>(&self, lane: &Lane<'_>, f: F) -> R
    where
        R: Send + 'static,
        F: FnOnce(Python<'_>) -> R + Send + 'static,
    {
        match self {
            Executor::Inline { .. } => Python::attach(f),
            Executor::Pool { lanes, .. } => {
                let (tx, rx) = oneshot::channel();
                let job: Job = Box::new(move |py| {
                    let _ = tx.send(f(py));
                });
                if lanes[lane.index].send(job).is_err() {
                    // The thread died (it cannot, short of a panic in Python's C code): run
                    // here rather than hang the request.
                    unreachable_thread();
                }
                match rx.await {
                    Ok(r) => r,
                    Err(_) => unreachable_thread(),
                }
            }
            Executor::Hub { client, .. } => {
                let (tx, rx) = oneshot::channel();
                let job: hub::Job = Box::new(move |py| {
                    let _ = tx.send(f(py));
                });
                client.0.push(Message::Run { lane: lane.index as u64, job });
                match rx.await {
                    Ok(r) => r,
                    // The job was dropped unrun: the loop is gone.
                    Err(_) => unreachable_thread(),
                }
            }
        }
    }
}

fn unreachable_thread() -> ! {
    crate::log_critical!("an app thread died; exiting the worker so the master replaces it");
    std::process::exit(1)
}

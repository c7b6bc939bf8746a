//! The bridge between the I/O engine and an event-loop worker class (gevent, eventlet,
//! tornado), whose loop owns the worker's main thread.
//!
//! The engine runs on its own OS thread and never takes the GIL to hand work over: it pushes a
//! job onto a mutex-guarded queue and writes one byte to a non-blocking pipe. The Python driver
//! (`ferrocorn.workers.*`) waits on that pipe *cooperatively* (a gevent/eventlet wait or an
//! asyncio reader), so the loop keeps running other greenlets or callbacks until work arrives,
//! then takes the whole queue in one call. A pipe is the one wake-up that is safe from a
//! foreign thread for all three libraries: gevent's and eventlet's hub calls are not
//! thread-safe, and a pipe needs no GIL on the sending side.
//!
//! Every message carries a lane id. The driver runs all jobs of one lane in one greenlet
//! (spawned on the lane's first job, ended by [`Message::LaneDone`]), so a request keeps its
//! greenlet, and its greenlet-local state, from the app call to the last body chunk. Lane 0 is
//! the driver itself: short jobs that must not wait behind the app (the liveness ping).
//!
//! The way back works the same way. A greenlet that must wait for the engine (write() waits
//! until its bytes are written) gets a one-shot [`Waiter`]: it blocks on a queue of its
//! library (`get`, which yields to the hub), and the engine, when done, queues a driver-lane job
//! that puts into that queue. So a slow client holds only its own greenlet, no extra file
//! descriptor is needed, and nothing is paid until a greenlet actually waits. The driver
//! enables this with `inbox.cooperate(make_queue)`; tornado does not (its WSGI app runs inside
//! a loop callback, which cannot yield), so waits there stay blocking.

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};

/// Python work for the loop thread.
pub type Job = Box<dyn FnOnce(Python<'_>) + Send>;

/// The lane whose jobs the driver runs directly, outside any request greenlet.
pub const DRIVER_LANE: u64 = 0;

pub enum Message {
    Run {
        lane: u64,
        job: Job,
    },
    /// The request on this lane is finished: its greenlet may end.
    LaneDone(u64),
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Message>,
    closed: bool,
}

/// The queue shared by the engine (producer) and the driver (consumer).
pub struct Inbox {
    queue: Mutex<Queue>,
    wake_read: OwnedFd,
    wake_write: OwnedFd,
}

impl Inbox {
    pub fn new() -> std::io::Result<Arc<Inbox>> {
        let (wake_read, wake_write) = crate::sys::pipe()?;
        Ok(Arc::new(Inbox { queue: Mutex::new(Queue::default()), wake_read, wake_write }))
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding this lock can only come from VecDeque itself; the queue is
        // still consistent, so carry on with it.
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a message and wakes the driver if it may be waiting.
    pub fn push(&self, msg: Message) {
        let was_empty = {
            let mut q = self.lock();
            let was_empty = q.items.is_empty();
            q.items.push_back(msg);
            was_empty
        };
        // The driver drains the pipe *before* taking the queue, so a non-empty queue always
        // has a wake-up on its way or is about to be taken: one byte per batch is enough.
        if was_empty {
            crate::sys::wake(&self.wake_write);
        }
    }

    /// Tells the driver to return from `serve` once it has taken what is queued.
    pub fn close(&self) {
        self.lock().closed = true;
        crate::sys::wake(&self.wake_write);
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Drains the wake pipe, then takes every queued message; `None` once closed and empty.
    fn take(&self) -> Option<Vec<Message>> {
        crate::sys::drain_pipe(&self.wake_read);
        let mut q = self.lock();
        if q.items.is_empty() && q.closed {
            return None;
        }
        if q.closed {
            // The engine closed with messages still queued (say, the heartbeat's first ping when
            // a TERM ends it right after boot): this take drained the close's wake-up, so leave
            // a fresh one, or the driver would wait for a wake-up that never comes and the
            // worker would outlive its engine (and its master) forever.
            crate::sys::wake(&self.wake_write);
        }
        Some(q.items.drain(..).collect())
    }
}

/// The engine's handle for queueing work.
pub struct HubClient(pub Arc<Inbox>);

/// Closes the inbox when dropped, which stops the driver: held by the engine thread for its
/// whole life, so every way the engine ends (an early error, a panic) closes it.
pub struct CloseOnDrop(pub Arc<Inbox>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// What the Python driver sees of the inbox.
#[pyclass(frozen, module = "ferrocorn._core")]
pub struct HubInbox {
    inner: Arc<Inbox>,
}

#[pymethods]
impl HubInbox {
    /// The pipe to wait on (readable when there may be work).
    fn fileno(&self) -> i32 {
        self.inner.wake_read.as_raw_fd()
    }

    /// Lets greenlets on this thread wait for the engine cooperatively: `make_queue()` must
    /// return a queue of the loop's library whose `get()` yields until something is `put`.
    fn cooperate(&self, make_queue: Bound<'_, PyAny>) {
        let coop = Cooperation { inbox: self.inner.clone(), make_queue: make_queue.unbind() };
        COOPERATION.with(|c| *c.borrow_mut() = Some(coop));
    }

    /// Takes the queued work as `(lane, job)` pairs, `job` being `None` when the lane is
    /// done; returns `None` when the engine has finished and the driver should return.
    fn take<'py>(&self, py: Python<'py>) -> PyResult<Option<Vec<Bound<'py, PyTuple>>>> {
        let Some(batch) = self.inner.take() else { return Ok(None) };
        let mut out = Vec::with_capacity(batch.len());
        for msg in batch {
            let (lane, job) = match msg {
                Message::Run { lane, job } => (lane, Some(Py::new(py, HubJob { job: Mutex::new(Some(job)) })?)),
                Message::LaneDone(lane) => (lane, None),
            };
            out.push(PyTuple::new(py, [lane.into_pyobject(py)?.into_any(), job.into_pyobject(py)?.into_any()])?);
        }
        Ok(Some(out))
    }
}

/// How greenlets on this thread wait for the engine: set by the driver of a greenlet class
/// for the life of its loop, on the thread that runs it. Other threads (gthread's, or a
/// real thread a gevent app starts) have none and block as threads do.
struct Cooperation {
    inbox: Arc<Inbox>,
    make_queue: Py<PyAny>,
}

thread_local! {
    static COOPERATION: RefCell<Option<Cooperation>> = const { RefCell::new(None) };
}

/// A greenlet's side of one wait: [`Waiter::wait`] yields to the hub until the matching
/// [`Wake`] is dropped.
pub struct Waiter {
    queue: Py<PyAny>,
}

impl Waiter {
    /// A waiter and its wake-up when this thread runs a greenlet hub, `None` elsewhere.
    pub fn here(py: Python<'_>) -> PyResult<Option<(Waiter, Wake)>> {
        let Some((inbox, make_queue)) =
            COOPERATION.with(|c| c.borrow().as_ref().map(|c| (c.inbox.clone(), c.make_queue.clone_ref(py))))
        else {
            return Ok(None);
        };
        let queue = make_queue.call0(py)?;
        let wake = Wake { inbox, queue: Some(queue.clone_ref(py)) };
        Ok(Some((Waiter { queue }, wake)))
    }

    /// Yields to the hub until woken. An exception thrown into the greenlet meanwhile (its
    /// library's Timeout, GreenletExit on kill) comes back as is.
    pub fn wait(self, py: Python<'_>) -> PyResult<()> {
        self.queue.call_method0(py, "get").map(drop)
    }
}

/// Wakes its [`Waiter`] when dropped, from any thread and without the GIL: whatever ends the
/// wait (done, or dropped unserved), the greenlet is never left waiting.
pub struct Wake {
    inbox: Arc<Inbox>,
    queue: Option<Py<PyAny>>,
}

impl Wake {
    /// For a wait that never started: nothing to wake.
    pub fn disarm(mut self, py: Python<'_>) {
        if let Some(q) = self.queue.take() {
            q.drop_ref(py);
        }
    }
}

impl Drop for Wake {
    fn drop(&mut self) {
        if let Some(queue) = self.queue.take() {
            // The driver runs this on the loop thread; `put` on an unbounded queue never blocks.
            let job: Job = Box::new(move |py| {
                if let Err(e) = queue.call_method1(py, "put", (true,)) {
                    e.write_unraisable(py, None);
                }
            });
            self.inbox.push(Message::Run { lane: DRIVER_LANE, job });
        }
    }
}

/// One job, callable once from Python (in whichever greenlet the driver chose).
#[pyclass(frozen, module = "ferrocorn._core")]
pub struct HubJob {
    job: Mutex<Option<Job>>,
}

#[pymethods]
impl HubJob {
    fn __call__(&self, py: Python<'_>) {
        // Take the job out before running it: the app may switch greenlets inside, and no
        // lock may be held across a switch.
        let job = self.job.lock().ok().and_then(|mut j| j.take());
        if let Some(job) = job {
            job(py);
        }
    }
}

/// Runs the class's driver on this (the main) thread until the engine closes the inbox.
/// Returns an error text when the driver stopped on its own (it raised, or returned early).
pub fn serve(py: Python<'_>, driver: &Bound<'_, PyAny>, inbox: Arc<Inbox>) -> Result<(), String> {
    let handle = Py::new(py, HubInbox { inner: inbox.clone() }).map_err(|e| e.to_string())?;
    let served = driver.call_method1("serve", (handle,));
    // Dropped here, with the GIL: a thread-local's destructor may run too late for Python.
    drop(COOPERATION.with(|c| c.borrow_mut().take()));
    match served {
        Ok(_) if inbox.is_closed() => Ok(()),
        Ok(_) => Err("the event loop returned while the worker was still running".into()),
        Err(e) => Err(crate::wsgi::format_exception(py, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(inbox: &Inbox) -> bool {
        let mut fds = [libc::pollfd { fd: inbox.wake_read.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
        // SAFETY: one valid pollfd, no timeout.
        unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) == 1 }
    }

    #[test]
    fn a_close_with_messages_queued_still_ends_the_driver() {
        let inbox = Inbox::new().expect("pipe");
        inbox.push(Message::LaneDone(7));
        inbox.close();
        assert!(readable(&inbox));
        let batch = inbox.take().expect("the queued message comes first");
        assert_eq!(batch.len(), 1);
        // The driver waits on the pipe before its next take: a wake-up must be there.
        assert!(readable(&inbox), "no wake-up left after the last batch: the driver would hang");
        assert!(inbox.take().is_none());
    }

    #[test]
    fn an_open_inbox_with_nothing_new_leaves_no_wake_up() {
        let inbox = Inbox::new().expect("pipe");
        inbox.push(Message::LaneDone(1));
        assert_eq!(inbox.take().map(|b| b.len()), Some(1));
        assert!(!readable(&inbox));
    }

    fn with_cooperation<T>(f: impl FnOnce(Python<'_>, &Arc<Inbox>) -> T) -> T {
        Python::initialize();
        Python::attach(|py| {
            let inbox = Inbox::new().expect("pipe");
            let make_queue = py.import("queue").and_then(|m| m.getattr("SimpleQueue")).expect("queue.SimpleQueue").unbind();
            COOPERATION.with(|c| *c.borrow_mut() = Some(Cooperation { inbox: inbox.clone(), make_queue }));
            let out = f(py, &inbox);
            drop(COOPERATION.with(|c| c.borrow_mut().take()));
            out
        })
    }

    fn run_all(py: Python<'_>, inbox: &Inbox) -> usize {
        let batch = inbox.take().expect("open inbox");
        let n = batch.len();
        for msg in batch {
            match msg {
                Message::Run { lane, job } => {
                    assert_eq!(lane, DRIVER_LANE, "a wake-up must not wait behind a request's lane");
                    job(py);
                }
                Message::LaneDone(_) => panic!("unexpected LaneDone"),
            }
        }
        n
    }

    #[test]
    fn a_wake_dropped_on_another_thread_wakes_the_waiter_through_the_driver() {
        with_cooperation(|py, inbox| {
            let (waiter, wake) = Waiter::here(py).expect("make_queue").expect("cooperation is on");
            // The engine thread drops it without the GIL, as it does after writing.
            py.detach(|| std::thread::spawn(move || drop(wake)).join().expect("thread"));
            assert!(readable(inbox), "no wake-up for the driver");
            assert_eq!(run_all(py, inbox), 1);
            assert_eq!(waiter.queue.call_method0(py, "qsize").and_then(|n| n.extract::<usize>(py)).ok(), Some(1));
            waiter.wait(py).expect("the put is there, so get() returns at once");
        });
    }

    #[test]
    fn a_disarmed_wake_queues_nothing() {
        with_cooperation(|py, inbox| {
            let (_waiter, wake) = Waiter::here(py).expect("make_queue").expect("cooperation is on");
            wake.disarm(py);
            assert!(!readable(inbox));
        });
    }

    #[test]
    fn a_thread_without_a_greenlet_hub_has_no_waiter() {
        Python::initialize();
        Python::attach(|py| assert!(Waiter::here(py).expect("no call made").is_none()));
    }
}

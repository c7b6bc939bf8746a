//! How `write()` and `wsgi.early_hints` reach the client while the app is still running.
//!
//! PEP 3333 wants write() data transmitted (or the call blocked until it can be) before write()
//! returns. Where the app runs decides how:
//! - gthread runs it on another thread: write() hands the bytes to the request's engine task
//!   over a queue and waits (GIL released) until the task has written them, so memory stays at
//!   one piece and a slow client slows the app (backpressure).
//! - gevent and eventlet run it in a greenlet on the hub's thread, which a blocking wait would
//!   stop for every other request of the worker: write() queues the bytes the same way, then
//!   waits cooperatively (a [`hub::Waiter`]: the greenlet yields to the hub until the engine
//!   task has written them), as a gevent socket's `sendall` does in Gunicorn's gevent worker.
//!   The library's own timeouts and kills reach the app inside write() as they would there.
//! - tornado's WSGI path runs the app in a loop callback, which cannot yield: write() blocks
//!   the loop until the bytes are written, bounded by the io timeout, as any blocking call in a
//!   WSGI app on tornado does.
//! - the sync class runs it on the engine's own thread, inside the task, where the event loop
//!   cannot run: write() writes the socket directly with blocking waits ([`InlineSink`]), as
//!   Gunicorn's sync worker blocks in `sendall`.

use super::Shared;
use super::executor::{Executor, Lane};
use super::hub;
use super::writer::{self, DirectIo, ResponseStart, ResponseWriter, WriteContext};
use crate::wsgi::ResponseSink;
use ferrocorn_http::{RequestHead, Version};
use pyo3::prelude::*;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::AsyncWrite;

/// What has gone to the client of the current response; written by the sink while the app
/// runs and by the engine afterwards.
#[derive(Default)]
pub struct Progress {
    /// Set once the head is on the wire.
    pub writer: Option<ResponseWriter>,
    /// A write failed (the client left or stopped reading): nothing more goes out.
    pub failed: bool,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the client connection is closed")
}

impl Progress {
    /// Sends an interim response or body bytes through `put`, which writes the parts in
    /// order; starts the response first when `start` is given.
    fn send(&mut self, cx: &WriteContext<'_>, op: Op<'_>, put: impl FnOnce(&[&[u8]]) -> io::Result<()>) -> io::Result<()> {
        if self.failed {
            return Err(gone());
        }
        let result = match op {
            Op::Interim(block) if self.writer.is_none() => put(&[block]),
            Op::Interim(_) => Ok(()),
            Op::Body(start, data) => {
                let mut head = Vec::new();
                if let Some(start) = start {
                    self.writer = Some(ResponseWriter::begin(cx, start, None, &mut head));
                }
                match self.writer.as_mut() {
                    Some(w) => {
                        let (body, suffix) = w.frame_parts(data, &mut head);
                        put(&[&head, body, suffix])
                    }
                    None => Err(io::Error::other("write() before the response head")),
                }
            }
        };
        if result.is_err() {
            self.failed = true;
        }
        result
    }
}

enum Op<'a> {
    Interim(&'a [u8]),
    Body(Option<ResponseStart>, &'a [u8]),
}

/// The engine's side of a sync app's inline call: valid only while that call runs.
struct InlineTarget<'a> {
    stream: &'a mut dyn DirectIo,
    progress: &'a mut Progress,
    cx: WriteContext<'a>,
    timeout: Option<Duration>,
}

impl InlineTarget<'_> {
    fn send(&mut self, op: Op<'_>) -> io::Result<()> {
        let (stream, timeout) = (&mut *self.stream, self.timeout);
        self.progress.send(&self.cx, op, |parts| writer::write_blocking(stream.direct(), parts, timeout))
    }
}

/// The sink for apps that run inline (sync class): one per engine thread, pointed at the
/// current request's connection for the duration of each inline call.
pub struct InlineSink {
    /// The armed target, as an address: see [`InlineSink::arm`].
    target: Mutex<Option<usize>>,
}

thread_local! {
    static INLINE: Arc<InlineSink> = Arc::new(InlineSink { target: Mutex::new(None) });
}

/// Disarms the inline sink when the inline call is over.
pub struct Armed<'a> {
    sink: Arc<InlineSink>,
    _target: std::marker::PhantomData<&'a mut ()>,
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        // Taking the lock waits for a write in progress on another of the app's threads.
        *self.sink.lock() = None;
    }
}

impl InlineSink {
    pub fn current() -> Arc<InlineSink> {
        INLINE.with(Arc::clone)
    }

    fn lock(&self) -> MutexGuard<'_, Option<usize>> {
        // Poisoned only by a panic inside a write; the slot itself is still consistent.
        self.target.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Points the sink at `target` until the returned guard is dropped. The guard borrows
    /// `target` mutably, so nothing else can use it (or move or drop it) meanwhile.
    fn arm<'a>(self: &Arc<Self>, target: &'a mut InlineTarget<'_>) -> Armed<'a> {
        let addr = std::ptr::from_mut(target).cast::<InlineTarget<'static>>() as usize;
        *self.lock() = Some(addr);
        Armed { sink: self.clone(), _target: std::marker::PhantomData }
    }

    fn with_target<R>(&self, f: impl FnOnce(&mut InlineTarget<'_>) -> R) -> Option<R> {
        let slot = self.lock();
        let addr = (*slot)?;
        // SAFETY: `addr` was set by `arm` from a `&mut InlineTarget` that the `Armed` guard
        // keeps borrowed (so alive and unaliased) until it clears the slot under this same
        // lock, which we hold for the whole use: the target is valid, and only we use it.
        let target = unsafe { &mut *(addr as *mut InlineTarget<'static>) };
        Some(f(target))
    }
}

impl ResponseSink for InlineSink {
    fn body(&self, _py: Python<'_>, start: Option<ResponseStart>, data: &[u8]) -> io::Result<()> {
        // The GIL stays held: the engine thread is the app's thread, and the write is bounded
        // by the io timeout, as Gunicorn's sync worker is in sendall.
        self.with_target(|t| t.send(Op::Body(start, data))).unwrap_or_else(|| Err(gone()))
    }

    fn interim(&self, _py: Python<'_>, block: &[u8]) -> io::Result<()> {
        self.with_target(|t| t.send(Op::Interim(block))).unwrap_or_else(|| Err(gone()))
    }

    fn interim_allowed(&self) -> bool {
        self.with_target(|t| t.cx.head.version != Version::Http10).unwrap_or(false)
    }
}

/// A write handed from the app's thread to the request's engine task.
pub struct WriteOp {
    kind: OpKind,
    reply: std::sync::mpsc::SyncSender<io::Result<()>>,
    /// For a greenlet's write: wakes it once dropped, so declared after `reply`, which must
    /// hold the answer (or be gone) by then.
    _wake: Option<hub::Wake>,
}

enum OpKind {
    Interim(Vec<u8>),
    Body(Option<ResponseStart>, Vec<u8>),
}

/// The sink for apps on other threads or greenlets (gthread, gevent, eventlet, tornado): a
/// queue the request's engine task drains while the app step runs. Lighter than a channel
/// (one allocation per request, none until write() is called), which the hello path feels.
pub struct ChannelSink {
    queue: Mutex<ChannelQueue>,
    wake: tokio::sync::Notify,
    http11: bool,
}

#[derive(Default)]
struct ChannelQueue {
    ops: std::collections::VecDeque<WriteOp>,
    /// The request is over: writes fail from now on.
    closed: bool,
}

impl ChannelSink {
    fn lock(&self) -> MutexGuard<'_, ChannelQueue> {
        // Poisoned only by a panic while pushing or popping; the queue is still consistent.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn call(&self, py: Python<'_>, kind: OpKind) -> io::Result<()> {
        // Looked up only here, so an app that never calls write() pays nothing for it.
        let (waiter, wake) = match hub::Waiter::here(py) {
            Ok(Some((waiter, wake))) => (Some(waiter), Some(wake)),
            Ok(None) => (None, None),
            Err(e) => return Err(io::Error::other(e)),
        };
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        {
            let mut q = self.lock();
            if q.closed {
                drop(q);
                if let Some(wake) = wake {
                    wake.disarm(py);
                }
                return Err(gone());
            }
            q.ops.push_back(WriteOp { kind, reply, _wake: wake });
        }
        self.wake.notify_one();
        match waiter {
            // A greenlet yields to its hub until the engine task is done with the op; the
            // answer is in by then.
            Some(waiter) => {
                waiter.wait(py).map_err(io::Error::other)?;
                answer.try_recv().unwrap_or_else(|_| Err(gone()))
            }
            // A thread waits without the GIL.
            None => py.detach(move || answer.recv()).unwrap_or_else(|_| Err(gone())),
        }
    }
}

impl ResponseSink for ChannelSink {
    fn body(&self, py: Python<'_>, start: Option<ResponseStart>, data: &[u8]) -> io::Result<()> {
        self.call(py, OpKind::Body(start, data.to_vec()))
    }

    fn interim(&self, py: Python<'_>, block: &[u8]) -> io::Result<()> {
        self.call(py, OpKind::Interim(block.to_vec()))
    }

    fn interim_allowed(&self) -> bool {
        self.http11
    }
}

/// One request's way to the client while its app runs.
pub struct Outlet<'s, S> {
    pub stream: &'s mut S,
    pub progress: Progress,
    /// The queue of writes from the app's thread (not for inline apps).
    ops: Option<Arc<ChannelSink>>,
}

impl<S> Drop for Outlet<'_, S> {
    fn drop(&mut self) {
        // A write() from a thread the app left behind fails instead of waiting forever.
        if let Some(sink) = &self.ops {
            let dropped = {
                let mut q = sink.lock();
                q.closed = true;
                std::mem::take(&mut q.ops)
            };
            // Dropped unlocked: a greenlet's wake-up goes through the hub's inbox.
            drop(dropped);
        }
    }
}

impl<'s, S: AsyncWrite + DirectIo + Unpin> Outlet<'s, S> {
    /// The outlet and the sink to give the app's `start_response`.
    pub fn new(stream: &'s mut S, sh: &Shared, head: &RequestHead) -> (Outlet<'s, S>, Arc<dyn ResponseSink>) {
        match sh.executor {
            Executor::Inline { .. } => {
                (Outlet { stream, progress: Progress::default(), ops: None }, InlineSink::current() as Arc<dyn ResponseSink>)
            }
            _ => {
                let sink = Arc::new(ChannelSink {
                    queue: Mutex::new(ChannelQueue::default()),
                    wake: tokio::sync::Notify::new(),
                    http11: head.version != Version::Http10,
                });
                (Outlet { stream, progress: Progress::default(), ops: Some(sink.clone()) }, sink as Arc<dyn ResponseSink>)
            }
        }
    }

    /// Runs one step of the app on its lane, serving the writes it makes meanwhile.
    pub async fn run<R, F>(&mut self, sh: &Shared, lane: &Lane<'_>, head: &RequestHead, f: F) -> R
    where
        R: Send + 'static,
        F: FnOnce(Python<'_>) -> R + Send + 'static,
    {
        let cx = context(sh, head);
        let timeout = sh.settings.read_timeout();
        let Some(ops) = self.ops.clone() else {
            // Inline: the executor runs `f` right here, before this await can suspend.
            let mut target = InlineTarget { stream: &mut *self.stream, progress: &mut self.progress, cx, timeout };
            let _armed = InlineSink::current().arm(&mut target);
            return sh.executor.run(lane, f).await;
        };
        let mut step = std::pin::pin!(sh.executor.run(lane, f));
        loop {
            let op = tokio::select! {
                r = &mut step => {
                    // What was queued before the step ended goes out before anything the engine
                    // sends next: a write whose wait the app gave up (its greenlet library's
                    // Timeout), or one from another of the app's threads.
                    loop {
                        let queued = ops.lock().ops.pop_front();
                        let Some(op) = queued else { break };
                        self.serve(sh, &cx, op, timeout).await;
                    }
                    return r;
                }
                _ = ops.wake.notified() => {
                    let Some(op) = ops.lock().ops.pop_front() else { continue };
                    // More may be queued (several app threads writing): look again next turn.
                    if !ops.lock().ops.is_empty() {
                        ops.wake.notify_one();
                    }
                    op
                }
            };
            self.serve(sh, &cx, op, timeout).await;
        }
    }

    /// Writes one op from the app and answers it.
    async fn serve(&mut self, sh: &Shared, cx: &WriteContext<'_>, op: WriteOp, timeout: Option<Duration>) {
        let stream = &mut *self.stream;
        let result = match op.kind {
            OpKind::Interim(block) => send_async(&mut self.progress, cx, stream, Op::Interim(&block), timeout).await,
            OpKind::Body(start, data) => send_async(&mut self.progress, cx, stream, Op::Body(start, &data), timeout).await,
        };
        sh.heartbeat.beat();
        let _ = op.reply.send(result);
    }
}

async fn send_async<S: AsyncWrite + Unpin>(
    progress: &mut Progress,
    cx: &WriteContext<'_>,
    stream: &mut S,
    op: Op<'_>,
    timeout: Option<Duration>,
) -> io::Result<()> {
    // Framed synchronously into owned parts, then written: the framing state is updated
    // before the write, as in the blocking path.
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let framed = progress.send(cx, op, |p| {
        parts = p.iter().map(|x| x.to_vec()).collect();
        Ok(())
    });
    framed?;
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    let r = writer::write_parts(stream, &refs, timeout).await;
    if r.is_err() {
        progress.failed = true;
    }
    r
}

pub fn context<'a>(sh: &'a Shared, head: &'a RequestHead) -> WriteContext<'a> {
    WriteContext { head, keep_allowed: sh.keep_alive_allowed(), date: sh.date(), server_header: &sh.settings.server_header }
}

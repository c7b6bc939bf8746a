//! Calling the application and pulling its response body out in bounded steps.
//!
//! The worker asks for up to `budget` bytes at a time, writes them, then asks again, so a huge
//! or endless generator never buffers more than `budget` in memory. Lists and tuples (the
//! common `[body]` case) are read by index without the iterator protocol.

use super::file_wrapper::FileWrapper;
use super::start_response::StartResponse;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyIterator, PyList, PyTuple};

/// Where the remaining body comes from.
enum Source {
    /// A list or tuple, read by index.
    Seq {
        items: Py<PyAny>,
        next: usize,
    },
    /// Any other iterable, through `iter()`.
    Iter(Py<PyIterator>),
    Done,
}

/// Whether the body has more to give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pull {
    More,
    Done,
}

/// Why the application's response could not be produced.
#[derive(Debug)]
pub enum AppFailure {
    /// The app (or its iterable) raised.
    Raised(PyErr),
    /// The app returned without ever calling `start_response`.
    NoStartResponse,
    /// The app raised SystemExit or KeyboardInterrupt: as in Gunicorn, the worker exits.
    Exit(i32),
}

impl AppFailure {
    /// Classifies a Python exception; SystemExit/KeyboardInterrupt end the worker.
    pub fn from_err(py: Python<'_>, e: PyErr) -> AppFailure {
        if e.is_instance_of::<pyo3::exceptions::PySystemExit>(py) {
            let code = e
                .value(py)
                .getattr("code")
                .ok()
                .and_then(|c| if c.is_none() { Some(0) } else { c.extract::<i32>().ok() })
                .unwrap_or(1);
            return AppFailure::Exit(code);
        }
        if e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) {
            return AppFailure::Exit(1);
        }
        AppFailure::Raised(e)
    }
}

/// A regular file to send as the body: a duplicate of the app's fd (so closing the iterable
/// does not end it), its position when the app returned, and the bytes from there to the end.
pub struct FileBody {
    pub fd: std::os::fd::OwnedFd,
    pub offset: u64,
    pub available: u64,
}

/// One application call in progress.
pub struct AppCall {
    pub start_response: Py<StartResponse>,
    /// The returned iterable, kept for `close()`.
    result: Option<Py<PyAny>>,
    source: Source,
}

impl AppCall {
    /// Calls `app(environ, start_response)`.
    pub fn start(
        py: Python<'_>,
        app: &Bound<'_, PyAny>,
        environ: Bound<'_, PyDict>,
        sr: Py<StartResponse>,
    ) -> Result<AppCall, AppFailure> {
        let result = app.call1((environ, sr.clone_ref(py))).map_err(|e| AppFailure::from_err(py, e))?;
        let source = if result.is_instance_of::<PyList>() || result.is_instance_of::<PyTuple>() {
            Source::Seq { items: result.clone().unbind(), next: 0 }
        } else {
            match result.try_iter() {
                Ok(it) => Source::Iter(it.unbind()),
                Err(e) => {
                    return Err(AppFailure::Raised(PyTypeError::new_err(format!(
                        "the application returned a non-iterable: {e}"
                    ))));
                }
            }
        };
        // A plain list or tuple has no close(): not asking saves raising and catching an
        // AttributeError on every request (the common `return [body]`).
        let plain = result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>();
        let result = if plain { None } else { Some(result.unbind()) };
        Ok(AppCall { start_response: sr, result, source })
    }

    /// Whether the app returned `wsgi.file_wrapper(...)`: its body can be sent without pulling it.
    pub fn is_file_wrapper(&self, py: Python<'_>) -> bool {
        self.result.as_ref().is_some_and(|r| r.bind(py).is_instance_of::<FileWrapper>())
    }

    /// The regular file behind a `wsgi.file_wrapper` response, for sendfile: `None` when the
    /// object has no usable fileno() or it is not a regular file (a pipe, a socket, BytesIO).
    pub fn regular_file(&self, py: Python<'_>) -> Option<FileBody> {
        let wrapper = self.result.as_ref()?.bind(py).cast::<FileWrapper>().ok()?;
        let filelike = wrapper.borrow().filelike.clone_ref(py);
        let fd: i32 = filelike.bind(py).call_method0(pyo3::intern!(py, "fileno")).ok()?.extract().ok()?;
        // Python buffers reads: a file object read through Python may be ahead of its fd.
        // Gunicorn reads the fd's position too, so the same objects behave the same.
        // SAFETY: the fd belongs to the file object, which lives for this call; it is only
        // borrowed here to duplicate it.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        let stat = nix::sys::stat::fstat(borrowed).ok()?;
        if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
            return None;
        }
        let offset = nix::unistd::lseek(borrowed, 0, nix::unistd::Whence::SeekCur).ok()?;
        let offset = u64::try_from(offset).ok()?;
        let size = u64::try_from(stat.st_size).ok()?;
        let fd = borrowed.try_clone_to_owned().ok()?;
        Some(FileBody { fd, offset, available: size.saturating_sub(offset) })
    }

    /// Appends body bytes to `out` until at least `budget` bytes are there or the body ends; a
    /// generator's pieces are returned one at a time so streamed responses are not held back.
    pub fn pull(&mut self, py: Python<'_>, out: &mut Vec<u8>, budget: usize) -> Result<Pull, AppFailure> {
        let sr = self.start_response.bind(py);
        loop {
            take_written(sr, out);
            if out.len() >= budget {
                return Ok(Pull::More);
            }
            let item = match &mut self.source {
                Source::Done => break,
                Source::Seq { items, next } => {
                    let items = items.bind(py);
                    let len = items.len().map_err(AppFailure::Raised)?;
                    if *next >= len {
                        self.source = Source::Done;
                        continue;
                    }
                    let item = items.get_item(*next).map_err(AppFailure::Raised)?;
                    *next += 1;
                    item
                }
                Source::Iter(it) => {
                    // PyIter_Next: no method lookup, and no StopIteration object at the end.
                    let mut it = it.bind(py).clone();
                    match it.next() {
                        Some(Ok(item)) => item,
                        None => {
                            self.source = Source::Done;
                            continue;
                        }
                        Some(Err(e)) => return Err(AppFailure::from_err(py, e)),
                    }
                }
            };
            let bytes = item.cast::<PyBytes>().map_err(|_| {
                AppFailure::Raised(PyTypeError::new_err(format!(
                    "the response iterable yielded {}, expected bytes",
                    item.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                )))
            })?;
            // write() calls made while producing this item come before it.
            take_written(sr, out);
            let data = bytes.as_bytes();
            if !data.is_empty() {
                let mut s = sr.borrow_mut();
                if s.status.is_none() {
                    return Err(AppFailure::Raised(PyRuntimeError::new_err(
                        "the application produced body data before calling start_response()",
                    )));
                }
                s.body_started = true;
                drop(s);
                out.extend_from_slice(data);
                // A generator may take its time between pieces (streaming, server-sent
                // events): hand each piece to the writer as soon as it is yielded.
                if matches!(self.source, Source::Iter(_)) {
                    return Ok(Pull::More);
                }
            }
        }
        take_written(sr, out);
        if sr.borrow().status.is_none() {
            return Err(AppFailure::NoStartResponse);
        }
        Ok(Pull::Done)
    }

    /// Calls the iterable's `close()` if it has one; PEP 3333 requires it on every outcome.
    pub fn close(&mut self, py: Python<'_>) -> PyResult<()> {
        self.source = Source::Done;
        match self.result.take() {
            Some(result) => {
                let result = result.bind(py);
                if result.hasattr(pyo3::intern!(py, "close"))? {
                    result.call_method0(pyo3::intern!(py, "close"))?;
                }
                Ok(())
            }
            None => Ok(()),
        }
    }
}

fn take_written(sr: &Bound<'_, StartResponse>, out: &mut Vec<u8>) {
    let mut s = sr.borrow_mut();
    if !s.written.is_empty() {
        if out.is_empty() {
            std::mem::swap(out, &mut s.written);
        } else {
            out.append(&mut s.written);
        }
    }
}

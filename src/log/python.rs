//! The bridge to Python's `logging` (see `python/ferrocorn/_logging.py`).
//!
//! Fast path: the Rust log writes lines itself; Python only gets a handler on `gunicorn.error`
//! that writes into the same error log (`_write_error_log`). Python path (a logging config, a
//! logger class or syslog is configured): a Python logger object with Gunicorn's interface is
//! installed here once, in the master before any fork, and every error-log message and access
//! record goes through it.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use std::sync::OnceLock;

use super::Level;
use super::access::AccessRecord;

struct Installed {
    /// The logger object (`ferrocorn._logging.Logger` or the user's `logger_class`).
    logger: Py<PyAny>,
    /// `ferrocorn._logging.access`, which wraps a record for `logger.access(...)`.
    access: Py<PyAny>,
}

static PYTHON: OnceLock<Installed> = OnceLock::new();

/// Whether log output goes through Python's `logging`.
pub fn active() -> bool {
    PYTHON.get().is_some()
}

/// Makes the logger for `values` (settings by name) and routes all logging through it.
pub fn install(py: Python<'_>, values: Bound<'_, PyDict>) -> PyResult<()> {
    let module = py.import("ferrocorn._logging")?;
    let logger = module.call_method1("make_logger", (values,))?;
    let access = module.getattr("access")?;
    let _ = PYTHON.set(Installed { logger: logger.unbind(), access: access.unbind() });
    Ok(())
}

/// Fast path: `gunicorn.error` gets a handler writing to the Rust error log.
pub fn install_fast_handlers(py: Python<'_>, level: Level) -> PyResult<()> {
    let name = level.name().to_ascii_lowercase();
    py.import("ferrocorn._logging")?.call_method1("install_fast_handlers", (name,))?;
    Ok(())
}

/// Sends one message to the logger's method for `level`. A message is passed with no
/// arguments, so `%` in it is never interpreted.
pub fn emit(level: Level, msg: &str) {
    let Some(inst) = PYTHON.get() else { return };
    let method = match level {
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warning => "warning",
        Level::Error => "error",
        Level::Critical => "critical",
    };
    Python::attach(|py| {
        if let Err(e) = inst.logger.call_method1(py, method, (msg,)) {
            // The logger itself failed: say so on the raw error log rather than lose both.
            let text = format!("logger_class.{method}() failed: {e}\n{msg}\n");
            super::write_raw(text.as_bytes());
        }
    });
}

/// SIGUSR1 on the Python path: the logger reopens its own files.
pub fn reopen_files() {
    let Some(inst) = PYTHON.get() else { return };
    Python::attach(|py| {
        if let Err(e) = inst.logger.call_method0(py, "reopen_files") {
            super::write_raw(format!("logger_class.reopen_files() failed: {e}\n").as_bytes());
        }
    });
}

/// One access record through `logger.access(resp, req, environ, request_time)`.
pub fn access(rec: &AccessRecord<'_>) {
    let Some(inst) = PYTHON.get() else { return };
    Python::attach(|py| {
        let call = || -> PyResult<()> {
            let text = |b: &[u8]| PyString::new(py, &latin1(b));
            let pairs = |hs: &[(&[u8], &[u8])], upper: bool| -> PyResult<Bound<'_, PyList>> {
                let list = PyList::empty(py);
                for (n, v) in hs {
                    let n = if upper { n.to_ascii_uppercase() } else { n.to_vec() };
                    list.append(PyTuple::new(py, [text(&n), text(v)])?)?;
                }
                Ok(list)
            };
            let environ = match rec.environ.python() {
                Some(env) => env.clone_ref(py).into_bound(py),
                None => PyDict::new(py),
            };
            let module = py.import("ferrocorn._logging")?;
            let req = module.getattr("Request")?.call1((
                rec.method,
                text(rec.raw_uri),
                text(rec.path),
                text(rec.query),
                rec.protocol,
                pairs(rec.request_headers, true)?,
            ))?;
            inst.access.call1(
                py,
                (
                    inst.logger.bind(py),
                    text(rec.status),
                    rec.response_length,
                    pairs(rec.response_headers, false)?,
                    req,
                    environ,
                    rec.request_time.as_micros() as u64,
                ),
            )?;
            Ok(())
        };
        if let Err(e) = call() {
            super::write_raw(format!("access log through Python failed: {e}\n").as_bytes());
        }
    });
}

/// Bytes as a string the way WSGI decodes them (ISO-8859-1: each byte one code point).
fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

/// `ferrocorn._core._write_error_log(text)`: the fast-path handler's output.
#[pyfunction]
fn _write_error_log(text: &str) {
    super::write_raw(text.as_bytes());
}

/// Adds this module's functions to `ferrocorn._core`.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(super::json::_log_is_json, m)?)?;
    m.add_function(wrap_pyfunction!(_write_error_log, m)?)
}

//! What a timed-out worker was doing: before it exits on the master's SIGABRT, the worker logs
//! the Python stack of each lane that was in the app, with the request's method, path and how
//! long it has run (see `report_stuck` in python/ferrocorn/_hooks.py, which formats it).

use super::heartbeat::Heartbeat;
use pyo3::prelude::*;
use pyo3::types::PyCFunction;

/// A Python callable returning the seconds since this worker's last heartbeat. In a sync
/// worker the loop beats just before entering the app, so for a stuck request this is how long
/// the request has been in the app.
pub fn running_for(py: Python<'_>, heartbeat: Heartbeat) -> PyResult<Bound<'_, PyCFunction>> {
    PyCFunction::new_closure(py, None, None, move |_args, _kwargs| -> PyResult<f64> {
        Ok(std::time::Duration::from_millis(heartbeat.silent_for_ms()).as_secs_f64())
    })
}

/// Logs the stacks of every thread that is inside the app (gthread and the hub classes, whose
/// SIGABRT is handled on the I/O thread). Errors are logged, never raised: the worker is about
/// to exit either way.
pub fn report_threads(py: Python<'_>) {
    if let Err(e) = py.import("ferrocorn._hooks").and_then(|m| m.call_method1("report_stuck", (py.None(), py.None()))) {
        crate::log_error!("cannot report what the worker was doing: {}", crate::wsgi::format_exception(py, &e));
    }
}

/// What [`report_request`] logs about a request past `request_timeout`.
pub struct Overdue {
    pub method: String,
    /// The request target as the client sent it (`RAW_URI`).
    pub uri: String,
    /// `REMOTE_PORT` as the app's environ has it, to tell apart two identical requests.
    pub port: Option<String>,
    pub running: std::time::Duration,
    pub limit: std::time::Duration,
}

/// Logs the Python stack of the thread or greenlet still running a request that went past
/// `request_timeout` (see `report_request_timeout` in python/ferrocorn/_hooks.py). A greenlet's
/// frames are read on its own loop's thread (the driver lane); a pool thread's from here.
pub fn report_request(exec: &super::executor::Executor, overdue: Overdue) {
    let job = move |py: Python<'_>| {
        let args = (overdue.method, overdue.uri, overdue.port, overdue.running.as_secs_f64(), overdue.limit.as_secs_f64());
        if let Err(e) = py.import("ferrocorn._hooks").and_then(|m| m.call_method1("report_request_timeout", args)) {
            crate::log_error!("cannot report the timed-out request: {}", crate::wsgi::format_exception(py, &e));
        }
    };
    match exec {
        super::executor::Executor::Hub { .. } => exec.detached(job),
        _ => Python::attach(job),
    }
}

//! PEP 3333: everything between a complete HTTP request and the application's response bytes.
//!
//! The worker's I/O engine hands over a parsed head and a fully received [`Body`]; this module
//! builds the environ, calls the application, and pulls response bytes out of whatever iterable
//! it returned. Nothing here touches a socket, so a slow client can never block the app.

pub mod environ;
pub mod errors;
pub mod file_wrapper;
pub mod input;
pub mod response;
pub mod start_response;

pub use environ::{AllowList, ConnInfo, EnvironError, Peer, WsgiContext, WsgiSettings};
pub use input::{Body, Input};
pub use response::{AppCall, AppFailure, FileBody, Pull};
pub use start_response::{EarlyHints, ResponseSink, ResponseStart, StartResponse};

use pyo3::prelude::*;

/// Formats the current Python exception with its traceback, for the error log.
pub fn format_exception(py: Python<'_>, err: &PyErr) -> String {
    let formatted = (|| -> PyResult<String> {
        let tb = py.import("traceback")?;
        let lines = tb.call_method1("format_exception", (err.get_type(py), err.value(py), err.traceback(py)))?;
        let joined: String = pyo3::types::PyString::new(py, "").call_method1("join", (lines,))?.extract()?;
        Ok(joined)
    })();
    match formatted {
        Ok(text) => text.trim_end().to_string(),
        Err(_) => format!("{err}"),
    }
}

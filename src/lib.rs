//! ferrocorn's native core, loaded by Python as `ferrocorn._core`.
//!
//! This file only lists the modules and registers the Python entry points. Dependencies point
//! one way: cli -> config -> arbiter -> worker -> wsgi -> http; arbiter and worker -> sock -> sys.

pub mod arbiter;
pub mod cli;
mod cmd;
mod compat;
pub mod config;
pub mod hooks;
pub mod log;
pub mod metrics;
pub mod sock;
pub mod sys;
pub mod tls;
pub mod worker;
pub mod wsgi;

use pyo3::prelude::*;

/// Runs the `ferrocorn` command with the given argv (argv[0] included) and returns the exit code.
#[pyfunction]
fn run(py: Python<'_>, argv: Vec<String>) -> i32 {
    compat::install(py);
    cmd::main(py, argv)
}

/// Writes one error-log line at `level` (10 debug .. 50 critical), for Python-side loggers.
#[pyfunction(name = "log")]
fn log_line(level: i32, text: &str) {
    let level = match level {
        l if l < 20 => log::Level::Debug,
        l if l < 30 => log::Level::Info,
        l if l < 40 => log::Level::Warning,
        l if l < 50 => log::Level::Error,
        _ => log::Level::Critical,
    };
    log::log(level, format_args!("{text}"));
}

/// Reopens the error log file (what `server.log.reopen_files()` does).
#[pyfunction]
fn reopen_logs() {
    if let Err(e) = log::reopen() {
        log_error!("cannot reopen the error log: {e}");
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(log_line, m)?)?;
    m.add_function(wrap_pyfunction!(reopen_logs, m)?)?;
    log::python::register(m)?;
    Ok(())
}

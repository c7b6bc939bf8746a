//! ferrocorn's native core, loaded by Python as `ferrocorn._core`.
//!
//! This file only lists the modules and registers the Python entry points. Dependencies point
//! one way: cli -> config -> arbiter -> worker -> wsgi -> http; arbiter and worker -> sock -> sys.

pub mod cli;
pub mod config;
pub mod sock;
pub mod sys;
pub mod log;
pub mod tls;
pub mod arbiter;
pub mod worker;
pub mod wsgi;
mod cmd;

use pyo3::prelude::*;

/// Runs the `ferrocorn` command with the given argv (argv[0] included) and returns the exit code.
#[pyfunction]
fn run(py: Python<'_>, argv: Vec<String>) -> i32 {
    cmd::main(py, argv)
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    Ok(())
}

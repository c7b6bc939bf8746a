//! The `ferrocorn` command from argv to exit code: load the config, bind, run the master.

use pyo3::prelude::*;

pub fn main(py: Python<'_>, argv: Vec<String>) -> i32 {
    let _ = (py, argv);
    0
}

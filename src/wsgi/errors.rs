//! `wsgi.errors`: a text stream whose output goes to the error log, as PEP 3333 asks.

use pyo3::prelude::*;

#[pyclass(module = "ferrocorn._core", name = "ErrorStream")]
pub struct ErrorStream;

#[pymethods]
impl ErrorStream {
    fn write(&self, s: &str) -> usize {
        crate::log::write_raw(s.as_bytes());
        s.len()
    }

    fn writelines(&self, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in lines.try_iter()? {
            let line = line?;
            let s: String = line.extract()?;
            crate::log::write_raw(s.as_bytes());
        }
        Ok(())
    }

    fn flush(&self) {}
}

//! `wsgi.input`: the request body, already fully received, as a readable binary stream.
//!
//! Bodies up to a threshold live in memory; larger ones were spilled to an unlinked temporary
//! file by the worker, so a 1 GiB upload costs disk, not RSS. Reads never touch the network.

use pyo3::exceptions::PyIOError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use std::fs::File;
use std::os::unix::fs::FileExt;

/// A complete request body.
#[derive(Debug)]
pub enum Body {
    Memory(Vec<u8>),
    /// An unlinked temp file holding `len` bytes.
    File {
        file: File,
        len: u64,
    },
}

impl Body {
    pub fn empty() -> Body {
        Body::Memory(Vec::new())
    }

    pub fn len(&self) -> u64 {
        match self {
            Body::Memory(v) => v.len() as u64,
            Body::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies up to `buf.len()` bytes from `pos`; returns how many.
    fn read_at(&self, pos: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let len = self.len();
        if pos >= len {
            return Ok(0);
        }
        let n = buf.len().min((len - pos) as usize);
        match self {
            Body::Memory(v) => {
                let start = pos as usize;
                buf[..n].copy_from_slice(&v[start..start + n]);
                Ok(n)
            }
            Body::File { file, .. } => {
                let mut done = 0;
                while done < n {
                    let got = file.read_at(&mut buf[done..n], pos + done as u64)?;
                    if got == 0 {
                        break;
                    }
                    done += got;
                }
                Ok(done)
            }
        }
    }
}

/// Block size for scanning a file-backed body for line ends.
const LINE_SCAN: usize = 8192;

#[pyclass(module = "ferrocorn._core", name = "Input")]
pub struct Input {
    body: Body,
    pos: u64,
}

impl Input {
    pub fn new(body: Body) -> Input {
        Input { body, pos: 0 }
    }

    fn remaining(&self) -> u64 {
        self.body.len().saturating_sub(self.pos)
    }

    fn take<'py>(&mut self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyBytes>> {
        let n = n.min(self.remaining() as usize);
        if let Body::Memory(v) = &self.body {
            let start = self.pos as usize;
            self.pos += n as u64;
            return Ok(PyBytes::new(py, &v[start..start + n]));
        }
        let pos = self.pos;
        let body = &self.body;
        let bytes = PyBytes::new_with(py, n, |buf| {
            let got = body.read_at(pos, buf).map_err(|e| PyIOError::new_err(e.to_string()))?;
            if got != n {
                return Err(PyIOError::new_err("request body file is shorter than expected"));
            }
            Ok(())
        })?;
        self.pos += n as u64;
        Ok(bytes)
    }

    /// Length of the next line (through `\n`), capped at `limit`.
    fn line_len(&self, limit: usize) -> PyResult<usize> {
        let limit = limit.min(self.remaining() as usize);
        match &self.body {
            Body::Memory(v) => {
                let start = self.pos as usize;
                let hay = &v[start..start + limit];
                Ok(memchr_nl(hay).map_or(limit, |i| i + 1))
            }
            Body::File { .. } => {
                let mut scanned = 0usize;
                let mut block = [0u8; LINE_SCAN];
                while scanned < limit {
                    let want = (limit - scanned).min(LINE_SCAN);
                    let got = self
                        .body
                        .read_at(self.pos + scanned as u64, &mut block[..want])
                        .map_err(|e| PyIOError::new_err(e.to_string()))?;
                    if got == 0 {
                        break;
                    }
                    if let Some(i) = memchr_nl(&block[..got]) {
                        return Ok(scanned + i + 1);
                    }
                    scanned += got;
                }
                Ok(scanned.min(limit))
            }
        }
    }
}

fn memchr_nl(hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == b'\n')
}

/// `None` or a negative size means "no limit", as in `io.RawIOBase`.
fn limit_of(size: Option<isize>) -> usize {
    match size {
        Some(n) if n >= 0 => n as usize,
        _ => usize::MAX,
    }
}

#[pymethods]
impl Input {
    #[pyo3(signature = (size=None))]
    fn read<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        self.take(py, limit_of(size))
    }

    #[pyo3(signature = (size=None))]
    fn readline<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let n = self.line_len(limit_of(size))?;
        self.take(py, n)
    }

    /// Reads lines until `hint` bytes have been returned (all lines when `hint` <= 0).
    #[pyo3(signature = (hint=None))]
    fn readlines<'py>(&mut self, py: Python<'py>, hint: Option<isize>) -> PyResult<Bound<'py, PyList>> {
        let hint = match hint {
            Some(h) if h > 0 => h as usize,
            _ => usize::MAX,
        };
        let lines = PyList::empty(py);
        let mut total = 0usize;
        while self.remaining() > 0 && total < hint {
            let n = self.line_len(usize::MAX)?;
            total = total.saturating_add(n);
            lines.append(self.take(py, n)?)?;
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        if self.remaining() == 0 {
            return Ok(None);
        }
        let n = self.line_len(usize::MAX)?;
        self.take(py, n).map(Some)
    }

    fn readable(&self) -> bool {
        true
    }

    fn close(&self) {}
}

//! `start_response` and the `write()` callable it returns (PEP 3333).
//!
//! Headers are validated here, in the application's call, so a bad header raises inside the
//! app (and becomes a logged 500) instead of reaching the wire. Nothing is sent from here: the
//! worker reads the stored status and headers once the first body bytes exist.

use ferrocorn_http::response::{ResponseError, is_hop_by_hop, validate_header, validate_status};
use pyo3::exceptions::{PyAssertionError, PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use std::sync::Arc;

/// What the app chose in `start_response`, as the writer needs it.
pub struct ResponseStart {
    /// The status line as given, e.g. `200 OK`.
    pub status: Vec<u8>,
    pub code: u16,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub content_length: Option<u64>,
    /// The app asked for `Connection: close`.
    pub wants_close: bool,
}

/// Where `write()` and `wsgi.early_hints` put bytes while the app runs: the connection, so
/// they reach the client before the call returns (PEP 3333), with the caller blocked until
/// they are written (backpressure).
pub trait ResponseSink: Send + Sync {
    /// Sends the response head (`start`, on the first call only) and body `data`.
    fn body(&self, py: Python<'_>, start: Option<ResponseStart>, data: &[u8]) -> std::io::Result<()>;
    /// Sends a complete interim response (`103 Early Hints`).
    fn interim(&self, py: Python<'_>, block: &[u8]) -> std::io::Result<()>;
    /// Whether the client speaks HTTP/1.1 or later (interim responses are for those only).
    fn interim_allowed(&self) -> bool;
}

#[pyclass(module = "ferrocorn._core", name = "StartResponse")]
pub struct StartResponse {
    /// The status line as the app gave it (latin-1 bytes), e.g. `200 OK`.
    pub status: Option<Vec<u8>>,
    pub code: u16,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The app's Content-Length, if it sent one.
    pub content_length: Option<u64>,
    /// The app sent `Connection: close`: honoured by closing after this response.
    pub wants_close: bool,
    /// Body bytes exist, so in PEP 3333's terms the headers are sent and a later
    /// `start_response(..., exc_info)` must re-raise.
    pub body_started: bool,
    /// Bytes given to `write()`, waiting for the worker to take them (when there is no sink).
    pub written: Vec<u8>,
    /// Where `write()` sends bytes at once; `None` keeps them in `written`.
    pub sink: Option<Arc<dyn ResponseSink>>,
    /// The status and headers went out through the sink: the worker must not send them again.
    pub head_sent: bool,
}

impl StartResponse {
    pub fn new() -> StartResponse {
        StartResponse {
            status: None,
            code: 0,
            headers: Vec::new(),
            content_length: None,
            wants_close: false,
            body_started: false,
            written: Vec::new(),
            sink: None,
            head_sent: false,
        }
    }

    pub fn with_sink(sink: Option<Arc<dyn ResponseSink>>) -> StartResponse {
        StartResponse { sink, ..StartResponse::new() }
    }

    /// The head for the sink's first write (the headers stay for post_request).
    fn start_for_sink(&self) -> ResponseStart {
        ResponseStart {
            status: self.status.clone().unwrap_or_default(),
            code: self.code,
            headers: self.headers.clone(),
            content_length: self.content_length,
            wants_close: self.wants_close,
        }
    }
}

impl Default for StartResponse {
    fn default() -> Self {
        StartResponse::new()
    }
}

/// A native `str` as latin-1 bytes (PEP 3333 "bytes-as-str"); anything above U+00FF is an error.
fn latin1(what: &str, s: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let s = s.cast::<PyString>().map_err(|_| PyTypeError::new_err(format!("{what} must be a str, not {}", type_name(s))))?;
    let text = s.to_cow()?;
    if text.is_ascii() {
        return Ok(text.as_bytes().to_vec());
    }
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).map_err(|_| PyValueError::new_err(format!("{what} {text:?} is not latin-1"))))
        .collect()
}

/// A header value as latin-1 bytes. The error names the field only: values carry tokens and
/// cookies, and the message reaches the error log with the app's traceback.
fn latin1_value(name: &[u8], text: &str) -> PyResult<Vec<u8>> {
    text.chars().map(|c| u8::try_from(u32::from(c))).collect::<Result<_, _>>().map_err(|_| {
        PyValueError::new_err(format!("the value of response header {:?} is not latin-1", String::from_utf8_lossy(name)))
    })
}

/// A header the wire must not carry. Names only: the value may carry secrets and this message
/// can reach logs.
fn invalid_header(name: &[u8], e: ResponseError) -> PyErr {
    PyValueError::new_err(format!("invalid response header {:?}: {e}", String::from_utf8_lossy(name)))
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(v.len());
    let end = v.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(start, |i| i + 1);
    &v[start..end]
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn __call__(
        slf: &Bound<'_, Self>,
        status: &Bound<'_, PyAny>,
        headers: &Bound<'_, PyAny>,
        exc_info: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Writer> {
        let exc_info = exc_info.filter(|e| !e.is_none());
        {
            let this = slf.borrow();
            match exc_info {
                Some(info) if this.status.is_some() && this.body_started => {
                    let value = info.get_item(1)?;
                    return Err(PyErr::from_value(value));
                }
                Some(_) => {}
                None if this.status.is_some() => {
                    return Err(PyAssertionError::new_err(
                        "start_response() was already called for this response; pass exc_info to replace the headers",
                    ));
                }
                None => {}
            }
        }

        let status_bytes = latin1("status", status)?;
        let code = validate_status(&status_bytes)
            .map_err(|e| PyValueError::new_err(format!("invalid status {:?}: {e}", String::from_utf8_lossy(&status_bytes))))?;

        let mut out_headers = Vec::new();
        let mut content_length = None;
        let mut wants_close = false;
        // The usual list is read by index; any other iterable through iter().
        let items: Vec<Bound<'_, PyAny>> = match headers.cast::<PyList>() {
            Ok(list) => list.iter().collect(),
            Err(_) => headers.try_iter()?.collect::<PyResult<_>>()?,
        };
        for item in &items {
            let pair = item.cast::<PyTuple>().map_err(|_| {
                PyTypeError::new_err(format!("each header must be a (name, value) tuple, not {}", type_name(item)))
            })?;
            if pair.len() != 2 {
                return Err(PyTypeError::new_err(format!("each header must be a (name, value) tuple, got {} items", pair.len())));
            }
            let name = latin1("header name", &*pair.get_borrowed_item(0)?)?;
            let value_obj = pair.get_borrowed_item(1)?;
            let value_str = value_obj
                .cast::<PyString>()
                .map_err(|_| PyTypeError::new_err(format!("header value must be a str, not {}", type_name(&value_obj))))?;
            // An ASCII value (nearly all) is read in place; one copy, after trimming.
            let text = value_str.to_cow()?;
            let raw: std::borrow::Cow<'_, [u8]> = if text.is_ascii() {
                std::borrow::Cow::Borrowed(text.as_bytes())
            } else {
                std::borrow::Cow::Owned(latin1_value(&name, &text)?)
            };
            // Validated as given (a CR or LF anywhere is refused), stored trimmed.
            match validate_header(&name, &raw) {
                Ok(()) | Err(ResponseError::HopByHopHeader) => {}
                Err(e) => return Err(invalid_header(&name, e)),
            }
            let value = trim_ows(&raw).to_vec();
            if name.eq_ignore_ascii_case(b"content-length") {
                let parsed = std::str::from_utf8(&value).ok().and_then(|s| s.parse::<u64>().ok());
                match parsed {
                    Some(n) => content_length = Some(n),
                    None => {
                        return Err(PyValueError::new_err(format!(
                            "invalid Content-Length {:?}",
                            String::from_utf8_lossy(&value)
                        )));
                    }
                }
            } else if is_hop_by_hop(&name) {
                // PEP 3333: hop-by-hop fields belong to the server; drop them as Gunicorn does,
                // but honour an explicit wish to close the connection.
                if name.eq_ignore_ascii_case(b"connection") && value.eq_ignore_ascii_case(b"close") {
                    wants_close = true;
                }
                continue;
            }
            out_headers.push((name, value));
        }

        let mut this = slf.borrow_mut();
        this.status = Some(status_bytes);
        this.code = code;
        this.headers = out_headers;
        this.content_length = content_length;
        this.wants_close = wants_close;
        Ok(Writer { sr: slf.clone().unbind() })
    }
}

/// The `write()` callable returned by `start_response` (for legacy apps).
#[pyclass(module = "ferrocorn._core", name = "Write")]
pub struct Writer {
    sr: Py<StartResponse>,
}

#[pymethods]
impl Writer {
    fn __call__(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes =
            data.cast::<PyBytes>().map_err(|_| PyTypeError::new_err(format!("write() takes bytes, not {}", type_name(data))))?;
        let mut sr = self.sr.borrow_mut(py);
        if sr.status.is_none() {
            return Err(PyAssertionError::new_err("write() called before start_response()"));
        }
        let b = bytes.as_bytes();
        if b.is_empty() {
            return Ok(());
        }
        sr.body_started = true;
        let Some(sink) = sr.sink.clone() else {
            sr.written.extend_from_slice(b);
            return Ok(());
        };
        let start = if sr.head_sent { None } else { Some(sr.start_for_sink()) };
        sr.head_sent = true;
        // Not borrowed while the bytes go out: another thread of the app may look meanwhile.
        drop(sr);
        sink.body(py, start, b).map_err(|e| sink_error(e, "write()"))
    }
}

/// A sink's failure as the app sees it: an exception raised while the call waited (a greenlet
/// library's Timeout, a kill) as itself, a lost client as an OSError.
fn sink_error(e: std::io::Error, what: &str) -> PyErr {
    match e.downcast::<PyErr>() {
        Ok(raised) => raised,
        Err(e) => PyOSError::new_err(format!("{what} failed: the client connection is gone ({e})")),
    }
}

/// `environ["wsgi.early_hints"]`: sends `103 Early Hints` with the given headers, as Gunicorn 27
/// does; nothing for HTTP/1.0 clients or once the response has started.
#[pyclass(module = "ferrocorn._core", name = "EarlyHints")]
pub struct EarlyHints {
    sr: Py<StartResponse>,
}

impl EarlyHints {
    pub fn new(sr: Py<StartResponse>) -> EarlyHints {
        EarlyHints { sr }
    }
}

/// A header name or value for an interim response: str (latin-1) or bytes.
fn hint_text(what: &str, obj: &Bound<'_, PyAny>, name: &[u8]) -> PyResult<Vec<u8>> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    let s = obj.cast::<PyString>().map_err(|_| PyTypeError::new_err(format!("{what} must be a str, not {}", type_name(obj))))?;
    latin1_value(name, &s.to_cow()?)
}

#[pymethods]
impl EarlyHints {
    fn __call__(&self, py: Python<'_>, headers: &Bound<'_, PyAny>) -> PyResult<()> {
        let (sink, started) = {
            let sr = self.sr.borrow(py);
            (sr.sink.clone(), sr.head_sent || sr.body_started)
        };
        // Validated even when nothing is sent, so an app learns of a bad header on any client.
        let mut block = b"HTTP/1.1 103 Early Hints\r\n".to_vec();
        for item in headers.try_iter()? {
            let item = item?;
            let pair = item.cast::<PyTuple>().map_err(|_| {
                PyTypeError::new_err(format!("each header must be a (name, value) tuple, not {}", type_name(&item)))
            })?;
            if pair.len() != 2 {
                return Err(PyTypeError::new_err(format!("each header must be a (name, value) tuple, got {} items", pair.len())));
            }
            let name = hint_text("header name", &pair.get_item(0)?, b"")?;
            let value = hint_text("header value", &pair.get_item(1)?, &name)?;
            match validate_header(&name, &value) {
                Ok(()) | Err(ResponseError::HopByHopHeader) => {}
                Err(e) => return Err(invalid_header(&name, e)),
            }
            block.extend_from_slice(&name);
            block.extend_from_slice(b": ");
            block.extend_from_slice(trim_ows(&value));
            block.extend_from_slice(b"\r\n");
        }
        block.extend_from_slice(b"\r\n");
        match sink {
            Some(sink) if !started && sink.interim_allowed() => {
                sink.interim(py, &block).map_err(|e| sink_error(e, "early hints"))
            }
            _ => Ok(()),
        }
    }
}

//! What configs written for Gunicorn reach for beyond the settings (see
//! `python/ferrocorn/_compat`): the `gunicorn` compatibility module, the server name a config
//! may change through it, worker classes given as Python classes, and process titles set by
//! the `setproctitle` package.

use pyo3::prelude::*;
use std::sync::OnceLock;

use crate::config::{Config, Key};
use crate::worker::class::WorkerClass;

/// Called once by the command before the config is read: `import gunicorn` falls back to the
/// compatibility module, and process titles go through `setproctitle` when it is importable.
pub fn install(py: Python<'_>) {
    if let Err(e) = py.import("ferrocorn._compat").and_then(|m| m.call_method0("install")) {
        crate::log_warning!("cannot install the gunicorn compatibility module: {e}");
    }
    crate::sys::set_title_hook(python_title);
}

/// `(Server header, environ SERVER_SOFTWARE)`: `ferrocorn` and `ferrocorn/VERSION` unless a
/// config changed `gunicorn.SERVER` / `gunicorn.SERVER_SOFTWARE`. A Server value that cannot
/// be a header (a control character, a non-latin-1 character) is refused with a warning.
pub fn server_names(py: Python<'_>) -> (Vec<u8>, String) {
    let fallback = (b"ferrocorn".to_vec(), format!("ferrocorn/{}", env!("CARGO_PKG_VERSION")));
    let names = py.import("ferrocorn._compat").and_then(|m| m.call_method0("server_names")?.extract::<(String, String)>());
    let (server, software) = match names {
        Ok(n) => n,
        Err(e) => {
            crate::log_warning!("cannot read gunicorn.SERVER / SERVER_SOFTWARE: {e}");
            return fallback;
        }
    };
    match header_value(&server) {
        Some(h) => (h, software),
        None => {
            crate::log_warning!("gunicorn.SERVER {server:?} cannot be sent as a header; sending \"ferrocorn\"");
            (fallback.0, software)
        }
    }
}

/// `text` as the bytes of a header value, or `None` when it holds a character a field value
/// cannot carry (a control character other than tab, DEL, or anything beyond latin-1).
fn header_value(text: &str) -> Option<Vec<u8>> {
    text.chars().map(|c| u8::try_from(u32::from(c)).ok().filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))).collect()
}

/// The class `worker_class` names. Names and Gunicorn's class paths are read by
/// [`WorkerClass::parse`]; a class object, or a dotted path to a class of the user's, is
/// inspected in Python: a built-in class is accepted, a subclass of one refused with the
/// built-in class to use.
pub fn worker_class(cfg: &Config) -> Result<WorkerClass, String> {
    let threads = cfg.int(Key::Threads);
    let spec = match cfg.py(Key::WorkerClass) {
        Some(obj) => Python::attach(|py| builtin_name(py, obj.bind(py)))?,
        None => cfg.str(Key::WorkerClass).unwrap_or("sync").to_string(),
    };
    match WorkerClass::parse(&spec, threads) {
        Ok(class) => Ok(class),
        Err(e) if is_user_path(&spec) => {
            let name = Python::attach(|py| builtin_name(py, pyo3::types::PyString::new(py, &spec).as_any()))?;
            WorkerClass::parse(&name, threads).map_err(|_| e.to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// A dotted path outside `gunicorn.` / `ferrocorn.` (those the name table answers for).
fn is_user_path(spec: &str) -> bool {
    spec.contains('.') && !spec.starts_with("egg:") && !spec.starts_with("gunicorn.") && !spec.starts_with("ferrocorn.")
}

fn builtin_name(py: Python<'_>, spec: &Bound<'_, PyAny>) -> Result<String, String> {
    let result = py.import("ferrocorn.workers").and_then(|m| m.call_method1("builtin_class_name", (spec,))?.extract::<String>());
    result.map_err(|e| {
        if e.is_instance_of::<pyo3::exceptions::PyValueError>(py) {
            e.value(py).to_string()
        } else {
            format!("cannot check the worker class:\n{}", crate::wsgi::format_exception(py, &e))
        }
    })
}

/// `setproctitle.setproctitle`, when the package is importable (looked up once, in the master
/// before any fork, so every process of the tree uses the same mechanism).
static SETPROCTITLE: OnceLock<Option<Py<PyAny>>> = OnceLock::new();

/// Sets the title through the `setproctitle` package; false when it is not installed.
///
/// The package finds the argument area by walking back from `environ` and checking that it
/// still holds the original `argv[0]`; once ferrocorn has written a title there it finds
/// nothing, so hooks and apps calling it (Airflow marks ready workers that way) would have no
/// effect. Letting the package write our titles too keeps both working, as in Gunicorn.
fn python_title(title: &str) -> bool {
    Python::attach(|py| {
        let func = SETPROCTITLE
            .get_or_init(|| py.import("setproctitle").and_then(|m| m.getattr("setproctitle")).ok().map(Bound::unbind));
        match func {
            Some(f) => f.call1(py, (title,)).is_ok(),
            None => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::header_value;

    #[test]
    fn server_names_that_can_be_headers() {
        assert_eq!(header_value("ferrocorn"), Some(b"ferrocorn".to_vec()));
        assert_eq!(header_value(""), Some(Vec::new()));
        assert_eq!(header_value("caf\u{e9}\tx"), Some(b"caf\xe9\tx".to_vec()));
        for bad in ["a\r\nSet-Cookie: x=1", "a\nb", "nul\0", "del\u{7f}", "snow\u{2603}", "\u{100}"] {
            assert_eq!(header_value(bad), None, "{bad:?}");
        }
    }
}

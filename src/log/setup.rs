//! Turning the logging settings into the process's logging, once, in the master before any
//! fork (workers inherit all of it): error log file and level, `capture_output`, statsd, and
//! the choice between the fast Rust path and the Python `logging` path.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::{Level, init_error_log, python};
use crate::config::{Config, Key, SETTINGS, Value};
use crate::metrics;

/// Logger classes that mean "the standard logger": ferrocorn's own Rust path serves them.
/// (Gunicorn swaps in its statsd logger when `statsd_host` is set; statsd is sent from Rust.)
const BUILTIN_LOGGER_CLASSES: &[&str] =
    &["gunicorn.glogging.Logger", "simple", "egg:gunicorn#simple", "gunicorn.instrument.statsd.Statsd"];

/// What the workers' access log should be: `(target, format)`, or `None` for no access log.
pub type AccessPlan = Option<(String, String)>;

/// Sets up logging from `cfg`; the error is a message for the user (`Error: ...`).
pub fn configure(py: Python<'_>, cfg: &Config) -> Result<AccessPlan, String> {
    let level = Level::parse(cfg.str(Key::Loglevel).unwrap_or("info")).unwrap_or(Level::Info);
    let errorlog = cfg.str(Key::Errorlog).unwrap_or("-");
    super::set_json(cfg.str(Key::LogFormat) == Some("json"));
    init_error_log(level, errorlog).map_err(|e| format!("cannot open the error log {errorlog:?} (--error-logfile): {e}"))?;

    if cfg.bool(Key::CaptureOutput) {
        // Whatever Python buffered so far belongs before the switch.
        flush_python_stdio(py);
        super::capture_output().map_err(|e| format!("cannot capture output (--capture-output): {e}"))?;
    }

    if let Some(host) = cfg.str(Key::StatsdHost) {
        let prefix = cfg.str(Key::StatsdPrefix).unwrap_or("");
        let tags = cfg.str(Key::DogstatsdTags).unwrap_or("");
        let client = metrics::parse_target(host).and_then(|t| metrics::Statsd::connect(&t, prefix, tags));
        match client {
            Ok(c) => metrics::install_statsd(c),
            // Gunicorn carries on without metrics when the socket cannot be set up.
            Err(e) => crate::log_warning!("statsd disabled: {e}"),
        }
    }

    let custom_class = custom_logger_class(cfg);
    let logconfig =
        cfg.str(Key::Logconfig).is_some() || cfg.py(Key::LogconfigDict).is_some() || cfg.str(Key::LogconfigJson).is_some();
    let syslog = cfg.bool(Key::Syslog);
    let format = cfg.str(Key::AccessLogFormat).unwrap_or_default().to_string();
    let accesslog = cfg.str(Key::Accesslog);

    if !(custom_class || logconfig || syslog) {
        python::install_fast_handlers(py, level)
            .map_err(|e| format!("cannot set up the gunicorn.error logger: {}", crate::wsgi::format_exception(py, &e)))?;
        return Ok(accesslog.map(|t| (t.to_string(), format)));
    }

    let values = settings_dict(py, cfg).map_err(|e| e.to_string())?;
    python::install(py, values).map_err(|e| {
        // RuntimeError from a bad logging config carries the message; show just that.
        let is_runtime = e.is_instance_of::<pyo3::exceptions::PyRuntimeError>(py);
        if is_runtime {
            format!("cannot configure logging: {}", e.value(py))
        } else {
            format!("cannot configure logging:\n{}", crate::wsgi::format_exception(py, &e))
        }
    })?;
    // Gunicorn writes access records when any of these routes them somewhere; a custom logger
    // class decides for itself, so it gets every record.
    let access_on = custom_class || accesslog.is_some() || logconfig || (syslog && !cfg.bool(Key::DisableRedirectAccessToSyslog));
    Ok(access_on.then(|| (accesslog.unwrap_or("-").to_string(), format)))
}

fn custom_logger_class(cfg: &Config) -> bool {
    if cfg.py(Key::LoggerClass).is_some() {
        return true;
    }
    cfg.str(Key::LoggerClass).is_some_and(|c| !BUILTIN_LOGGER_CLASSES.contains(&c))
}

fn flush_python_stdio(py: Python<'_>) {
    if let Ok(sys) = py.import("sys") {
        for name in ["stdout", "stderr"] {
            if let Ok(stream) = sys.getattr(name) {
                let _ = stream.call_method0("flush");
            }
        }
    }
}

/// Every setting by name, as the Python objects a Gunicorn logger class reads from `cfg`.
fn settings_dict<'py>(py: Python<'py>, cfg: &Config) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for s in SETTINGS {
        let v: Bound<'py, PyAny> = match cfg.get(s.key) {
            Value::None => py.None().into_bound(py),
            Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
            Value::Int(i) => i.into_pyobject(py)?.into_any(),
            Value::Float(x) => x.into_pyobject(py)?.into_any(),
            Value::Str(t) => t.into_pyobject(py)?.into_any(),
            Value::List(l) => PyList::new(py, l)?.into_any(),
            Value::Pairs(p) => {
                let m = PyDict::new(py);
                for (k, v) in p {
                    m.set_item(k, v)?;
                }
                m.into_any()
            }
            Value::Py(obj, _) => obj.bind(py).clone(),
        };
        d.set_item(s.name, v)?;
    }
    // Gunicorn's `cfg.proc_name` falls back to `default_proc_name`.
    if cfg.str(Key::ProcName).is_none() {
        d.set_item("proc_name", cfg.str(Key::DefaultProcName).unwrap_or("gunicorn"))?;
    }
    Ok(d)
}

//! Server hooks from the config file, called at the moments Gunicorn calls them, with the
//! `server`, `worker`, `req` and `resp` objects real config files use.
//!
//! A hook that raises is logged with its traceback and the server carries on: a typo in a
//! logging hook must never take production down.

use crate::config::{Config, Key, SETTINGS, Value};
use crate::log_error;
use crate::wsgi::format_exception;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// The hooks, in Gunicorn's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    OnStarting,
    OnReload,
    WhenReady,
    PreFork,
    PostFork,
    PostWorkerInit,
    WorkerInt,
    WorkerAbort,
    PreExec,
    PreRequest,
    PostRequest,
    ChildExit,
    WorkerExit,
    NworkersChanged,
    OnExit,
}

const ALL: [(Hook, Key, &str); 15] = [
    (Hook::OnStarting, Key::OnStarting, "on_starting"),
    (Hook::OnReload, Key::OnReload, "on_reload"),
    (Hook::WhenReady, Key::WhenReady, "when_ready"),
    (Hook::PreFork, Key::PreFork, "pre_fork"),
    (Hook::PostFork, Key::PostFork, "post_fork"),
    (Hook::PostWorkerInit, Key::PostWorkerInit, "post_worker_init"),
    (Hook::WorkerInt, Key::WorkerInt, "worker_int"),
    (Hook::WorkerAbort, Key::WorkerAbort, "worker_abort"),
    (Hook::PreExec, Key::PreExec, "pre_exec"),
    (Hook::PreRequest, Key::PreRequest, "pre_request"),
    (Hook::PostRequest, Key::PostRequest, "post_request"),
    (Hook::ChildExit, Key::ChildExit, "child_exit"),
    (Hook::WorkerExit, Key::WorkerExit, "worker_exit"),
    (Hook::NworkersChanged, Key::NworkersChanged, "nworkers_changed"),
    (Hook::OnExit, Key::OnExit, "on_exit"),
];

/// The configured hook callables plus the objects they receive.
pub struct Hooks {
    funcs: Vec<Option<Py<PyAny>>>,
    module: Py<PyModule>,
    /// The `server` object (Gunicorn's arbiter as hooks see it).
    pub server: Py<PyAny>,
    pub cfg: Py<PyAny>,
}

/// A setting's value as the Python object a config file would have written.
pub fn value_to_py(py: Python<'_>, v: &Value) -> PyResult<Py<PyAny>> {
    Ok(match v {
        Value::None => py.None(),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any().unbind(),
        Value::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Value::Float(f) => f.into_pyobject(py)?.into_any().unbind(),
        Value::Str(s) => s.into_pyobject(py)?.into_any().unbind(),
        Value::List(l) => PyList::new(py, l)?.into_any().unbind(),
        Value::Pairs(p) => {
            let d = PyDict::new(py);
            for (k, v) in p {
                d.set_item(k, v)?;
            }
            d.into_any().unbind()
        }
        Value::Py(obj, _) => obj.clone_ref(py),
    })
}

impl Hooks {
    /// Builds the `cfg` view and the `server` object from the effective settings. After HUP,
    /// pass the previous `server` so hooks keep seeing the same object with the new `cfg`.
    pub fn new(py: Python<'_>, cfg: &Config, proc_name: &str, app_uri: &str, server: Option<&Py<PyAny>>) -> PyResult<Hooks> {
        let module = py.import("ferrocorn._hooks")?;
        let values = PyDict::new(py);
        for s in SETTINGS {
            values.set_item(s.name, value_to_py(py, cfg.get(s.key))?)?;
        }
        let cfg_obj = module.getattr("Config")?.call1((values,))?;
        let server = match server {
            Some(s) => {
                let s = s.bind(py).clone();
                s.setattr("cfg", cfg_obj.clone())?;
                s
            }
            None => module.getattr("Server")?.call1((cfg_obj.clone(), proc_name, app_uri))?,
        };
        let funcs = ALL.iter().map(|(_, key, _)| cfg.py(*key).map(|f| f.clone_ref(py))).collect();
        Ok(Hooks { funcs, module: module.unbind(), server: server.unbind(), cfg: cfg_obj.unbind() })
    }

    fn index(hook: Hook) -> usize {
        ALL.iter().position(|(h, _, _)| *h == hook).unwrap_or(0)
    }

    pub fn has(&self, hook: Hook) -> bool {
        self.funcs[Self::index(hook)].is_some()
    }

    /// Calls `hook` with `args` if it is configured; a raised exception is logged, not returned.
    pub fn call<'py, A>(&self, py: Python<'py>, hook: Hook, args: A)
    where
        A: pyo3::call::PyCallArgs<'py>,
    {
        let i = Self::index(hook);
        let Some(f) = &self.funcs[i] else { return };
        if let Err(e) = f.bind(py).call1(args) {
            log_error!("Exception in {} hook\n{}", ALL[i].2, format_exception(py, &e));
        }
    }

    /// Like [`Hooks::call`], but reports whether the hook succeeded (true when not configured):
    /// for the hooks whose failure Gunicorn treats as fatal to a worker or a request.
    pub fn call_checked<'py, A>(&self, py: Python<'py>, hook: Hook, args: A) -> bool
    where
        A: pyo3::call::PyCallArgs<'py>,
    {
        let i = Self::index(hook);
        let Some(f) = &self.funcs[i] else { return true };
        match f.bind(py).call1(args) {
            Ok(_) => true,
            Err(e) => {
                log_error!("Exception in {} hook\n{}", ALL[i].2, format_exception(py, &e));
                false
            }
        }
    }

    /// Sets an attribute on the `server` object (pid, num_workers, ...).
    pub fn set_server<'py, V: IntoPyObject<'py>>(&self, py: Python<'py>, name: &str, value: V) {
        let _ = self.server.bind(py).setattr(name, value);
    }

    /// A new `worker` object (created in the master before fork, as Gunicorn does).
    pub fn new_worker(&self, py: Python<'_>, age: u64, ppid: i32) -> PyResult<Py<PyAny>> {
        let module = self.module.bind(py);
        let log = module.getattr("Log")?.call0()?;
        Ok(module.getattr("Worker")?.call1((age, ppid, self.cfg.bind(py), log))?.unbind())
    }

    /// Builds a `req` object for pre_request/post_request.
    pub fn request<'py>(
        &self,
        py: Python<'py>,
        head: &ferrocorn_http::RequestHead,
        scheme: &str,
        peer: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let module = self.module.bind(py);
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let headers = PyList::empty(py);
        for h in &head.headers {
            let name = lossy(&h.name).to_ascii_uppercase();
            headers.append((name, lossy(&h.value)))?;
        }
        let version = match head.version {
            ferrocorn_http::Version::Http10 => (1, 0),
            ferrocorn_http::Version::Http11 => (1, 1),
        };
        module.getattr("Request")?.call1((
            &*head.method,
            lossy(&head.target),
            lossy(&head.path),
            lossy(&head.query),
            lossy(&head.fragment),
            version,
            headers,
            scheme,
            peer,
        ))
    }

    /// Builds a `resp` object for post_request.
    pub fn response<'py>(
        &self,
        py: Python<'py>,
        status: &[u8],
        headers: &[(Vec<u8>, Vec<u8>)],
        response_length: Option<u64>,
        sent: u64,
        version: (u8, u8),
    ) -> PyResult<Bound<'py, PyAny>> {
        let module = self.module.bind(py);
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let list = PyList::empty(py);
        for (n, v) in headers {
            list.append((lossy(n), lossy(v)))?;
        }
        module.getattr("Response")?.call1((lossy(status), list, response_length, sent, version))
    }
}

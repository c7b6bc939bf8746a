//! Running the config file: a Python file (or `python:module`) executed once as a module, whose
//! module-level names that match settings become the config-file layer.

use pyo3::exceptions::PySyntaxError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::Layer;
use super::error::ConfigError;
use super::pyvalue;
use super::table::by_name;

/// The module name Gunicorn gives a config file; some files check `__name__` for it.
const MODULE_NAME: &str = "__config__";

pub fn load(py: Python<'_>, location: &str) -> Result<Layer, ConfigError> {
    // Gunicorn puts the working directory on `sys.path` before reading the file, so the file
    // (or a `python:` module) can import its neighbours.
    add_cwd_to_path(py);
    let namespace = match location.strip_prefix("python:") {
        Some(module) => import_module(py, module)?,
        None => {
            let path = location.strip_prefix("file:").unwrap_or(location);
            if !std::path::Path::new(path).exists() {
                return Err(ConfigError::ConfigNotFound(path.to_owned()));
            }
            exec_file(py, path)?
        }
    };
    let mut layer = Layer::new();
    for (name, value) in namespace.iter() {
        let Ok(name) = name.extract::<String>() else { continue };
        // Unknown names are helpers, imports and the like: Gunicorn ignores them.
        if let Some(s) = by_name(&name) {
            layer.set(s.key, pyvalue::convert(s, &value)?);
        }
    }
    Ok(layer)
}

fn add_cwd_to_path(py: Python<'_>) {
    let Ok(cwd) = std::env::current_dir() else { return };
    let cwd = cwd.to_string_lossy().into_owned();
    let Ok(path) = py.import("sys").and_then(|sys| sys.getattr("path")) else { return };
    let Ok(path) = path.cast_into::<PyList>() else { return };
    if !path.contains(&cwd).unwrap_or(true) {
        let _ = path.insert(0, cwd);
    }
}

fn import_module<'py>(py: Python<'py>, module: &str) -> Result<Bound<'py, PyDict>, ConfigError> {
    let m = py.import(module).map_err(|e| python_failure(py, e, module))?;
    Ok(m.dict())
}

fn exec_file<'py>(py: Python<'py>, path: &str) -> Result<Bound<'py, PyDict>, ConfigError> {
    let run = || -> PyResult<Bound<'py, PyDict>> {
        let util = py.import("importlib.util")?;
        let is_python = path.ends_with(".py") || path.ends_with(".pyc");
        let spec = if is_python {
            util.call_method1("spec_from_file_location", (MODULE_NAME, path))?
        } else {
            // Gunicorn reads any file as Python source but warns that the name looks wrong.
            eprintln!("!!!\n!!! WARNING: configuration file should have a valid Python extension.\n!!!");
            let loader = py.import("importlib.machinery")?.getattr("SourceFileLoader")?.call1((MODULE_NAME, path))?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("loader", loader)?;
            util.getattr("spec_from_file_location")?.call((MODULE_NAME, path), Some(&kwargs))?
        };
        let module = util.call_method1("module_from_spec", (&spec,))?;
        py.import("sys")?.getattr("modules")?.set_item(MODULE_NAME, &module)?;
        spec.getattr("loader")?.call_method1("exec_module", (&module,))?;
        Ok(module.getattr("__dict__")?.cast_into::<PyDict>()?)
    };
    run().map_err(|e| python_failure(py, e, path))
}

/// A syntax error becomes file, line and message; anything else keeps its full traceback.
fn python_failure(py: Python<'_>, err: PyErr, file: &str) -> ConfigError {
    if err.is_instance_of::<PySyntaxError>(py) {
        let v = err.value(py);
        let attr = |name: &str| v.getattr(name).ok().filter(|a| !a.is_none());
        return ConfigError::ConfigSyntax {
            file: attr("filename").and_then(|f| f.extract().ok()).unwrap_or_else(|| file.to_owned()),
            line: attr("lineno").and_then(|l| l.extract().ok()),
            message: attr("msg").and_then(|m| m.extract().ok()).unwrap_or_else(|| err.to_string()),
        };
    }
    let traceback = py
        .import("traceback")
        .and_then(|tb| tb.call_method1("format_exception", (err.get_type(py), err.value(py), err.traceback(py))))
        .and_then(|lines| lines.extract::<Vec<String>>())
        .map(|lines| lines.concat())
        .unwrap_or_else(|_| err.to_string());
    ConfigError::ConfigRaised { file: file.to_owned(), traceback }
}

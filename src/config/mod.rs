//! Settings: the one table (names, flags, defaults, validators, docs), layered values merged in
//! Gunicorn's order (defaults < config file < GUNICORN_CMD_ARGS < command line), then frozen.
//!
//! PLACEHOLDER API: the real table replaces this module; callers use only what is declared here.

use pyo3::prelude::*;
use std::fmt;

/// One value of a setting, after validation.
#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<String>),
    /// Dict-like settings (`secure_scheme_headers`, `raw_env` pairs...), in insertion order.
    Pairs(Vec<(String, String)>),
    /// A Python callable (server hooks) or object (`logconfig_dict`).
    Py(std::sync::Arc<Py<PyAny>>),
}

/// Every setting, by name. The discriminant indexes the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    Bind,
    Backlog,
    Workers,
    WorkerClass,
    Threads,
    WorkerConnections,
    MaxRequests,
    MaxRequestsJitter,
    Timeout,
    GracefulTimeout,
    Keepalive,
    LimitRequestLine,
    LimitRequestFields,
    LimitRequestFieldSize,
    Preload,
    Chdir,
    Pythonpath,
    RawEnv,
    ReusePort,
    Loglevel,
    Errorlog,
    Accesslog,
    AccessLogFormat,
    ProcName,
    ForwardedAllowIps,
    SecureSchemeHeaders,
    ForwarderHeaders,
    HeaderMap,
    StripHeaderSpaces,
    PermitObsoleteFolding,
    PermitUnconventionalHttpMethod,
    CasefoldHttpMethod,
    ProxyProtocol,
    ProxyAllowIps,
    /// The app URI (positional argument, or `wsgi_app` in the config file).
    WsgiApp,
}

/// The merged, frozen settings.
#[derive(Debug, Clone)]
pub struct Config {}

impl Config {
    pub fn get(&self, key: Key) -> &Value {
        let _ = key;
        &Value::None
    }
    /// Integer settings. Panics only on a table bug (key of another type), never on user input.
    pub fn int(&self, key: Key) -> i64 {
        let _ = key;
        0
    }
    pub fn float(&self, key: Key) -> f64 {
        let _ = key;
        0.0
    }
    pub fn bool(&self, key: Key) -> bool {
        let _ = key;
        false
    }
    pub fn str(&self, key: Key) -> Option<&str> {
        let _ = key;
        None
    }
    pub fn list(&self, key: Key) -> &[String] {
        let _ = key;
        &[]
    }
    pub fn pairs(&self, key: Key) -> &[(String, String)] {
        let _ = key;
        &[]
    }
    /// A hook or Python object setting; `None` when unset.
    pub fn py(&self, key: Key) -> Option<&Py<PyAny>> {
        let _ = key;
        None
    }
    /// Settings given a non-default value whose feature has not landed yet (refused at start).
    pub fn unsupported_in_use(&self) -> Vec<&'static str> {
        Vec::new()
    }
}

/// What the command line asked for.
pub enum Command {
    /// Serve with this config.
    Run(Config),
    /// `--check-config`: validate, import the app, exit.
    Check(Config),
    /// Help, version or `--print-config` already printed: exit with this code.
    Exit(i32),
}

/// A config problem the user must fix; `Display` is the one line printed before exiting 1.
#[derive(Debug)]
pub enum ConfigError {
    Placeholder(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Placeholder(s) => f.write_str(s),
        }
    }
}

/// Parses argv (argv[0] included), runs the config file, reads the environment, and merges.
pub fn load(py: Python<'_>, argv: &[String]) -> Result<Command, ConfigError> {
    let _ = (py, argv);
    Err(ConfigError::Placeholder("config not written yet".into()))
}

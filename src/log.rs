//! Error log (`[time] [pid] [LEVEL] message`, like Gunicorn) and access log (Gunicorn's atoms).
//!
//! PLACEHOLDER API.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

/// Sets up the process-wide error log. `target` is `-` for stderr or a file path.
pub fn init_error_log(level: Level, target: &str) -> std::io::Result<()> {
    let _ = (level, target);
    Ok(())
}

/// Writes one error-log line if `level` is enabled.
pub fn log(level: Level, args: fmt::Arguments<'_>) {
    eprintln!("[{level:?}] {args}");
}

/// Writes text as given to the error log target (`wsgi.errors`, captured output).
pub fn write_raw(bytes: &[u8]) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(bytes);
}

/// Reopens the log files (SIGUSR1).
pub fn reopen() {}

#[macro_export]
macro_rules! log_info { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Info, format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_debug { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Debug, format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_warning { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Warning, format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_error { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Error, format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_critical { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Critical, format_args!($($t)*)) } }

/// The facts about one finished request that access-log atoms draw from.
pub struct AccessRecord<'a> {
    pub remote_addr: &'a str,
    pub method: &'a str,
    /// Raw request target (`%(U)s` is its path, `%(q)s` its query).
    pub path: &'a [u8],
    pub query: &'a [u8],
    /// `HTTP/1.1`.
    pub protocol: &'a str,
    /// `200 OK`.
    pub status: &'a [u8],
    pub response_length: u64,
    pub request_headers: &'a [(&'a [u8], &'a [u8])],
    pub response_headers: &'a [(&'a [u8], &'a [u8])],
    pub request_time: std::time::Duration,
    /// When the request started (for `%(t)s`).
    pub start: std::time::SystemTime,
    pub pid: u32,
}

/// A compiled `access_log_format` writing to a file or stdout.
pub struct AccessLog {}

impl AccessLog {
    /// `target` is `-` for stdout or a path; `format` uses Gunicorn's `%(atom)s` syntax.
    pub fn open(target: &str, format: &str) -> std::io::Result<AccessLog> {
        let _ = (target, format);
        Ok(AccessLog {})
    }
    pub fn write(&self, rec: &AccessRecord<'_>) {
        let _ = rec;
    }
    pub fn reopen(&self) {}
}

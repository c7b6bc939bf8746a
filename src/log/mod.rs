//! Error log (`[time] [pid] [LEVEL] message`, like Gunicorn) and access log (Gunicorn's atoms).
//!
//! Both logs write each line with a single `write(2)` on a raw descriptor, with no lock on the
//! write path: a line is never interleaved with another (the file is opened `O_APPEND`, and the
//! master and its forked workers share that descriptor), a fork can never inherit a held lock,
//! and a failing write is ignored. Reopening (SIGUSR1, logrotate) opens the path again and
//! `dup2`s the new file onto the old descriptor number, so writers racing with it land in either
//! the old or the new file and never in a closed or reused descriptor.

use std::cell::RefCell;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::time::SystemTime;

mod access;
mod json;
pub mod python;
mod setup;
mod time;

use crate::metrics::{self, LogCounter};
pub use access::{AccessLog, AccessRecord, Captured, DEFAULT_ACCESS_LOG_FORMAT, EnvironCapture};
pub use json::{is_json, set_json};
pub use setup::configure;
use time::{LocalTime, local_time, push_error_time, unix_secs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warning,
    Error,
    Critical,
}

impl Level {
    /// The names Gunicorn's `--log-level` accepts, in any case.
    pub fn parse(name: &str) -> Option<Level> {
        let levels = [
            ("debug", Level::Debug),
            ("info", Level::Info),
            ("warning", Level::Warning),
            ("error", Level::Error),
            ("critical", Level::Critical),
        ];
        levels.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.trim())).map(|(_, l)| *l)
    }

    /// As printed in the line (Python's level names).
    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }

    fn from_u8(v: u8) -> Level {
        match v {
            0 => Level::Debug,
            1 => Level::Info,
            2 => Level::Warning,
            3 => Level::Error,
            _ => Level::Critical,
        }
    }
}

#[derive(Debug)]
pub enum LogError {
    /// The log file could not be opened for appending.
    Open { path: PathBuf, source: io::Error },
    /// `access_log_format` is not a valid `%(atom)s` format.
    Format { format: String, at: usize, why: &'static str },
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogError::Open { path, source } => {
                write!(f, "can't open log file {}: {source}", path.display())
            }
            LogError::Format { format, at, why } => {
                write!(f, "invalid access log format {format:?} at byte {at}: {why}")
            }
        }
    }
}

impl std::error::Error for LogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LogError::Open { source, .. } => Some(source),
            LogError::Format { .. } => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw output

/// Writes all of `bytes` to `fd`, normally in one syscall; errors are dropped because a log
/// that cannot be written has nowhere to report the failure.
fn write_fd(fd: RawFd, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid readable slice for its length; `fd` is a plain integer and
        // a closed or bad descriptor only makes write(2) fail with EBADF.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if n == 0 {
            return;
        }
        // write(2) never reports more than it was given; `get` keeps that a non-panic anyway.
        bytes = bytes.get(n as usize..).unwrap_or_default();
    }
}

fn open_append(path: &Path) -> Result<File, LogError> {
    // std opens with O_CLOEXEC; the mode is 0666 minus the umask, like Python's open().
    OpenOptions::new().append(true).create(true).open(path).map_err(|source| LogError::Open { path: path.to_path_buf(), source })
}

/// Puts `file` in place of descriptor `target`, keeping `target` close-on-exec.
fn replace_fd(file: File, target: RawFd) -> Result<(), io::Error> {
    let new = file.as_raw_fd();
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    // SAFETY: both are open descriptors owned by this module; dup3 atomically closes `target`
    // and makes it refer to `new`'s file, so no other code can observe it closed.
    let rc = unsafe { libc::dup3(new, target, libc::O_CLOEXEC) };
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    // SAFETY: as above; dup2 clears FD_CLOEXEC, which is set again right after.
    let rc = unsafe {
        let rc = libc::dup2(new, target);
        if rc >= 0 {
            libc::fcntl(target, libc::F_SETFD, libc::FD_CLOEXEC);
        }
        rc
    };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

thread_local! {
    /// One line buffer per thread, reused so that logging does not allocate once warmed up.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with an empty per-thread buffer. Falls back to a fresh buffer when the thread's own
/// is in use (a `Display` impl that logs) or already destroyed (thread exit), so it never panics.
fn with_line_buf(f: impl FnOnce(&mut Vec<u8>)) {
    let mut f = Some(f);
    let _ = LINE.try_with(|cell| {
        if let (Ok(mut buf), Some(f)) = (cell.try_borrow_mut(), f.take()) {
            buf.clear();
            f(&mut buf);
            // Do not keep a huge buffer alive after one long traceback.
            if buf.capacity() > 64 * 1024 {
                *buf = Vec::new();
            }
        }
    });
    if let Some(f) = f {
        f(&mut Vec::new());
    }
}

// ---------------------------------------------------------------------------------------------
// Error log

/// Where error lines go: fd 2 until `init_error_log` names a file.
static ERR_FD: AtomicI32 = AtomicI32::new(2);
static ERR_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
/// The descriptor this module opened for the error log (-1 if none), kept open even while
/// stderr is the target, so `reopen`/`init_error_log` can `dup2` over it.
static ERR_FD_OWNED: AtomicI32 = AtomicI32::new(-1);
/// The file path, for `reopen`. Only `init_error_log` and `reopen` take this lock.
static ERR_PATH: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Sets up the process-wide error log. `target` is `-` for stderr or a file path, opened for
/// appending and created if missing.
pub fn init_error_log(level: Level, target: &str) -> Result<(), LogError> {
    let mut path_slot = ERR_PATH.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if target == "-" {
        // A file descriptor opened earlier stays open (but unused): closing it could let a
        // racing writer hit a reused descriptor number.
        ERR_FD.store(2, Ordering::Release);
        *path_slot = None;
    } else {
        let path = PathBuf::from(target);
        let file = open_append(&path)?;
        let owned = ERR_FD_OWNED.load(Ordering::Acquire);
        if owned >= 0 {
            let fd = owned;
            replace_fd(file, fd).map_err(|source| LogError::Open { path: path.clone(), source })?;
            ERR_FD.store(fd, Ordering::Release);
        } else {
            let fd = file.into_raw_fd();
            ERR_FD_OWNED.store(fd, Ordering::Release);
            ERR_FD.store(fd, Ordering::Release);
        }
        *path_slot = Some(path);
    }
    ERR_LEVEL.store(level as u8, Ordering::Release);
    Ok(())
}

/// Whether a line at `level` would be written (to skip building expensive messages).
pub fn enabled(level: Level) -> bool {
    level >= Level::from_u8(ERR_LEVEL.load(Ordering::Relaxed))
}

/// Writes one error-log line if `level` is enabled.
pub fn log(level: Level, args: fmt::Arguments<'_>) {
    // Gunicorn's statsd logger counts these whatever the log level lets through.
    match level {
        Level::Critical => metrics::count_log(LogCounter::Critical),
        Level::Error => metrics::count_log(LogCounter::Error),
        Level::Warning => metrics::count_log(LogCounter::Warning),
        Level::Info | Level::Debug => {}
    }
    write_line(level, args);
}

/// An error with a traceback (Gunicorn's `log.exception`): an ERROR line, counted as
/// `gunicorn.log.exception` rather than `gunicorn.log.error`, as Gunicorn counts it.
pub fn exception(args: fmt::Arguments<'_>) {
    metrics::count_log(LogCounter::Exception);
    write_line(Level::Error, args);
}

fn write_line(level: Level, args: fmt::Arguments<'_>) {
    if python::active() {
        // The Python logger applies its own level (a logging config may differ from
        // `loglevel`), so it sees every message.
        python::emit(level, &args.to_string());
        return;
    }
    if !enabled(level) {
        return;
    }
    let now = unix_secs(SystemTime::now());
    // Read per line: it changes after fork, and getpid is far cheaper than the write itself.
    let pid = std::process::id();
    with_line_buf(|buf| {
        if json::is_json() {
            format_error_json(buf, level, args, &local_time(now), pid);
        } else {
            format_error_line(buf, level, args, &local_time(now), pid);
        }
        write_fd(ERR_FD.load(Ordering::Acquire), buf);
    });
}

fn format_error_line(buf: &mut Vec<u8>, level: Level, args: fmt::Arguments<'_>, lt: &LocalTime, pid: u32) {
    push_error_time(buf, lt);
    let _ = write!(buf, " [{pid}] [{}] ", level.name());
    // Multi-line messages (tracebacks) are written as given, as Python's logging does.
    let _ = buf.write_fmt(args);
    buf.push(b'\n');
}

/// `{"time": ..., "pid": ..., "level": ..., "message": ...}`: a traceback stays on one line.
fn format_error_json(buf: &mut Vec<u8>, level: Level, args: fmt::Arguments<'_>, lt: &LocalTime, pid: u32) {
    let mut time = Vec::with_capacity(32);
    push_error_time(&mut time, lt);
    let time = time.strip_prefix(b"[").and_then(|t| t.strip_suffix(b"]")).unwrap_or(&time);
    buf.push(b'{');
    json::push_field(buf, true, b"time", time);
    let _ = write!(buf, ",\"pid\":{pid}");
    json::push_field(buf, false, b"level", level.name().as_bytes());
    let message = args.to_string();
    json::push_field(buf, false, b"message", message.as_bytes());
    buf.extend_from_slice(b"}\n");
}

/// Writes text exactly as given to the error log (for `wsgi.errors`): no prefix, no newline.
/// In JSON mode each write becomes one object (`"source": "wsgi.errors"`), so the app's text
/// cannot break the line format.
pub fn write_raw(bytes: &[u8]) {
    if json::is_json() {
        let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        if text.is_empty() {
            return;
        }
        let now = unix_secs(SystemTime::now());
        let pid = std::process::id();
        with_line_buf(|buf| {
            let mut time = Vec::with_capacity(32);
            push_error_time(&mut time, &local_time(now));
            let time = time.strip_prefix(b"[").and_then(|t| t.strip_suffix(b"]")).unwrap_or(&time);
            buf.push(b'{');
            json::push_field(buf, true, b"time", time);
            let _ = write!(buf, ",\"pid\":{pid}");
            json::push_field(buf, false, b"level", b"ERROR");
            json::push_field(buf, false, b"source", b"wsgi.errors");
            json::push_field(buf, false, b"message", text);
            buf.extend_from_slice(b"}\n");
            write_fd(ERR_FD.load(Ordering::Acquire), buf);
        });
        return;
    }
    write_fd(ERR_FD.load(Ordering::Acquire), bytes);
}

/// Reopens the error log file (SIGUSR1, logrotate); a no-op when logging to stderr. With
/// `capture_output`, fds 1 and 2 follow the new file. On the Python path the logger's
/// `reopen_files()` runs too. Access logs are reopened with `AccessLog::reopen`.
pub fn reopen() -> Result<(), LogError> {
    python::reopen_files();
    let path_slot = ERR_PATH.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(path) = path_slot.as_ref() else {
        return Ok(());
    };
    let file = open_append(path)?;
    let fd = ERR_FD_OWNED.load(Ordering::Acquire);
    replace_fd(file, fd).map_err(|source| LogError::Open { path: path.clone(), source })?;
    if CAPTURE_OUTPUT.load(Ordering::Acquire) {
        capture_stdio(fd).map_err(|source| LogError::Open { path: path.clone(), source })?;
    }
    Ok(())
}

/// Whether fds 1 and 2 were pointed at the error log file (`capture_output`).
static CAPTURE_OUTPUT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `capture_output`: points fds 1 and 2 at the error log file, so whatever the app (or a C
/// extension) prints lands there. A no-op when the error log is stderr, as in Gunicorn.
pub fn capture_output() -> Result<(), LogError> {
    let path_slot = ERR_PATH.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(path) = path_slot.as_ref() else {
        return Ok(());
    };
    capture_stdio(ERR_FD_OWNED.load(Ordering::Acquire)).map_err(|source| LogError::Open { path: path.clone(), source })?;
    CAPTURE_OUTPUT.store(true, Ordering::Release);
    Ok(())
}

fn capture_stdio(fd: RawFd) -> io::Result<()> {
    for target in [1, 2] {
        crate::sys::dup2(fd, target)?;
    }
    Ok(())
}

#[macro_export]
macro_rules! log_info { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Info, format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_debug { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Debug, format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_warning { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Warning, format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_error { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Error, format_args!($($t)*)) } }
/// An error with a traceback in the message (counted as an exception by statsd).
#[macro_export]
macro_rules! log_exception { ($($t:tt)*) => { $crate::log::exception(format_args!($($t)*)) } }
#[macro_export]
macro_rules! log_critical { ($($t:tt)*) => { $crate::log::log($crate::log::Level::Critical, format_args!($($t)*)) } }

#[cfg(test)]
mod tests {
    use super::time::push_clf_time;
    use super::*;

    /// Checks `line` against a shape where `9` is one digit and `~` is `+` or `-`; everything
    /// else is literal. (The project has no regex crate, and this is all the test needs.)
    fn shaped(line: &str, shape: &str) -> bool {
        line.len() == shape.len()
            && line.bytes().zip(shape.bytes()).all(|(l, s)| match s {
                b'9' => l.is_ascii_digit(),
                b'~' => l == b'+' || l == b'-',
                _ => l == s,
            })
    }

    #[test]
    fn error_line_format() {
        let mut buf = Vec::new();
        let lt = local_time(unix_secs(SystemTime::now()));
        format_error_line(&mut buf, Level::Info, format_args!("Listening at: {}", "x"), &lt, 12345);
        let line = String::from_utf8(buf).unwrap();
        assert!(shaped(&line, "[9999-99-99 99:99:99 ~9999] [12345] [INFO] Listening at: x\n"), "{line:?}");
        let fixed = LocalTime { year: 2026, month: 11, day: 27, hour: 6, min: 28, sec: 30, offset_secs: -(5 * 3600 + 30 * 60) };
        let mut buf = Vec::new();
        format_error_line(&mut buf, Level::Critical, format_args!("a\nb"), &fixed, 7);
        assert_eq!(buf, b"[2026-11-27 06:28:30 -0530] [7] [CRITICAL] a\nb\n");
        let mut buf = Vec::new();
        push_clf_time(&mut buf, &LocalTime { offset_secs: 3600, ..fixed });
        assert_eq!(buf, b"[27/Nov/2026:06:28:30 +0100]");
    }

    #[test]
    fn error_line_json() {
        let fixed = LocalTime { year: 2026, month: 11, day: 27, hour: 6, min: 28, sec: 30, offset_secs: 0 };
        let mut buf = Vec::new();
        format_error_json(&mut buf, Level::Error, format_args!("Traceback:\n  \"x\"\\ {}", "y"), &fixed, 7);
        assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        let v: serde_json::Value = serde_json::from_slice(&buf).expect("valid JSON");
        assert_eq!(v["time"], "2026-11-27 06:28:30 +0000");
        assert_eq!(v["pid"], 7);
        assert_eq!(v["level"], "ERROR");
        assert_eq!(v["message"], "Traceback:\n  \"x\"\\ y");
    }

    #[test]
    fn levels() {
        assert_eq!(Level::parse("WARNING"), Some(Level::Warning));
        assert_eq!(Level::parse(" debug "), Some(Level::Debug));
        assert_eq!(Level::parse("verbose"), None);
        assert!(Level::Error > Level::Warning);
    }

    #[test]
    fn error_log_file_reopen_and_level() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("error.log");
        init_error_log(Level::Warning, path.to_str().unwrap()).unwrap();
        crate::log_info!("hidden-line");
        crate::log_warning!("first-line");
        let rotated = dir.path().join("error.log.1");
        std::fs::rename(&path, &rotated).unwrap();
        reopen().unwrap();
        crate::log_error!("second-line");
        // Other tests in this binary may log concurrently; look only for our own lines.
        let old = std::fs::read_to_string(&rotated).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        init_error_log(Level::Info, "-").unwrap();
        assert!(old.contains("[WARNING] first-line\n"), "{old}");
        assert!(!old.contains("hidden-line") && !new.contains("hidden-line"));
        assert!(new.contains("[ERROR] second-line\n") && !old.contains("second-line"), "{new}");
        let err = init_error_log(Level::Info, "/nonexistent-dir/x.log").expect_err("bad path");
        assert!(err.to_string().contains("/nonexistent-dir/x.log"), "{err}");
    }
}

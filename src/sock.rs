//! Listening sockets: bind addresses (`HOST`, `HOST:PORT`, `[v6]:PORT`, `unix:PATH`, `fd://FD`),
//! creating and inheriting listeners, and removing unix socket files at shutdown.
//!
//! PLACEHOLDER API.

use std::fmt;
use std::os::fd::RawFd;
use std::path::PathBuf;

/// A parsed `--bind` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindAddr {
    /// Host (name or literal, brackets removed) and port.
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
    Fd(RawFd),
}

#[derive(Debug)]
pub enum BindError {
    Syntax { value: String, why: &'static str },
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindError::Syntax { value, why } => write!(f, "invalid bind address {value:?}: {why}"),
        }
    }
}

pub fn parse_bind(value: &str) -> Result<BindAddr, BindError> {
    Err(BindError::Syntax { value: value.to_string(), why: "not written yet" })
}

/// An open listening socket owned by the master and inherited by workers across fork.
#[derive(Debug)]
pub enum Listener {
    Tcp(std::net::TcpListener),
    Unix { listener: std::os::unix::net::UnixListener, path: PathBuf },
}

impl Listener {
    /// As Gunicorn prints it: `http://127.0.0.1:8000` or `unix:/run/app.sock`.
    pub fn describe(&self) -> String {
        String::new()
    }
}

/// Options for creating listeners.
#[derive(Debug, Clone)]
pub struct BindOptions {
    pub backlog: i32,
    pub reuse_port: bool,
    /// How many times to retry a busy address, one second apart (Gunicorn tries 5 times).
    pub retries: u32,
}

/// Opens every address, retrying busy ones; a socket file left by a dead server is replaced.
pub fn bind_all(addrs: &[BindAddr], opts: &BindOptions) -> Result<Vec<Listener>, BindError> {
    let _ = (addrs, opts);
    Ok(Vec::new())
}

/// Removes unix socket files (called by the master on final shutdown only).
pub fn unlink_unix_sockets(listeners: &[Listener]) {
    let _ = listeners;
}

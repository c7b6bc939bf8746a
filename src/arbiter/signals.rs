//! The signals the master acts on, and their names as Gunicorn logs them.

pub const HANDLED: &[libc::c_int] = &[
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCHLD,
];

/// Lower-case short name (`term`, `hup`, ...), as in Gunicorn's "Handling signal: term".
pub fn name(sig: libc::c_int) -> String {
    upper_name(sig).trim_start_matches("SIG").to_ascii_lowercase()
}

/// `SIGKILL`-style name, or the number when unknown.
pub fn upper_name(sig: libc::c_int) -> String {
    nix::sys::signal::Signal::try_from(sig).map(|s| s.as_str().to_string()).unwrap_or_else(|_| format!("signal {sig}"))
}

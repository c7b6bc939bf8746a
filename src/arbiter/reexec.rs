//! USR2: start a new master from the current binary and code, handing it the listening sockets,
//! so an upgrade never closes the port. The old master keeps serving until told to stop.

use super::Arbiter;
use crate::hooks::Hook;
use crate::{log_error, log_info, sys};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Forks the new master. Returns its pid in the old master; in the child it never returns
/// unless exec failed, in which case it returns the exit status to use.
pub fn spawn(py: Python<'_>, arb: &Arbiter) -> Result<i32, i32> {
    let master_pid = arb.pid;
    let pid: i32 = match super::fork(py) {
        Ok(pid) => pid,
        Err(e) => {
            log_error!("USR2: cannot fork the new master: {e}");
            return Ok(0);
        }
    };
    if pid != 0 {
        log_info!("USR2: started a new master (pid: {pid})");
        return Ok(pid);
    }
    let _ = sys::reset_signals(super::signals::HANDLED);
    let hooks = arb.hooks();
    hooks.call(py, Hook::PreExec, (hooks.server.clone_ref(py),));
    match exec(py, arb, master_pid) {
        Ok(()) => Err(0),
        Err(e) => {
            log_error!("USR2: cannot execute the new master: {e}");
            Err(1)
        }
    }
}

fn exec(py: Python<'_>, arb: &Arbiter, master_pid: i32) -> PyResult<()> {
    let os = py.import("os")?;
    let sys_mod = py.import("sys")?;
    let env = PyDict::new(py);
    for (k, v) in std::env::vars_os() {
        env.set_item(k, v)?;
    }
    env.set_item("GUNICORN_PID", master_pid.to_string())?;
    let fds: Vec<String> = arb.listeners.iter().map(|l| l.raw_fd().to_string()).collect();
    for l in &arb.listeners {
        sys::set_cloexec(l.raw_fd(), false).map_err(PyErr::from)?;
    }
    if arb.systemd {
        env.set_item("LISTEN_PID", sys::getpid().to_string())?;
        env.set_item("LISTEN_FDS", fds.len().to_string())?;
    } else {
        env.set_item("GUNICORN_FD", fds.join(","))?;
    }
    std::env::set_current_dir(&arb.cwd).map_err(PyErr::from)?;
    let executable = sys_mod.getattr("executable")?;
    let argv = pyo3::types::PyList::new(py, [executable.clone()])?;
    for a in sys_mod.getattr("argv")?.try_iter()? {
        argv.append(a?)?;
    }
    os.call_method1("execve", (executable, argv, env))?;
    Ok(())
}

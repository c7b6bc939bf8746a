//! The master: a single-threaded loop that forks workers, watches their heartbeats, reaps them,
//! keeps the pool at size, and turns signals into actions. It never touches a client socket.
//!
//! The shape follows Gunicorn's arbiter: signal handlers only queue (a byte on a pipe), and the
//! loop wakes, dispatches one small handler per signal, kills timed-out workers, and tops the
//! pool back up.

mod signals;

use crate::sock::Listener;
use crate::sys::{self, SharedSlots};
use crate::worker::heartbeat::Heartbeat;
use crate::worker::{self, AppSource, WorkerSettings, WorkerSpec, APP_LOAD_ERROR, WORKER_BOOT_ERROR};
use crate::wsgi::WsgiSettings;
use crate::{log_critical, log_error, log_info, log_warning};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use pyo3::prelude::*;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// Everything the master needs, prepared from the config by the run flow.
pub struct MasterSpec {
    pub listeners: Vec<Listener>,
    pub num_workers: usize,
    pub worker_class: String,
    pub app_uri: String,
    pub preloaded: Option<Py<PyAny>>,
    pub worker_settings: WorkerSettings,
    /// Randomises each worker's max_requests by up to this many.
    pub max_requests_jitter: u64,
    pub make_wsgi: Box<dyn Fn() -> WsgiSettings>,
    pub access_log: Option<(String, String)>,
    /// Seconds; 0 disables the heartbeat check.
    pub timeout: u64,
    pub graceful_timeout: u64,
    pub pidfile: Option<std::path::PathBuf>,
    /// `proc_name`, or the app name: shown as `ferrocorn: master [NAME]` in `ps`.
    pub proc_name: String,
    /// App threads per worker: 0 = inline (sync), N = gthread pool.
    pub threads: usize,    /// The worker class (chooses the executor).
    pub class: crate::worker::class::WorkerClass,
}

/// How `run` ended, in the master or (after fork) in a worker.
pub enum Outcome {
    /// The master is done; exit with this status.
    Master(i32),
    /// This process is a worker that has finished; exit with this status.
    Worker(i32),
}

struct WorkerInfo {
    slot: usize,
    age: u64,
    /// Set once SIGKILL was sent for a timeout, so it is logged once.
    timed_out: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// Stopping: workers were signalled, waiting until the deadline (monotonic ms).
    Stopping { graceful: bool, deadline: u64 },
}

pub struct Arbiter {
    spec: MasterSpec,
    workers: HashMap<i32, WorkerInfo>,
    slots: Arc<SharedSlots>,
    free_slots: Vec<usize>,
    next_age: u64,
    num_workers: usize,
    state: State,
    sig_read: OwnedFd,
    sig_write: OwnedFd,
    pid: i32,
    /// Exit status once a worker reported a boot or app-load failure.
    halt: Option<(i32, &'static str)>,
    reload_pending: bool,
    rng: u64,
}

impl Arbiter {
    pub fn new(spec: MasterSpec) -> std::io::Result<Arbiter> {
        let slots = worker::new_slots()?;
        let (sig_read, sig_write) = sys::pipe()?;
        let free_slots = (0..slots.len()).rev().collect();
        let num_workers = spec.num_workers.max(1);
        let pid = sys::getpid();
        Ok(Arbiter {
            spec,
            workers: HashMap::new(),
            slots,
            free_slots,
            next_age: 0,
            num_workers,
            state: State::Running,
            sig_read,
            sig_write,
            pid,
            halt: None,
            reload_pending: false,
            rng: (pid as u64) ^ sys::monotonic_ms().wrapping_mul(0x9E37_79B9_7F4A_7C15),
        })
    }

    /// Runs the master until it stops; returns in a forked worker too (see [`Outcome`]).
    pub fn run(mut self, py: Python<'_>) -> Outcome {
        use std::os::fd::AsRawFd;
        if let Err(e) = sys::install_signal_pipe(self.sig_write.as_raw_fd(), signals::HANDLED) {
            log_error!("cannot install signal handlers: {e}");
            return Outcome::Master(1);
        }
        log_info!("Starting ferrocorn {}", env!("CARGO_PKG_VERSION"));
        sys::set_proc_title(&format!("ferrocorn: master [{}]", self.spec.proc_name));
        for l in &self.spec.listeners {
            log_info!("Listening at: {} ({})", l.describe(), self.pid);
        }
        log_info!("Using worker: {}", self.spec.worker_class);
        if let Some(path) = &self.spec.pidfile {
            if let Err(e) = std::fs::write(path, format!("{}\n", self.pid)) {
                log_error!("cannot write pidfile {}: {e}", path.display());
                return Outcome::Master(1);
            }
        }

        loop {
            if let Some(code) = self.manage_workers(py) {
                return Outcome::Worker(code);
            }
            let fd = &self.sig_read;
            let _ = py.detach(|| sys::wait_readable(fd, 1000));
            for sig in sys::drain_pipe(&self.sig_read) {
                self.handle_signal(sig);
            }
            self.reap();
            if let Some((code, reason)) = self.halt {
                return Outcome::Master(self.halt_now(py, code, reason));
            }
            match self.state {
                State::Running => self.murder_timed_out(),
                State::Stopping { deadline, .. } => {
                    if self.workers.is_empty() {
                        return Outcome::Master(self.finish(py, 0));
                    }
                    if sys::monotonic_ms() >= deadline {
                        self.signal_all(libc::SIGKILL);
                        self.wait_all_dead();
                        return Outcome::Master(self.finish(py, 0));
                    }
                }
            }
        }
    }

    fn handle_signal(&mut self, sig: libc::c_int) {
        if sig != libc::SIGCHLD {
            log_info!("Handling signal: {}", signals::name(sig));
        }
        match sig {
            libc::SIGCHLD => {}
            libc::SIGTERM => self.stop(true),
            libc::SIGINT | libc::SIGQUIT => self.stop(false),
            libc::SIGHUP => self.reload(),
            libc::SIGTTIN => {
                self.num_workers += 1;
            }
            libc::SIGTTOU => {
                if self.num_workers > 1 {
                    self.num_workers -= 1;
                }
            }
            libc::SIGUSR1 => {
                if let Err(e) = crate::log::reopen() {
                    log_error!("cannot reopen the error log: {e}");
                }
                self.signal_all(libc::SIGUSR1);
            }
            libc::SIGUSR2 | libc::SIGWINCH => {
                log_warning!("signal {} is not supported yet; ignored", signals::name(sig));
            }
            _ => {}
        }
    }

    /// Starts a stop: graceful (TERM) lets workers finish in-flight requests within
    /// graceful_timeout; fast (INT/QUIT) asks them to exit now. A second signal escalates.
    fn stop(&mut self, graceful: bool) {
        let deadline = sys::monotonic_ms() + self.spec.graceful_timeout * 1000;
        let graceful = match self.state {
            State::Stopping { graceful: was, .. } => was && graceful,
            State::Running => graceful,
        };
        let deadline = match self.state {
            State::Stopping { deadline: d, .. } => d.min(deadline),
            State::Running => deadline,
        };
        self.state = State::Stopping { graceful, deadline };
        self.signal_all(if graceful { libc::SIGTERM } else { libc::SIGQUIT });
    }

    /// HUP: start a fresh set of workers, then the oldest ones are stopped gracefully by
    /// `manage_workers`, so the pool never drops below its size.
    fn reload(&mut self) {
        log_info!("Hang up: Master");
        self.reload_pending = true;
    }

    fn signal_all(&self, sig: libc::c_int) {
        for &pid in self.workers.keys() {
            sys::kill(pid, sig);
        }
    }

    /// Reaps every exited child. Unknown children (we may be PID 1 in a container) are reaped
    /// silently and never mistaken for workers.
    fn reap(&mut self) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => self.worker_gone(pid.as_raw(), Some(code), None),
                Ok(WaitStatus::Signaled(pid, sig, _)) => self.worker_gone(pid.as_raw(), None, Some(sig as i32)),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }

    fn worker_gone(&mut self, pid: i32, code: Option<i32>, signal: Option<i32>) {
        let Some(info) = self.workers.remove(&pid) else { return };
        self.free_slots.push(info.slot);
        match (code, signal) {
            (Some(WORKER_BOOT_ERROR), _) => self.halt = Some((WORKER_BOOT_ERROR, "Worker failed to boot.")),
            (Some(APP_LOAD_ERROR), _) => self.halt = Some((APP_LOAD_ERROR, "App failed to load.")),
            (Some(0), _) => {}
            (Some(c), _) => log_error!("Worker (pid:{pid}) exited with code {c}."),
            (None, Some(libc::SIGKILL)) if !info.timed_out && self.state == State::Running => {
                log_error!("Worker (pid:{pid}) was sent SIGKILL! Perhaps out of memory?")
            }
            (None, Some(s)) if self.state == State::Running && !info.timed_out => {
                log_error!("Worker (pid:{pid}) was sent {}!", signals::upper_name(s))
            }
            _ => {}
        }
    }

    /// Kills workers whose heartbeat is older than the timeout (a sync worker stuck in the app).
    fn murder_timed_out(&mut self) {
        if self.spec.timeout == 0 {
            return;
        }
        let limit = self.spec.timeout * 1000;
        for (&pid, info) in self.workers.iter_mut() {
            if info.timed_out {
                continue;
            }
            let hb = Heartbeat::new(self.slots.clone(), info.slot);
            if hb.silent_for_ms() > limit {
                log_critical!("WORKER TIMEOUT (pid:{pid})");
                info.timed_out = true;
                sys::kill(pid, libc::SIGKILL);
            }
        }
    }

    /// Spawns or retires workers to match the target size. Returns `Some(code)` in a freshly
    /// forked worker once it has finished.
    fn manage_workers(&mut self, py: Python<'_>) -> Option<i32> {
        if self.state != State::Running || self.halt.is_some() {
            return None;
        }
        if self.reload_pending {
            self.reload_pending = false;
            for _ in 0..self.num_workers {
                if let Some(code) = self.spawn_worker(py) {
                    return Some(code);
                }
            }
        }
        while self.workers.len() < self.num_workers {
            if let Some(code) = self.spawn_worker(py) {
                return Some(code);
            }
            if self.halt.is_some() {
                return None;
            }
        }
        if self.workers.len() > self.num_workers {
            let mut by_age: Vec<(u64, i32)> = self.workers.iter().map(|(&pid, w)| (w.age, pid)).collect();
            by_age.sort();
            for (_, pid) in by_age.into_iter().take(self.workers.len() - self.num_workers) {
                sys::kill(pid, libc::SIGTERM);
            }
        }
        None
    }

    fn jitter(&mut self) -> u64 {
        let j = self.spec.max_requests_jitter;
        if j == 0 {
            return 0;
        }
        // xorshift64: plenty for spreading restarts, no crate needed.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % (j + 1)
    }

    fn spawn_worker(&mut self, py: Python<'_>) -> Option<i32> {
        let Some(slot) = self.free_slots.pop() else {
            log_error!("too many workers: no heartbeat slot free");
            return None;
        };
        let hb = Heartbeat::new(self.slots.clone(), slot);
        hb.beat();
        self.next_age += 1;
        let age = self.next_age;
        let max_requests = match self.spec.worker_settings.max_requests {
            0 => 0,
            n => n + self.jitter(),
        };

        let pid = match fork(py) {
            Ok(pid) => pid,
            Err(e) => {
                self.free_slots.push(slot);
                log_error!("Could not fork a worker: {}", crate::wsgi::format_exception(py, &e));
                return None;
            }
        };
        if pid != 0 {
            self.workers.insert(pid, WorkerInfo { slot, age, timed_out: false });
            log_info!("Booting worker with pid: {pid}");
            return None;
        }

        // In the new worker.
        let _ = sys::reset_signals(signals::HANDLED);
        sys::set_proc_title(&format!("ferrocorn: worker [{}]", self.spec.proc_name));
        if !sys::die_with_parent(libc::SIGTERM, self.pid) {
            return Some(0);
        }
        let mut settings = self.spec.worker_settings.clone();
        settings.max_requests = max_requests;
        let app = match &self.spec.preloaded {
            Some(app) => AppSource::Preloaded(app.clone_ref(py)),
            None => AppSource::Uri(self.spec.app_uri.clone()),
        };
        let access_log = match &self.spec.access_log {
            Some((target, format)) => match crate::log::AccessLog::open(target, format) {
                Ok(l) => Some(l),
                Err(e) => {
                    log_error!("cannot open access log {target}: {e}");
                    return Some(WORKER_BOOT_ERROR);
                }
            },
            None => None,
        };
        let spec = WorkerSpec {
            settings,
            wsgi: (self.spec.make_wsgi)(),
            app,
            listeners: std::mem::take(&mut self.spec.listeners),
            access_log,
            heartbeat: hb,
            threads: self.spec.threads,
            class: self.spec.class,
        };
        Some(worker::run(py, spec))
    }

    fn wait_all_dead(&mut self) {
        let deadline = sys::monotonic_ms() + 5000;
        while !self.workers.is_empty() && sys::monotonic_ms() < deadline {
            self.reap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// A worker could not boot: stop everything and exit with its status (Gunicorn's halt).
    fn halt_now(&mut self, py: Python<'_>, code: i32, reason: &str) -> i32 {
        log_info!("Shutting down: Master");
        log_info!("Reason: {reason}");
        self.signal_all(libc::SIGTERM);
        let deadline = sys::monotonic_ms() + self.spec.graceful_timeout.min(5) * 1000;
        while !self.workers.is_empty() && sys::monotonic_ms() < deadline {
            self.reap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.signal_all(libc::SIGKILL);
        self.wait_all_dead();
        self.cleanup(py);
        code
    }

    fn finish(&mut self, py: Python<'_>, code: i32) -> i32 {
        self.cleanup(py);
        log_info!("Shutting down: Master");
        code
    }

    fn cleanup(&mut self, _py: Python<'_>) {
        crate::sock::unlink_unix_sockets(&self.spec.listeners);
        if let Some(path) = &self.spec.pidfile {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Forks through Python's `os.fork()` so the interpreter's own fork protocol runs
/// (`os.register_at_fork` hooks, `random` reseeding, the threading module's reinit).
fn fork(py: Python<'_>) -> PyResult<i32> {
    py.import("os")?.call_method0("fork")?.extract()
}

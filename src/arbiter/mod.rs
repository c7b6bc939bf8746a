//! The master: a single-threaded loop that forks workers, watches their heartbeats, reaps them,
//! keeps the pool at size, and turns signals into actions. It never touches a client socket of
//! the app (the opt-in `--metrics-bind` admin listener is its own, served without blocking).
//!
//! The shape follows Gunicorn's arbiter: signal handlers only queue (a byte on a pipe), and the
//! loop wakes, dispatches one small handler per signal, kills timed-out workers, and tops the
//! pool back up. Hooks are called at the moments Gunicorn calls them.

mod control;
mod metrics;
mod pidfile;
mod recycle;
mod reexec;
mod signals;

use crate::hooks::{Hook, Hooks};
use crate::sock::{self, BindAddr, BindOptions, InheritedFrom, Listener};
use crate::sys::{self, SharedSlots};
use crate::worker::heartbeat::Heartbeat;
use crate::worker::{self, APP_LOAD_ERROR, AppSource, WORKER_BOOT_ERROR, WorkerSettings, WorkerSpec};
use crate::wsgi::WsgiSettings;
use crate::{log_critical, log_debug, log_error, log_info, log_warning};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use pidfile::Pidfile;
use pyo3::prelude::*;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use control::{ControlSpec, config_snapshot};
pub use recycle::RecycleSpec;

/// Everything the master needs, prepared from the config by the run flow (and prepared again,
/// from a re-read config, on HUP).
pub struct MasterSpec {
    pub binds: Vec<BindAddr>,
    pub bind_opts: BindOptions,
    pub num_workers: usize,
    pub worker_class: String,
    pub app_uri: String,
    pub preloaded: Option<Py<PyAny>>,
    pub worker_settings: WorkerSettings,
    /// Randomises each worker's max_requests by up to this many.
    pub max_requests_jitter: u64,
    pub wsgi: WsgiSettings,
    pub access_log: Option<(String, String)>,
    /// How long a worker may stay silent; `None` disables the heartbeat check.
    pub timeout: Option<Duration>,
    /// How long workers get to finish after TERM; `None` waits for them without limit.
    pub graceful_timeout: Option<Duration>,
    pub pidfile: Option<PathBuf>,
    /// `proc_name`, or the app name: shown as `ferrocorn: master [NAME]` in `ps`.
    pub proc_name: String,
    /// App threads per worker: 0 = inline (sync), N = gthread pool.
    pub threads: usize,
    /// The worker class (chooses the executor).
    pub class: crate::worker::class::WorkerClass,
    pub daemon: bool,
    pub hooks: Arc<Hooks>,
    /// Workers switch to this user and group (the master keeps its own).
    pub uid: u32,
    pub gid: u32,
    pub initgroups: bool,
    /// `--reload`: workers watch these files (plus every imported module) and ask for a restart.
    pub reload: Option<Vec<PathBuf>>,
    /// `--metrics-bind`: host and port of the Prometheus endpoint the master serves.
    pub metrics_bind: Option<(String, u16)>,
    /// `control_socket`, unless `control_socket_disable`. Read at start; HUP does not move it.
    pub control: Option<ControlSpec>,
    /// The settings `show config` reports, as of the last (re)load.
    pub config_snapshot: serde_json::Value,
    /// `max_worker_rss` and `max_worker_lifetime`, with their jitter.
    pub recycle: RecycleSpec,
    /// `enable_backlog_metric`.
    pub backlog_metric: bool,
}

/// Re-reads the configuration (HUP). The preloaded app, if any, is kept by the closure.
pub type Rebuild = Box<dyn Fn(Python<'_>) -> Result<MasterSpec, String>>;

/// How `run` ended, in the master or (after fork) in a worker.
pub enum Outcome {
    /// The master is done; exit with this status.
    Master(i32),
    /// This process is a worker that has finished; exit with this status.
    Worker(i32),
}

/// Generation of a worker that was told to stop and no longer counts towards the pool.
const RETIRING: u64 = u64::MAX;
/// Generation of a worker over a recycling limit: it serves until its replacement has booted.
const RECYCLING: u64 = u64::MAX - 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abort {
    None,
    /// SIGABRT sent (worker_abort runs in the worker); SIGKILL follows on the next pass.
    Sent,
}

struct WorkerInfo {
    slot: usize,
    age: u64,
    abort: Abort,
    /// The `worker` object hooks receive.
    obj: Py<PyAny>,
    /// Bumped by HUP and `--reload` restarts: older generations are retired.
    generation: u64,
    born: Instant,
    limits: recycle::Limits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// Stopping: workers were signalled, waiting until the deadline (`None`: until they exit).
    Stopping {
        graceful: bool,
        deadline: Option<Instant>,
    },
}

/// A `--reload` restart in progress: new workers boot first, old ones retire once they have.
#[derive(Debug, Clone, Copy)]
struct Rolling {
    generation: u64,
}

pub struct Arbiter {
    spec: MasterSpec,
    rebuild: Rebuild,
    listeners: Vec<Listener>,
    systemd: bool,
    workers: HashMap<i32, WorkerInfo>,
    slots: Arc<SharedSlots>,
    free_slots: Vec<usize>,
    next_age: u64,
    num_workers: usize,
    generation: u64,
    rolling: Option<Rolling>,
    /// `--reload` only: the changed code failed to load after the app had booted once.
    broken: bool,
    /// Some worker has booted (loaded the app) since start.
    ever_booted: bool,
    /// When `broken` with no worker left, the next attempt to boot one (monotonic ms).
    next_retry: u64,
    state: State,
    sig_read: OwnedFd,
    sig_write: OwnedFd,
    pid: i32,
    /// Exit status once a worker reported a boot or app-load failure.
    halt: Option<(i32, &'static str)>,
    rng: u64,
    /// The new master started by USR2, while it runs.
    reexec_pid: i32,
    /// The old master, when this master was started by USR2 and not yet promoted.
    master_pid: i32,
    pidfile: Option<Pidfile>,
    cwd: PathBuf,
    /// `--metrics-bind`: the endpoint and the workers' counters.
    metrics: Option<metrics::Metrics>,
    control: Option<control::ControlSocket>,
    tally: control::Tally,
    recycling: Option<recycle::Recycling>,
}

impl Arbiter {
    pub fn new(spec: MasterSpec, rebuild: Rebuild) -> std::io::Result<Arbiter> {
        let slots = worker::new_slots()?;
        let (sig_read, sig_write) = sys::pipe()?;
        let free_slots = (0..slots.len() / 2).rev().collect();
        let num_workers = spec.num_workers.max(1);
        let pid = sys::getpid();
        let master_pid = std::env::var("GUNICORN_PID").ok().and_then(|p| p.parse().ok()).unwrap_or(0);
        sys::remove_env("GUNICORN_PID");
        Ok(Arbiter {
            spec,
            rebuild,
            listeners: Vec::new(),
            systemd: false,
            workers: HashMap::new(),
            slots,
            free_slots,
            next_age: 0,
            num_workers,
            generation: 0,
            rolling: None,
            broken: false,
            ever_booted: false,
            next_retry: 0,
            state: State::Running,
            sig_read,
            sig_write,
            pid,
            halt: None,
            rng: u64::from(pid.unsigned_abs()) ^ sys::monotonic_ms().wrapping_mul(0x9E37_79B9_7F4A_7C15),
            reexec_pid: 0,
            master_pid,
            pidfile: None,
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            metrics: None,
            control: None,
            tally: control::Tally::new(),
            recycling: None,
        })
    }

    fn hooks(&self) -> Arc<Hooks> {
        self.spec.hooks.clone()
    }

    /// The listeners as the `Listening at:` line shows them: `https://` when TLS is on.
    fn listening_at(&self) -> String {
        let scheme = if self.spec.worker_settings.tls.is_some() { "https" } else { "http" };
        self.listeners.iter().map(|l| l.describe_with_scheme(scheme)).collect::<Vec<_>>().join(",")
    }

    fn title(&self) -> String {
        let suffix = if self.master_pid != 0 { ".2" } else { "" };
        format!("ferrocorn: master [{}{suffix}]", self.spec.proc_name)
    }

    /// Runs the master until it stops; returns in a forked worker too (see [`Outcome`]).
    pub fn run(mut self, py: Python<'_>) -> Outcome {
        use std::os::fd::AsRawFd;
        if let Err(code) = self.start(py) {
            return Outcome::Master(code);
        }
        loop {
            if let Some(code) = self.manage_workers(py) {
                return Outcome::Worker(code);
            }
            crate::metrics::workers(self.workers.len());
            if self.spec.backlog_metric {
                metrics::report_backlog(&self.listeners, self.metrics.as_mut());
            }
            // Under --reload (a development setting) poll faster, so a booted generation
            // replaces the old one without a visible overlap.
            let tick = if self.spec.reload.is_some() { 200 } else { 1000 };
            let mut fds = vec![self.sig_read.as_raw_fd()];
            if let Some(m) = &self.metrics {
                m.poll_fds(&mut fds);
            }
            let tick = match &self.control {
                Some(c) => {
                    c.poll_fds(&mut fds);
                    if c.wants_write() { 50 } else { tick }
                }
                None => tick,
            };
            let _ = py.detach(|| sys::wait_any_readable(&fds, tick));
            let ready = self.readiness();
            if let Some(m) = &mut self.metrics {
                // Non-blocking throughout (see metrics::prometheus): a scrape never holds the loop.
                m.serve(sys::monotonic_ms(), ready, self.workers.iter().map(|(&pid, w)| (pid, w.age, w.slot)));
            }
            self.serve_control(py);
            for sig in sys::drain_pipe(&self.sig_read) {
                if let Some(code) = self.handle_signal(py, sig) {
                    return Outcome::Worker(code);
                }
            }
            self.reap(py);
            self.maybe_promote();
            if let Some((code, reason)) = self.halt {
                return Outcome::Master(self.halt_now(py, code, reason));
            }
            match self.state {
                State::Running => {
                    self.murder_timed_out();
                    self.check_recycle();
                    self.watch_reload_requests(py);
                }
                State::Stopping { deadline, .. } => {
                    if self.workers.is_empty() {
                        return Outcome::Master(self.finish(py, 0));
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        self.signal_all(libc::SIGKILL);
                        self.wait_all_dead(py);
                        return Outcome::Master(self.finish(py, 0));
                    }
                }
            }
        }
    }

    /// Gunicorn's start-up sequence: pidfile, `on_starting`, listeners, `when_ready`.
    fn start(&mut self, py: Python<'_>) -> Result<(), i32> {
        use std::os::fd::AsRawFd;
        let hooks = self.hooks();
        hooks.set_server(py, "pid", self.pid);
        hooks.set_server(py, "master_pid", self.master_pid);
        hooks.set_server(py, "proc_name", self.spec.proc_name.clone());
        self.set_num_workers(py, self.spec.num_workers);
        log_info!("Starting ferrocorn {}", env!("CARGO_PKG_VERSION"));
        sys::set_proc_title(&self.title());
        if let Some(path) = &self.spec.pidfile {
            let path = if self.master_pid != 0 { pidfile::with_suffix(path, ".2") } else { path.clone() };
            match Pidfile::create(&path, self.pid) {
                Ok(p) => self.pidfile = Some(p),
                Err(e) => {
                    log_error!("{e}");
                    return Err(1);
                }
            }
        }
        hooks.call(py, Hook::OnStarting, (hooks.server.clone_ref(py),));
        if let Err(e) = sys::install_signal_pipe(self.sig_write.as_raw_fd(), signals::HANDLED) {
            log_error!("cannot install signal handlers: {e}");
            return Err(1);
        }
        match self.open_listeners() {
            Ok(()) => {}
            Err(msg) => {
                log_error!("{msg}");
                self.cleanup(py);
                return Err(1);
            }
        }
        if self.spec.control.is_some() && self.metrics.is_none() {
            // `ferrocorn ctl top` reads the workers' request counters from the metrics table.
            match metrics::Metrics::new() {
                Ok(m) => self.metrics = Some(m),
                Err(e) => log_warning!("cannot map the worker counters table: {e}"),
            }
        }
        if !self.open_metrics() {
            self.close_listeners(py);
            self.cleanup(py);
            return Err(1);
        }
        self.open_control();
        log_debug!("Arbiter booted");
        log_info!("Listening at: {} ({})", self.listening_at(), self.pid);
        log_info!("Using worker: {}", self.spec.worker_class);
        sys::sd_notify("READY=1\nSTATUS=ferrocorn master booted");
        hooks.call(py, Hook::WhenReady, (hooks.server.clone_ref(py),));
        Ok(())
    }

    /// Listeners come from a parent master (USR2), from systemd, or are opened here.
    fn open_listeners(&mut self) -> Result<(), String> {
        match sock::listeners_from_env(&self.spec.bind_opts) {
            Ok(Some((from, listeners))) => {
                self.systemd = from == InheritedFrom::Systemd;
                for var in ["GUNICORN_FD", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] {
                    sys::remove_env(var);
                }
                self.listeners = listeners;
            }
            Ok(None) => {
                self.listeners = sock::bind_all(&self.spec.binds, &self.spec.bind_opts).map_err(|e| e.to_string())?;
            }
            Err(e) => return Err(e.to_string()),
        }
        self.chown_sockets();
        Ok(())
    }

    /// `--metrics-bind`. A master started by USR2 finds the port still held by the old master:
    /// it serves no metrics until it is promoted (`maybe_promote` tries again).
    fn open_metrics(&mut self) -> bool {
        let Some((host, port)) = self.spec.metrics_bind.clone() else { return true };
        if self.metrics.is_none() {
            match metrics::Metrics::new() {
                Ok(m) => self.metrics = Some(m),
                Err(e) => {
                    log_error!("cannot map the metrics table: {e}");
                    return false;
                }
            }
        }
        let Some(m) = &mut self.metrics else { return false };
        if m.is_open() {
            return true;
        }
        match m.open(&host, port) {
            Ok(url) => {
                log_info!("Metrics at: {url}");
                true
            }
            Err(e) if self.master_pid != 0 => {
                log_warning!("metrics endpoint {host}:{port} not opened until this master is promoted: {e}");
                true
            }
            Err(e) => {
                log_error!("cannot open the metrics endpoint {host}:{port}: {e}");
                false
            }
        }
    }

    /// Workers that drop privileges must still be able to use unix socket files.
    fn chown_sockets(&self) {
        if self.spec.uid == nix::unistd::Uid::effective().as_raw() && self.spec.gid == nix::unistd::Gid::effective().as_raw() {
            return;
        }
        for l in &self.listeners {
            if let Some(path) = l.unix_path() {
                if let Err(e) = sys::chown(path, self.spec.uid, self.spec.gid) {
                    log_warning!("cannot chown {}: {e}", path.display());
                }
            }
        }
    }

    fn set_num_workers(&mut self, py: Python<'_>, n: usize) {
        let old = if self.generation == 0 && self.next_age == 0 && self.workers.is_empty() && self.state == State::Running {
            None
        } else {
            Some(self.num_workers)
        };
        self.num_workers = n;
        let hooks = self.hooks();
        hooks.set_server(py, "num_workers", n);
        // Gunicorn calls this on every assignment, even when the count is unchanged (HUP).
        hooks.call(py, Hook::NworkersChanged, (hooks.server.clone_ref(py), n, old));
    }

    fn handle_signal(&mut self, py: Python<'_>, sig: libc::c_int) -> Option<i32> {
        // Gunicorn logs SIGCHLD at debug: it is frequent and routine.
        if sig == libc::SIGCHLD {
            log_debug!("Handling signal: {}", signals::name(sig));
        } else {
            log_info!("Handling signal: {}", signals::name(sig));
        }
        match sig {
            libc::SIGCHLD => {}
            libc::SIGTERM => self.stop(py, true),
            libc::SIGINT | libc::SIGQUIT => self.stop(py, false),
            libc::SIGHUP => self.reload(py),
            libc::SIGTTIN => {
                let n = self.num_workers + 1;
                self.set_num_workers(py, n);
            }
            libc::SIGTTOU if self.num_workers > 1 => {
                let n = self.num_workers - 1;
                self.set_num_workers(py, n);
            }
            libc::SIGUSR1 => {
                if let Err(e) = crate::log::reopen() {
                    log_error!("cannot reopen the error log: {e}");
                }
                self.signal_all(libc::SIGUSR1);
            }
            libc::SIGUSR2 => return self.reexec(py),
            libc::SIGWINCH => {
                if self.spec.daemon {
                    log_info!("graceful stop of workers");
                    self.set_num_workers(py, 0);
                    self.signal_all(libc::SIGTERM);
                } else {
                    log_debug!("SIGWINCH ignored. Not daemonized");
                }
            }
            _ => {}
        }
        None
    }

    /// Starts a stop: graceful (TERM) lets workers finish in-flight requests within
    /// graceful_timeout; fast (INT/QUIT) asks them to exit now. A fast signal during a graceful
    /// stop escalates it.
    fn stop(&mut self, py: Python<'_>, graceful: bool) {
        let (graceful, deadline) = match self.state {
            // Any second stop signal escalates a graceful stop (Gunicorn escalates only on
            // INT/QUIT; an operator sending TERM twice means "now" too).
            State::Stopping { deadline, .. } => (false, deadline),
            State::Running => {
                sys::sd_notify("STOPPING=1");
                // As Gunicorn does: no more control commands once stopping.
                self.close_control();
                // Stop listening in the master (workers keep their copies until they drain).
                self.close_listeners(py);
                // A graceful_timeout too far away to add is no deadline at all.
                (graceful, self.spec.graceful_timeout.and_then(|g| Instant::now().checked_add(g)))
            }
        };
        self.state = State::Stopping { graceful, deadline };
        self.signal_all(if graceful { libc::SIGTERM } else { libc::SIGQUIT });
    }

    fn close_listeners(&mut self, _py: Python<'_>) {
        // A re-executed master (either side of USR2) shares the socket files: leave them.
        if self.reexec_pid == 0 && self.master_pid == 0 && !self.systemd && !self.spec.bind_opts.reuse_port {
            sock::unlink_unix_sockets(&self.listeners);
        }
        self.listeners.clear();
    }

    /// HUP: re-read the configuration, start a fresh set of workers with it, and retire the old
    /// ones gracefully once the new ones are running (`manage_workers` stops the oldest).
    fn reload(&mut self, py: Python<'_>) {
        log_info!("Hang up: Master");
        let new_spec = match (self.rebuild)(py) {
            Ok(s) => s,
            Err(e) => {
                // Still replace the workers (HUP is also how code is reloaded), with the
                // configuration already in force, and back to its worker count (after WINCH).
                log_error!("Configuration reload failed, keeping the current one: {e}");
                self.set_num_workers(py, self.spec.num_workers);
                self.generation += 1;
                self.rolling = None;
                return;
            }
        };
        self.tally.reloads += 1;
        let old_binds = std::mem::replace(&mut self.spec, new_spec).binds;
        if let Err(e) = crate::log::reopen() {
            log_error!("cannot reopen the error log: {e}");
        }
        if old_binds != self.spec.binds && !self.systemd {
            self.close_listeners(py);
            match sock::bind_all(&self.spec.binds, &self.spec.bind_opts) {
                Ok(l) => {
                    self.listeners = l;
                    self.chown_sockets();
                    log_info!("Listening at: {}", self.listening_at());
                }
                Err(e) => log_error!("cannot open the new listeners: {e}"),
            }
        }
        let hooks = self.hooks();
        hooks.set_server(py, "pid", self.pid);
        hooks.set_server(py, "proc_name", self.spec.proc_name.clone());
        self.set_num_workers(py, self.spec.num_workers);
        hooks.call(py, Hook::OnReload, (hooks.server.clone_ref(py),));
        if let Some(old) = self.pidfile.take() {
            old.unlink();
        }
        if let Some(path) = &self.spec.pidfile {
            match Pidfile::create(path, self.pid) {
                Ok(p) => self.pidfile = Some(p),
                Err(e) => log_error!("{e}"),
            }
        }
        sys::set_proc_title(&self.title());
        self.generation += 1;
        self.rolling = None;
    }

    /// USR2: fork and exec a new master that inherits the listeners; both serve until the
    /// operator stops this one. Returns `Some` only in the child if exec failed.
    fn reexec(&mut self, py: Python<'_>) -> Option<i32> {
        if self.reexec_pid != 0 {
            log_warning!("USR2 signal ignored. Child exists.");
            return None;
        }
        if self.master_pid != 0 {
            log_warning!("USR2 signal ignored. Parent exists.");
            return None;
        }
        match reexec::spawn(py, self) {
            Ok(pid) => {
                self.reexec_pid = pid;
                if let Some(p) = &self.pidfile {
                    // The new master writes NAME.2; this one keeps NAME until it exits.
                    log_debug!("pidfile {} kept by the old master", p.path().display());
                }
                None
            }
            Err(code) => Some(code),
        }
    }

    /// A master started by USR2 takes over once the old master is gone.
    fn maybe_promote(&mut self) {
        if self.master_pid == 0 || sys::getppid() == self.master_pid {
            return;
        }
        log_info!("Master has been promoted.");
        self.master_pid = 0;
        self.open_metrics();
        self.open_control();
        if let Some(p) = &mut self.pidfile {
            if let Some(path) = &self.spec.pidfile {
                if let Err(e) = p.rename(path) {
                    log_error!("cannot rename the pidfile: {e}");
                }
            }
        }
        sys::set_proc_title(&self.title());
    }

    fn signal_all(&self, sig: libc::c_int) {
        for &pid in self.workers.keys() {
            sys::kill(pid, sig);
        }
    }

    /// Reaps every exited child. Unknown children (we may be PID 1 in a container) are reaped
    /// silently and never mistaken for workers.
    fn reap(&mut self, py: Python<'_>) {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => self.child_gone(py, pid.as_raw(), Some(code), None),
                Ok(WaitStatus::Signaled(pid, sig, _)) => self.child_gone(py, pid.as_raw(), None, Some(sig as i32)),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }

    fn child_gone(&mut self, py: Python<'_>, pid: i32, code: Option<i32>, signal: Option<i32>) {
        if pid == self.reexec_pid {
            self.reexec_pid = 0;
            return;
        }
        let Some(info) = self.workers.remove(&pid) else { return };
        self.free_slots.push(info.slot);
        if let Some(m) = &mut self.metrics {
            m.fold(info.slot);
        }
        let booted = Heartbeat::new(self.slots.clone(), info.slot).booted();
        self.ever_booted |= booted;
        // Messages and levels as Gunicorn's reap_workers writes them, so alert rules match: a
        // non-zero exit is an error (boot and load failures included), a SIGKILL an error, a
        // SIGTERM routine (info), any other signal a warning. A worker killed for a timeout was
        // already reported as WORKER TIMEOUT.
        match (code, signal) {
            (Some(0), _) => {}
            (Some(c), _) => log_error!("Worker (pid:{pid}) exited with code {c}."),
            (None, Some(_)) if info.abort != Abort::None => {}
            (None, Some(libc::SIGKILL)) => log_error!("Worker (pid:{pid}) was sent SIGKILL! Perhaps out of memory?"),
            (None, Some(libc::SIGTERM)) => log_info!("Worker (pid:{pid}) was sent SIGTERM!"),
            (None, Some(s)) => log_warning!("Worker (pid:{pid}) was sent {}!", signals::upper_name(s)),
            _ => {}
        }
        match code {
            Some(c @ (WORKER_BOOT_ERROR | APP_LOAD_ERROR)) if self.spec.reload.is_some() && self.ever_booted => {
                // Under --reload an edit that breaks the app must not stop the server: keep the
                // workers that run the previous code, and try again on the next change.
                if !self.broken {
                    log_error!(
                        "The changed code does not load (worker exit code {c}); the running workers keep serving until it is fixed."
                    );
                }
                self.broken = true;
                self.abandon_rolling();
            }
            Some(WORKER_BOOT_ERROR) => self.halt = Some((WORKER_BOOT_ERROR, "Worker failed to boot.")),
            Some(APP_LOAD_ERROR) => self.halt = Some((APP_LOAD_ERROR, "App failed to load.")),
            _ => {}
        }
        let _ = info.obj.bind(py).setattr("alive", false);
        let hooks = self.hooks();
        hooks.call(py, Hook::ChildExit, (hooks.server.clone_ref(py), info.obj.clone_ref(py)));
        self.sync_worker_table(py);
    }

    /// Keeps `server.WORKERS` (pid -> worker) current for hooks that read it.
    fn sync_worker_table(&self, py: Python<'_>) {
        let table = pyo3::types::PyDict::new(py);
        for (pid, info) in &self.workers {
            let _ = table.set_item(pid, info.obj.clone_ref(py));
        }
        self.hooks().set_server(py, "WORKERS", table);
    }

    /// Timed-out workers get SIGABRT (their worker_abort hook runs), then SIGKILL on the next
    /// pass if still there, as Gunicorn does.
    fn murder_timed_out(&mut self) {
        let Some(limit) = self.spec.timeout else { return };
        for (&pid, info) in self.workers.iter_mut() {
            let hb = Heartbeat::new(self.slots.clone(), info.slot);
            if Duration::from_millis(hb.silent_for_ms()) <= limit {
                continue;
            }
            match info.abort {
                Abort::None => {
                    log_critical!("WORKER TIMEOUT (pid:{pid})");
                    info.abort = Abort::Sent;
                    sys::kill(pid, libc::SIGABRT);
                }
                Abort::Sent => {
                    sys::kill(pid, libc::SIGKILL);
                    self.tally.workers_killed += 1;
                }
            }
        }
    }

    /// `--reload`: a worker saw a watched file change. Start a new generation; the old one is
    /// retired only once new workers have booted, so broken code never takes the site down.
    fn watch_reload_requests(&mut self, _py: Python<'_>) {
        if self.spec.reload.is_none() {
            return;
        }
        let mut requested = false;
        for info in self.workers.values() {
            if Heartbeat::new(self.slots.clone(), info.slot).take_reload_request() {
                requested = true;
            }
        }
        if requested && self.rolling.is_none() {
            log_info!("Code changed: starting new workers");
            self.broken = false;
            self.generation += 1;
            self.rolling = Some(Rolling { generation: self.generation });
        }
    }

    fn abandon_rolling(&mut self) {
        if let Some(r) = self.rolling.take() {
            // Stop what is left of the new generation; the previous one stays in service.
            for (&pid, info) in self.workers.iter_mut() {
                if info.generation == r.generation {
                    sys::kill(pid, libc::SIGTERM);
                    info.generation = RETIRING;
                }
            }
            self.generation -= 1;
        }
    }

    /// Spawns or retires workers to match the target size. Returns `Some(code)` in a freshly
    /// forked worker once it has finished.
    ///
    /// Workers of older generations (before a HUP or a `--reload` restart) are retired: at once
    /// after HUP, as Gunicorn does; after `--reload`, only once the whole new generation has
    /// booted, so a broken edit never leaves the site without workers.
    fn manage_workers(&mut self, py: Python<'_>) -> Option<i32> {
        if self.state != State::Running || self.halt.is_some() {
            return None;
        }
        let current = self.generation;
        let slots = self.slots.clone();
        let booted_new =
            self.workers.values().filter(|w| w.generation == current && Heartbeat::new(slots.clone(), w.slot).booted()).count();
        self.ever_booted |= booted_new > 0;
        if self.rolling.is_none() || booted_new >= self.num_workers {
            self.rolling = None;
            let mut old: Vec<(u64, i32)> =
                self.workers.iter().filter(|(_, w)| w.generation < current).map(|(&pid, w)| (w.age, pid)).collect();
            old.sort();
            self.retire(&old);
        }

        let fresh = self.workers.values().filter(|w| w.generation == current).count();
        if self.broken {
            // Nothing is watching the files any more: keep trying, slowly, to boot the code.
            let now = sys::monotonic_ms();
            if self.workers.is_empty() && now >= self.next_retry {
                self.next_retry = now + 2000;
                return self.spawn_worker(py);
            }
            return None;
        }
        for _ in fresh..self.num_workers {
            if let Some(code) = self.spawn_worker(py) {
                return Some(code);
            }
            if self.halt.is_some() {
                return None;
            }
        }
        if fresh > self.num_workers {
            let mut extra: Vec<(u64, i32)> =
                self.workers.iter().filter(|(_, w)| w.generation == current).map(|(&pid, w)| (w.age, pid)).collect();
            extra.sort();
            extra.truncate(fresh - self.num_workers);
            self.retire(&extra);
        }
        None
    }

    /// Asks workers to stop gracefully and stops counting them towards the pool.
    fn retire(&mut self, victims: &[(u64, i32)]) {
        for &(_, pid) in victims {
            sys::kill(pid, libc::SIGTERM);
            self.tally.workers_killed += 1;
            if let Some(w) = self.workers.get_mut(&pid) {
                w.generation = RETIRING;
            }
        }
    }

    fn jitter(&mut self) -> u64 {
        self.draw(self.spec.max_requests_jitter)
    }

    fn spawn_worker(&mut self, py: Python<'_>) -> Option<i32> {
        let Some(slot) = self.free_slots.pop() else {
            log_error!("too many workers: no heartbeat slot free");
            return None;
        };
        let hb = Heartbeat::new(self.slots.clone(), slot);
        hb.reset();
        let stats = self.metrics.as_ref().map(|m| m.stats(slot));
        if let Some(s) = &stats {
            s.reset();
        }
        self.next_age += 1;
        let age = self.next_age;
        let max_requests = match self.spec.worker_settings.max_requests {
            0 => 0,
            n => n.saturating_add(self.jitter()),
        };
        let limits = self.draw_limits();
        let hooks = self.hooks();
        let obj = match hooks.new_worker(py, age, self.pid) {
            Ok(o) => o,
            Err(e) => {
                self.free_slots.push(slot);
                log_error!("cannot create the worker object: {}", crate::wsgi::format_exception(py, &e));
                return None;
            }
        };
        hooks.call(py, Hook::PreFork, (hooks.server.clone_ref(py), obj.clone_ref(py)));

        // In the child, signals stay blocked until reset_signals below.
        let pid = match fork(py) {
            Ok(pid) => pid,
            Err(e) => {
                self.free_slots.push(slot);
                log_error!("Could not fork a worker: {}", crate::wsgi::format_exception(py, &e));
                return None;
            }
        };
        if pid != 0 {
            let _ = obj.bind(py).setattr("pid", pid);
            self.tally.workers_spawned += 1;
            self.workers.insert(
                pid,
                WorkerInfo { slot, age, abort: Abort::None, obj, generation: self.generation, born: Instant::now(), limits },
            );
            self.sync_worker_table(py);
            return None;
        }

        // In the new worker. Gunicorn logs this line from the worker itself, so the `[pid]`
        // field of the line is the worker's.
        log_info!("Booting worker with pid: {}", sys::getpid());
        // The metrics listener and its pending connections are the master's alone.
        self.metrics = None;
        // Closed here, but the file is the master's: dropping does not unlink it.
        self.control = None;
        let _ = sys::reset_signals(signals::HANDLED);
        if !sys::die_with_parent(libc::SIGTERM, self.pid) {
            return Some(0);
        }
        sys::set_proc_title(&format!("ferrocorn: worker [{}]", self.spec.proc_name));
        let _ = obj.bind(py).setattr("pid", sys::getpid());
        // Gunicorn treats a failing post_fork as a failed boot.
        if !hooks.call_checked(py, Hook::PostFork, (hooks.server.clone_ref(py), obj.clone_ref(py))) {
            return Some(WORKER_BOOT_ERROR);
        }
        if let Err(e) = sys::drop_privileges(self.spec.uid, self.spec.gid, self.spec.initgroups) {
            log_error!("Worker failed to boot: cannot switch to uid {} gid {}: {e}", self.spec.uid, self.spec.gid);
            return Some(WORKER_BOOT_ERROR);
        }
        let mut settings = self.spec.worker_settings.clone();
        settings.max_requests = max_requests;
        settings.master_pid = self.pid;
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
            wsgi: self.spec.wsgi.clone(),
            app,
            listeners: std::mem::take(&mut self.listeners),
            access_log,
            heartbeat: hb,
            stats,
            threads: self.spec.threads,
            class: self.spec.class,
            hooks,
            worker: obj,
            reload: self.spec.reload.clone(),
        };
        let code = worker::run(py, spec);
        // Gunicorn logs this however the worker ended, app load failures included.
        log_info!("Worker exiting (pid: {})", sys::getpid());
        Some(code)
    }

    fn wait_all_dead(&mut self, py: Python<'_>) {
        let deadline = sys::monotonic_ms() + 5000;
        while !self.workers.is_empty() && sys::monotonic_ms() < deadline {
            self.reap(py);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// A worker could not boot: stop everything and exit with its status (Gunicorn's halt).
    fn halt_now(&mut self, py: Python<'_>, code: i32, reason: &str) -> i32 {
        self.signal_all(libc::SIGTERM);
        let five = Duration::from_secs(5);
        let deadline = Instant::now() + self.spec.graceful_timeout.map_or(five, |g| g.min(five));
        while !self.workers.is_empty() && Instant::now() < deadline {
            self.reap(py);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.signal_all(libc::SIGKILL);
        self.wait_all_dead(py);
        self.close_listeners(py);
        // Gunicorn's halt logs at error level when the exit status is not 0.
        log_error!("Shutting down: {}", self.master_name());
        log_error!("Reason: {reason}");
        self.cleanup(py);
        code
    }

    fn master_name(&self) -> &'static str {
        if self.master_pid != 0 { "Master.2" } else { "Master" }
    }

    fn finish(&mut self, py: Python<'_>, code: i32) -> i32 {
        self.close_listeners(py);
        log_info!("Shutting down: {}", self.master_name());
        self.cleanup(py);
        code
    }

    fn cleanup(&mut self, py: Python<'_>) {
        self.close_control();
        if let Some(p) = self.pidfile.take() {
            p.unlink();
        }
        let hooks = self.hooks();
        hooks.call(py, Hook::OnExit, (hooks.server.clone_ref(py),));
    }
}

/// Forks through Python's `os.fork()` so the interpreter's own fork protocol runs
/// (`os.register_at_fork` hooks, `random` reseeding, the threading module's reinit).
///
/// Every signal is blocked across the fork and stays blocked in the child, which must call
/// `sys::reset_signals` (that unblocks them) before anything else can take a signal: until
/// then the child still has the master's handlers, which write into the master's signal pipe.
fn fork(py: Python<'_>) -> PyResult<i32> {
    let mask = sys::block_all_signals();
    let forked = py.import("os").and_then(|os| os.call_method0("fork")).and_then(|p| p.extract());
    if !matches!(forked, Ok(0)) {
        sys::restore_signal_mask(&mask);
    }
    forked
}

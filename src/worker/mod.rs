//! A worker process: loads the app, then runs the Rust I/O engine (a tokio current-thread
//! runtime created after fork) that accepts connections and feeds complete requests to the
//! app executor. This module owns the worker's life: settings, heartbeat, max_requests,
//! graceful and immediate stop.

pub mod body;
pub mod class;
pub mod conn;
mod drain;
pub mod executor;
pub mod heartbeat;
pub mod hub;
mod overtime;
mod reload;
pub mod sink;
pub mod stats;
mod stuck;
pub mod tornado;
mod uwsgi;
pub mod writer;
pub use uwsgi::Wire;

use crate::hooks::{Hook, Hooks};
use crate::log::AccessLog;
use crate::sock::{Listener, ListenerKind};
use crate::wsgi::{ConnInfo, Peer, WsgiContext, WsgiSettings};
use crate::{log_error, log_info, log_warning};
use ferrocorn_http::ParseOptions;
use heartbeat::Heartbeat;
use pyo3::prelude::*;
use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Exit status of a worker that could not boot (Gunicorn's WORKER_BOOT_ERROR): the master stops.
pub const WORKER_BOOT_ERROR: i32 = 3;
/// Exit status of a worker that could not load the app (Gunicorn's APP_LOAD_ERROR).
pub const APP_LOAD_ERROR: i32 = 4;

/// Plain per-worker settings, taken from the config by the master.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub parse: ParseOptions,
    /// Idle time allowed between requests on a connection.
    pub keepalive: Duration,
    /// Deadline for each read or write on a client; `None` when `timeout` is 0.
    pub io_timeout: Option<Duration>,
    /// `request_timeout`: how long one request may stay in the app (not for sync); `None` off.
    pub request_timeout: Option<Duration>,
    /// Requests before this worker restarts (jitter already applied); 0 = never.
    pub max_requests: u64,
    /// Open connections per worker before accepting pauses.
    pub worker_connections: usize,
    /// `protocol` (with `uwsgi_allow_ips`): what the listeners speak.
    pub wire: uwsgi::Wire,
    pub proxy_protocol: ProxyMode,
    /// Peers allowed to send a PROXY header (`proxy_allow_ips`).
    pub proxy_allow: crate::wsgi::AllowList,
    /// Peers trusted to set forwarding headers (`forwarded_allow_ips`); their requests are parsed
    /// with `parse_trusted`, which keeps the `forwarder_headers` underscore fields.
    pub forwarded_allow: crate::wsgi::AllowList,
    pub parse_trusted: ParseOptions,
    /// TLS on every listener when `certfile`/`keyfile` are set.
    pub tls: Option<crate::tls::Tls>,
    /// Bodies larger than this go to a temporary file.
    pub spill_threshold: usize,
    pub tmp_upload_dir: Option<PathBuf>,
    /// `sendfile`: file responses may go out with sendfile(2) (plain sockets only).
    pub sendfile: bool,
    pub server_header: Vec<u8>,
    /// Heartbeat period.
    pub tick: Duration,
    /// How long a draining worker may take before it exits anyway. The master enforces this
    /// too; the worker does it itself so it can never outlive a master that died.
    pub graceful_timeout: Duration,
    /// The master's pid (set at fork): a worker whose parent changes starts draining.
    pub master_pid: i32,
}

/// `proxy_protocol`: which PROXY header versions are read from trusted peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    Off,
    V1,
    V2,
    Auto,
}

impl ProxyMode {
    /// From the table's canonical value (`off`, `v1`, `v2`, `auto`).
    pub fn from_setting(s: &str) -> ProxyMode {
        match s {
            "v1" => ProxyMode::V1,
            "v2" => ProxyMode::V2,
            "auto" => ProxyMode::Auto,
            _ => ProxyMode::Off,
        }
    }

    pub fn accepts(self, v: ferrocorn_http::ProxyVersion) -> bool {
        use ferrocorn_http::ProxyVersion;
        matches!((self, v), (ProxyMode::Auto, _) | (ProxyMode::V1, ProxyVersion::V1) | (ProxyMode::V2, ProxyVersion::V2))
    }
}

impl WorkerSettings {
    pub fn read_timeout(&self) -> Option<Duration> {
        self.io_timeout
    }
}

/// Where the app comes from.
pub enum AppSource {
    /// Imported in the master before fork (`--preload`).
    Preloaded(Py<PyAny>),
    /// Imported by the worker after fork.
    Uri(String),
}

/// Everything a worker needs, prepared by the master.
pub struct WorkerSpec {
    pub settings: WorkerSettings,
    pub wsgi: WsgiSettings,
    pub app: AppSource,
    pub listeners: Vec<Listener>,
    pub access_log: Option<AccessLog>,
    pub heartbeat: Heartbeat,
    /// Counters for `--metrics-bind`; `None` when it is off.
    pub stats: Option<stats::WorkerStats>,
    /// App threads: 0 runs the app inline on the I/O thread (sync), N > 0 a pool (gthread).
    pub threads: usize,
    pub hooks: Arc<Hooks>,
    /// This worker's `worker` object for hooks.
    pub worker: Py<PyAny>,
    /// `--reload`: extra file patterns to watch besides imported modules.
    pub reload: Option<Vec<PathBuf>>,
    /// Which executor runs the app (gevent, eventlet and tornado need their event loop).
    pub class: class::WorkerClass,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Running,
    /// Finishing in-flight requests, accepting no more (TERM or max_requests).
    Draining,
}

/// What the Python side of every request needs; shared with app threads.
pub struct AppState {
    pub app: Py<PyAny>,
    pub ctx: WsgiContext,
    pub hooks: Arc<Hooks>,
    pub worker: Py<PyAny>,
    /// Whether pre_request/post_request are configured (skips building `req` objects if not).
    pub request_hooks: bool,
    /// What each request keeps of its environ for the access log (`{var}e` atoms).
    pub access_capture: crate::log::EnvironCapture,
    pub kind: AppKind,
}

/// The protocol the app speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    Wsgi,
    /// A `tornado.web.Application`, served on the Tornado loop (`-k tornado`).
    Tornado,
}

/// State shared by the tasks of one worker (single-threaded runtime, so `Rc`/`Cell`).
pub struct Shared {
    pub app: Arc<AppState>,
    pub executor: executor::Executor,
    pub settings: WorkerSettings,
    pub access_log: Option<AccessLog>,
    pub heartbeat: Heartbeat,
    pub stats: Option<stats::WorkerStats>,
    pub lifecycle: Cell<Lifecycle>,
    /// Woken when draining starts (idle connections close, accept loops stop).
    pub drain: Notify,
    requests: Cell<u64>,
    open: Cell<usize>,
    /// Woken whenever a connection closes.
    conn_closed: Notify,
    /// Complete requests waiting for, or inside, the app (sync class accept gating).
    app_queue: Cell<usize>,
    /// Woken when `app_queue` drops to zero.
    app_idle: Notify,
    /// Set when the worker must exit at once (app raised SystemExit, INT/QUIT, abort).
    exit_now: Cell<Option<i32>>,
    /// Woken when `exit_now` is set.
    stop: Notify,
    date: Cell<(u64, [u8; 29])>,
}

impl Shared {
    /// Publishes the worker's resident memory for `--metrics-bind` (once per tick).
    pub fn report_rss(&self) {
        let Some(stats) = &self.stats else { return };
        if let Some(bytes) = crate::sys::resident_bytes() {
            stats.set_rss(bytes);
        }
    }

    pub fn keep_alive_allowed(&self) -> bool {
        self.lifecycle.get() == Lifecycle::Running && !self.settings.keepalive.is_zero()
    }

    /// Requests counted so far (`worker.nr`).
    pub fn requests_served(&self) -> u64 {
        self.requests.get()
    }

    /// Counts a request; the one that reaches `max_requests` starts draining, so it is answered
    /// with `Connection: close` and the worker exits after it.
    pub fn count_request(&self) {
        let n = self.requests.get() + 1;
        self.requests.set(n);
        let max = self.settings.max_requests;
        if max > 0 && n >= max && self.lifecycle.get() == Lifecycle::Running {
            log_info!("Autorestarting worker after current request.");
            self.start_draining();
        }
    }

    /// Ends the worker at once with `code` (in-flight requests are abandoned).
    pub fn exit_immediately(&self, code: i32) {
        if self.exit_now.get().is_none() {
            self.exit_now.set(Some(code));
        }
        self.start_draining();
        self.stop.notify_one();
    }

    pub fn start_draining(&self) {
        if self.lifecycle.get() == Lifecycle::Running {
            self.lifecycle.set(Lifecycle::Draining);
            self.drain.notify_waiters();
        }
    }

    /// The `Date` header value, formatted at most once per second.
    pub fn date(&self) -> [u8; 29] {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let (secs, text) = self.date.get();
        if secs == now && secs != 0 {
            return text;
        }
        let text = ferrocorn_http::response::http_date(now);
        self.date.set((now, text));
        text
    }
}

/// Why the app could not be loaded, with Gunicorn's worker exit status for each.
#[derive(Debug)]
pub enum LoadError {
    /// The module could not be imported (missing, syntax error, raised at import).
    Import(String),
    /// The module imported but the object is missing, not callable, or its factory failed.
    App(String),
}

impl LoadError {
    pub fn message(&self) -> &str {
        match self {
            LoadError::Import(m) | LoadError::App(m) => m,
        }
    }

    /// Gunicorn: an import failure is a boot error (3); a bad app object is APP_LOAD_ERROR (4).
    pub fn exit_code(&self) -> i32 {
        match self {
            LoadError::Import(_) => WORKER_BOOT_ERROR,
            LoadError::App(_) => APP_LOAD_ERROR,
        }
    }
}

/// Imports the app named by `uri` through `ferrocorn._app`.
pub fn load_app(py: Python<'_>, uri: &str) -> Result<Py<PyAny>, LoadError> {
    let module = py.import("ferrocorn._app").map_err(|e| LoadError::Import(format!("cannot import ferrocorn._app: {e}")))?;
    match module.call_method1("load", (uri,)) {
        Ok(app) => Ok(app.unbind()),
        Err(e) => {
            let is = |name: &str| module.getattr(name).map(|cls| e.is_instance(py, &cls)).unwrap_or(false);
            if is("AppImportError") {
                Err(LoadError::Import(e.value(py).to_string()))
            } else if is("AppLoadError") {
                Err(LoadError::App(e.value(py).to_string()))
            } else {
                Err(LoadError::App(crate::wsgi::format_exception(py, &e)))
            }
        }
    }
}

/// Runs a worker to completion; returns its exit status.
pub fn run(py: Python<'_>, spec: WorkerSpec) -> i32 {
    let hooks = spec.hooks.clone();
    let worker_obj = spec.worker.clone_ref(py);
    let code = boot_and_serve(py, spec);
    let _ = worker_obj.bind(py).setattr("alive", false);
    hooks.call(py, Hook::WorkerExit, (hooks.server.clone_ref(py), worker_obj));
    code
}

fn boot_and_serve(py: Python<'_>, spec: WorkerSpec) -> i32 {
    crate::sys::tune_malloc(spec.threads > 0);
    let inline = spec.class == class::WorkerClass::Sync;
    // The sync worker's app runs on this (main) thread, where Python-level handlers can
    // interrupt it: that is how INT/QUIT and a timed-out request (SIGABRT) get their hooks and a
    // clean exit. Their wake-up fd lets the idle event loop run them at once.
    let signal_wakeup = if inline {
        match install_sync_handlers(py, &spec) {
            Ok(fds) => Some(fds),
            Err(e) => {
                log_error!("Worker failed to boot: cannot install signal handlers: {e}");
                return WORKER_BOOT_ERROR;
            }
        }
    } else {
        None
    };
    // An event-loop class patches the standard library before the app is imported (with
    // --preload the app was imported in the master, unpatched, as in Gunicorn).
    let driver = match spec.class.driver() {
        Some(_) => match prepare_driver(py, spec.class) {
            Ok(d) => Some(d),
            Err(msg) => {
                log_error!("Worker failed to boot: {msg}");
                return WORKER_BOOT_ERROR;
            }
        },
        None => None,
    };
    let app = match spec.app {
        AppSource::Preloaded(app) => app,
        AppSource::Uri(uri) => match load_app(py, &uri) {
            Ok(app) => app,
            Err(e) => {
                log_error!("Exception in worker process\n{}", e.message());
                return e.exit_code();
            }
        },
    };
    let (app, kind) = match &driver {
        Some(d) => match adapt_app(py, d.bind(py), app) {
            Ok(pair) => pair,
            Err(msg) => {
                log_error!("{msg}");
                return APP_LOAD_ERROR;
            }
        },
        None => (app, AppKind::Wsgi),
    };
    let ctx = match WsgiContext::new(py, spec.wsgi) {
        Ok(c) => c,
        Err(e) => {
            log_error!("Worker failed to boot: {e}");
            return WORKER_BOOT_ERROR;
        }
    };
    let hooks = spec.hooks;
    let worker_obj = spec.worker;
    let _ = worker_obj.bind(py).setattr("app", app.clone_ref(py));
    let _ = worker_obj.bind(py).setattr("wsgi", app.clone_ref(py));
    let _ = worker_obj.bind(py).setattr("max_requests", spec.settings.max_requests);
    // Gunicorn treats a failing post_worker_init as a failed boot.
    if !hooks.call_checked(py, Hook::PostWorkerInit, (worker_obj.clone_ref(py),)) {
        return WORKER_BOOT_ERROR;
    }
    let _ = worker_obj.bind(py).setattr("booted", true);
    let settings = spec.settings;
    let listeners = spec.listeners;
    let access_log = spec.access_log;
    let access_capture = access_log.as_ref().map(AccessLog::environ_capture).unwrap_or_default();
    let heartbeat = spec.heartbeat;
    let stats = spec.stats;
    if let Some(s) = &stats {
        // A first reading right away, so a scrape never shows a booted worker with 0 bytes.
        if let Some(bytes) = crate::sys::resident_bytes() {
            s.set_rss(bytes);
        }
    }
    let threads = spec.threads;
    let reload = spec.reload;
    heartbeat.beat();
    heartbeat.mark_booted();
    let request_hooks = hooks.has(Hook::PreRequest) || hooks.has(Hook::PostRequest);
    let app_state = Arc::new(AppState { app, ctx, hooks, worker: worker_obj, request_hooks, access_capture, kind });
    let inbox = match &driver {
        Some(_) => match hub::Inbox::new() {
            Ok(i) => Some(i),
            Err(e) => {
                log_error!("Worker failed to boot: cannot create the event loop's wake-up pipe: {e}");
                return WORKER_BOOT_ERROR;
            }
        },
        None => None,
    };
    let engine_inbox = inbox.clone();

    let run_engine = move || {
        // However the engine thread ends (an early error, a panic, or a Shared still
        // referenced somewhere), the event loop on the main thread must be told to return, or
        // the worker would wait on its wake-up pipe forever with no engine left to serve.
        let _close_hub = engine_inbox.clone().map(hub::CloseOnDrop);
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                log_error!("Worker failed to boot: cannot start the I/O engine: {e}");
                return WORKER_BOOT_ERROR;
            }
        };
        let executor = if let Some(inbox) = engine_inbox {
            executor::Executor::hub(inbox, settings.worker_connections)
        } else if threads == 0 {
            executor::Executor::inline()
        } else {
            match executor::Executor::pool(threads) {
                Ok(e) => e,
                Err(e) => {
                    log_error!("Worker failed to boot: cannot start app threads: {e}");
                    return WORKER_BOOT_ERROR;
                }
            }
        };
        let shared = Rc::new(Shared {
            app: app_state,
            executor,
            settings,
            access_log,
            heartbeat,
            stats,
            lifecycle: Cell::new(Lifecycle::Running),
            drain: Notify::new(),
            requests: Cell::new(0),
            open: Cell::new(0),
            conn_closed: Notify::new(),
            app_queue: Cell::new(0),
            app_idle: Notify::new(),
            exit_now: Cell::new(None),
            stop: Notify::new(),
            date: Cell::new((0, [0; 29])),
        });
        let local = tokio::task::LocalSet::new();
        let code = local.block_on(&rt, engine(shared.clone(), listeners, reload, signal_wakeup));
        // Drop Python objects (the app, connection tasks' environs) with the GIL held.
        drop(local);
        drop(rt);
        Python::attach(|_py| drop(shared));
        code
    };
    match (driver, inbox) {
        (Some(driver), Some(inbox)) => run_with_loop(py, driver.bind(py), inbox, run_engine),
        _ => py.detach(run_engine),
    }
}

fn prepare_driver(py: Python<'_>, class: class::WorkerClass) -> Result<Py<PyAny>, String> {
    let Some((module, name)) = class.driver() else { return Err(format!("{} has no driver", class.name())) };
    let driver = py.import(module).and_then(|m| m.getattr(name)).map_err(|e| crate::wsgi::format_exception(py, &e))?;
    driver.call_method0("patch").map_err(|e| crate::wsgi::format_exception(py, &e))?;
    Ok(driver.unbind())
}

/// Lets the class's driver say what the app is: the tornado class serves a
/// `tornado.web.Application` natively and unwraps a `WSGIContainer` to its WSGI app.
fn adapt_app(py: Python<'_>, driver: &Bound<'_, PyAny>, app: Py<PyAny>) -> Result<(Py<PyAny>, AppKind), String> {
    let adapted = driver.call_method1("adapt", (app,)).map_err(|e| crate::wsgi::format_exception(py, &e))?;
    let (app, native): (Py<PyAny>, bool) = adapted.extract().map_err(|e| crate::wsgi::format_exception(py, &e))?;
    Ok((app, if native { AppKind::Tornado } else { AppKind::Wsgi }))
}

/// Runs the engine on its own thread while this (main) thread runs the class's event loop:
/// the app was imported here, so objects it created at import (sockets, locks bound to the
/// hub) belong to this thread's hub, and the loop sees the main thread it expects.
fn run_with_loop<F>(py: Python<'_>, driver: &Bound<'_, PyAny>, inbox: Arc<hub::Inbox>, engine: F) -> i32
where
    F: FnOnce() -> i32 + Send + 'static,
{
    let handle = match std::thread::Builder::new().name("ferrocorn-engine".into()).spawn(engine) {
        Ok(h) => h,
        Err(e) => {
            log_error!("Worker failed to boot: cannot start the I/O engine thread: {e}");
            return WORKER_BOOT_ERROR;
        }
    };
    if let Err(msg) = hub::serve(py, driver, inbox) {
        // Requests waiting on the loop can never finish: exit so the master starts a new
        // worker.
        crate::log_critical!("The worker's event loop stopped: {msg}");
        std::process::exit(1);
    }
    match py.detach(|| handle.join()) {
        Ok(code) => code,
        Err(_) => {
            crate::log_critical!("the I/O engine thread panicked");
            1
        }
    }
}

/// The read end of the sync worker's Python signal wake-up pipe (and the write end, kept open).
type SignalWakeup = (std::os::fd::OwnedFd, std::os::fd::OwnedFd);

fn install_sync_handlers(py: Python<'_>, spec: &WorkerSpec) -> Result<SignalWakeup, String> {
    use std::os::fd::AsRawFd;
    let (read, write) = crate::sys::pipe().map_err(|e| e.to_string())?;
    let cfg = spec.hooks.cfg.bind(py);
    let hook = |name: &str| cfg.getattr(name).unwrap_or_else(|_| py.None().into_bound(py));
    py.import("ferrocorn._hooks")
        .and_then(|m| {
            m.call_method1(
                "install_sync_handlers",
                (
                    spec.worker.bind(py),
                    hook("worker_int"),
                    hook("worker_abort"),
                    write.as_raw_fd(),
                    stuck::running_for(py, spec.heartbeat.clone())?,
                ),
            )
        })
        .map_err(|e| crate::wsgi::format_exception(py, &e))?;
    Ok((read, write))
}

/// Runs the Python signal handlers queued by the sync worker's wake-up fd; a handler that
/// raised SystemExit ends the worker with its status.
async fn run_python_signal_handlers(sh: Rc<Shared>, wakeup: SignalWakeup) {
    let (read, _write) = wakeup;
    // SAFETY: `read` is an OwnedFd moved into the AsyncFd, so it stays open and refers to the
    // same pipe for the AsyncFd's whole life, and its as_raw_fd never changes.
    let Ok(afd) = (unsafe { tokio::io::unix::AsyncFd::register(read) }) else { return };
    loop {
        let Ok(mut guard) = afd.readable().await else { return };
        crate::sys::drain_pipe(afd.get_ref());
        guard.clear_ready();
        let outcome = Python::attach(|py| py.check_signals().map_err(|e| crate::wsgi::AppFailure::from_err(py, e)));
        match outcome {
            Ok(()) => {}
            Err(crate::wsgi::AppFailure::Exit(code)) => sh.exit_immediately(code),
            Err(_) => log_error!("a signal handler raised; see above"),
        }
    }
}

async fn engine(
    sh: Rc<Shared>,
    listeners: Vec<Listener>,
    reload: Option<Vec<PathBuf>>,
    signal_wakeup: Option<SignalWakeup>,
) -> i32 {
    let inline = signal_wakeup.is_some();
    if let Some(w) = signal_wakeup {
        tokio::task::spawn_local(run_python_signal_handlers(sh.clone(), w));
    }
    for l in listeners {
        match l.into_kind() {
            ListenerKind::Tcp(std_l) => {
                let server = std_l.local_addr().ok().map(|a| Arc::new((a.ip().to_string(), a.port().to_string())));
                if std_l.set_nonblocking(true).is_err() {
                    continue;
                }
                match tokio::net::TcpListener::from_std(std_l) {
                    Ok(tl) => {
                        tokio::task::spawn_local(accept_tcp(tl, server, sh.clone()));
                    }
                    Err(e) => log_error!("cannot watch a listener: {e}"),
                }
            }
            ListenerKind::Unix { listener, .. } => {
                if listener.set_nonblocking(true).is_err() {
                    continue;
                }
                match tokio::net::UnixListener::from_std(listener) {
                    Ok(ul) => {
                        tokio::task::spawn_local(accept_unix(ul, sh.clone()));
                    }
                    Err(e) => log_error!("cannot watch a listener: {e}"),
                }
            }
        }
    }

    // Heartbeat: runs whenever the event loop is free, so a request stuck in the app stops it.
    {
        let sh = sh.clone();
        tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(sh.settings.tick);
            loop {
                tick.tick().await;
                sh.executor.responsive().await;
                sh.heartbeat.beat();
                sh.report_rss();
                // Normally the parent-death signal covers this; a check per tick is cheap.
                if sh.settings.master_pid != 0 && crate::sys::getppid() != sh.settings.master_pid {
                    sh.start_draining();
                }
            }
        });
    }
    if let Some(extra) = reload {
        tokio::task::spawn_local(reload::watch(sh.clone(), extra));
    }

    spawn_signal_watchers(&sh, inline);

    // Set when draining starts; `None` inside when graceful_timeout is too far away to add.
    let mut drain_deadline: Option<Option<tokio::time::Instant>> = None;
    loop {
        if let Some(code) = sh.exit_now.get() {
            return code;
        }
        if sh.lifecycle.get() == Lifecycle::Draining {
            if sh.open.get() == 0 {
                break;
            }
            let deadline =
                *drain_deadline.get_or_insert_with(|| tokio::time::Instant::now().checked_add(sh.settings.graceful_timeout));
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                log_warning!("graceful timeout: closing {} connection(s) still open", sh.open.get());
                break;
            }
        }
        let wake_at = drain_deadline.flatten().unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = sh.stop.notified() => {}
            _ = sh.conn_closed.notified() => {}
            _ = sh.drain.notified() => {}
            _ = tokio::time::sleep_until(wake_at) => {}
        }
    }
    0
}

fn spawn_signal_watchers(sh: &Rc<Shared>, inline: bool) {
    use tokio::signal::unix::{SignalKind, signal};
    let watch = |kind: SignalKind, f: fn(&Shared)| match signal(kind) {
        Ok(mut s) => {
            let sh = sh.clone();
            tokio::task::spawn_local(async move {
                while s.recv().await.is_some() {
                    f(&sh);
                }
            });
        }
        Err(e) => log_warning!("cannot watch signal {kind:?}: {e}"),
    };
    watch(SignalKind::terminate(), |sh| {
        drain::server_stopping();
        sh.start_draining();
    });
    if inline {
        // INT, QUIT and ABRT have Python-level handlers in the sync worker (see
        // install_sync_handlers).
        watch(SignalKind::user_defined1(), reopen_logs);
        return;
    }
    // INT/QUIT: worker_int, then exit at once (Gunicorn's quick shutdown).
    let quit: fn(&Shared) = |sh| {
        Python::attach(|py| {
            let hooks = &sh.app.hooks;
            let _ = sh.app.worker.bind(py).setattr("alive", false);
            hooks.call(py, Hook::WorkerInt, (sh.app.worker.clone_ref(py),));
        });
        sh.exit_immediately(0);
    };
    watch(SignalKind::interrupt(), quit);
    watch(SignalKind::quit(), quit);
    if !inline {
        // App threads can't be interrupted; the I/O thread is free to run worker_abort.
        watch(SignalKind::from_raw(libc::SIGABRT), |sh| {
            Python::attach(|py| {
                let hooks = &sh.app.hooks;
                let w = sh.app.worker.bind(py);
                let _ = w.setattr("alive", false);
                let _ = w.setattr("aborted", true);
                stuck::report_threads(py);
                hooks.call(py, Hook::WorkerAbort, (sh.app.worker.clone_ref(py),));
            });
            sh.exit_immediately(1);
        });
    }
    watch(SignalKind::user_defined1(), reopen_logs);
}

fn reopen_logs(sh: &Shared) {
    if let Err(e) = crate::log::reopen() {
        log_error!("cannot reopen the error log: {e}");
    }
    if let Some(access) = &sh.access_log {
        if let Err(e) = access.reopen() {
            log_error!("cannot reopen the access log: {e}");
        }
    }
}

/// Tracks an open connection for `worker_connections` and graceful stop.
struct OpenGuard(Rc<Shared>);

impl OpenGuard {
    fn new(sh: &Rc<Shared>) -> OpenGuard {
        sh.open.set(sh.open.get() + 1);
        OpenGuard(sh.clone())
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.set(self.0.open.get() - 1);
        // Every waiter, not one: the accept loop (waiting for a free `worker_connections` slot)
        // and the worker's main loop (waiting for the last connection while draining) both wait
        // on this, and `notify_one` woke whichever had registered first, so the accept loop could
        // sleep on while the backlog filled. No wake-up is lost for want of a stored permit: the
        // engine is single-threaded, and each waiter checks `open` and registers in one poll.
        self.0.conn_closed.notify_waiters();
    }
}

/// How long a busy sync worker defers accepting (see `wait_for_capacity`).
const ACCEPT_WHEN_BUSY: Duration = Duration::from_millis(100);
/// How long a gthread worker with a connection per thread defers accepting.
const ACCEPT_WHEN_FULL: Duration = Duration::from_millis(5);

/// Counts a complete request from the moment it waits for the app until its response is done.
pub struct AppQueueGuard<'a>(&'a Shared);

impl<'a> AppQueueGuard<'a> {
    pub fn new(sh: &'a Shared) -> AppQueueGuard<'a> {
        sh.app_queue.set(sh.app_queue.get() + 1);
        AppQueueGuard(sh)
    }
}

impl Drop for AppQueueGuard<'_> {
    fn drop(&mut self) {
        let n = self.0.app_queue.get() - 1;
        self.0.app_queue.set(n);
        if self.0.executor.app_lanes().is_some_and(|lanes| n < lanes) {
            self.0.app_idle.notify_waiters();
        }
    }
}

/// Waits until a connection slot is free; false when the worker started draining.
///
/// The sync class serves one request at a time and gthread one per thread, so they also wait
/// while every lane has a complete request: otherwise the first worker to wake would accept a
/// whole burst of keep-alive connections and queue them behind its busy lanes while the other
/// workers idle. Connections still receiving their request do not count, so slow clients never
/// stop the worker accepting.
async fn wait_for_capacity(sh: &Shared) -> bool {
    if let Some(lanes) = sh.executor.app_lanes() {
        // Bounded: a worker kept busy by its keep-alive clients still takes one new connection
        // every ACCEPT_WHEN_BUSY, so connections waiting in the backlog are never starved.
        let deadline = tokio::time::Instant::now() + ACCEPT_WHEN_BUSY;
        while sh.app_queue.get() >= lanes && tokio::time::Instant::now() < deadline {
            if sh.lifecycle.get() != Lifecycle::Running {
                return false;
            }
            tokio::select! {
                _ = sh.app_idle.notified() => {}
                _ = sh.drain.notified() => return false,
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
        // A burst of new keep-alive connections arrives before any of their requests, so the
        // check above cannot see it: a gthread worker already holding a connection per thread
        // also gives the other workers a moment to take the next one. Short, because idle
        // keep-alive connections cost no thread and may be all it holds.
        if lanes > 1 && sh.open.get() >= lanes {
            tokio::select! {
                _ = sh.conn_closed.notified() => {}
                _ = sh.drain.notified() => return false,
                _ = tokio::time::sleep(ACCEPT_WHEN_FULL) => {}
            }
        }
    }
    while sh.open.get() >= sh.settings.worker_connections {
        if sh.lifecycle.get() != Lifecycle::Running {
            return false;
        }
        tokio::select! {
            _ = sh.conn_closed.notified() => {}
            _ = sh.drain.notified() => return false,
        }
    }
    sh.lifecycle.get() == Lifecycle::Running
}

async fn accept_tcp(listener: tokio::net::TcpListener, server: Option<Arc<(String, String)>>, sh: Rc<Shared>) {
    let mut errors = AcceptErrors::default();
    loop {
        if !wait_for_capacity(&sh).await {
            break;
        }
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = sh.drain.notified() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let conn = ConnInfo::new(Peer::Tcp(peer), server.clone());
                start_connection(stream, conn, &sh).await;
            }
            Err(e) => accept_error(e, &mut errors).await,
        }
    }
    drain::tcp_backlog(listener, server, &sh).await;
}

async fn accept_unix(listener: tokio::net::UnixListener, sh: Rc<Shared>) {
    let mut errors = AcceptErrors::default();
    loop {
        if !wait_for_capacity(&sh).await {
            break;
        }
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = sh.drain.notified() => break,
        };
        match accepted {
            Ok((stream, _)) => {
                let conn = ConnInfo::new(Peer::Unix, None);
                start_connection(stream, conn, &sh).await;
            }
            Err(e) => accept_error(e, &mut errors).await,
        }
    }
    drain::unix_backlog(listener, &sh).await;
}

/// Hands an accepted connection to its own task. The sync and gthread classes then yield, so
/// the new connection reads its request before another is accepted (see `wait_for_capacity`).
async fn start_connection<S>(stream: S, conn: ConnInfo, sh: &Rc<Shared>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + writer::DirectIo + std::os::fd::AsRawFd + Unpin + 'static,
{
    let guard = OpenGuard::new(sh);
    let sh2 = sh.clone();
    tokio::task::spawn_local(async move {
        serve_stream(stream, conn, sh2).await;
        drop(guard);
    });
    if sh.executor.app_lanes().is_some() {
        tokio::task::yield_now().await;
    }
}

/// Serves one accepted connection, first completing the TLS handshake when TLS is on. The
/// handshake runs here, in the connection's own task with its own deadline, so a slow or silent
/// client holds only its own slot (Gunicorn wraps the socket the same way, then reads any PROXY
/// header inside TLS).
async fn serve_stream<S>(stream: S, mut conn: ConnInfo, sh: Rc<Shared>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + writer::DirectIo + std::os::fd::AsRawFd + Unpin,
{
    let Some(tls) = sh.settings.tls.clone() else {
        return conn::serve(stream, conn, sh).await;
    };
    match tls.handshake(stream).await {
        Ok(s) => {
            conn.tls = true;
            conn::serve(s, conn, sh).await;
        }
        Err(e) => crate::log_debug!("{e} ({})", conn::peer_text(&conn.peer)),
    }
}

/// Accept failures are transient (another worker won the race, or fds ran out): back off.
async fn accept_error(e: std::io::Error, errors: &mut AcceptErrors) {
    if e.kind() != std::io::ErrorKind::WouldBlock {
        errors.report(&e, std::time::Instant::now());
        tokio::time::sleep(ACCEPT_RETRY).await;
    }
}

/// How long the accept loop waits after a failure before trying again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// At most one accept() warning per listener this often. Out of file descriptors, accept fails
/// on every retry, and a line per retry (ten a second per worker) buries the rest of the log.
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(10);

/// The accept() warnings of one listener: the first is logged, then one per
/// `ACCEPT_WARN_EVERY` saying how many were held back since.
#[derive(Debug, Default)]
struct AcceptErrors {
    last_logged: Option<std::time::Instant>,
    held_back: u64,
}

impl AcceptErrors {
    /// Logs `e` unless a warning went out less than `ACCEPT_WARN_EVERY` ago; true if logged.
    fn report(&mut self, e: &std::io::Error, now: std::time::Instant) -> bool {
        if self.last_logged.is_some_and(|t| now.saturating_duration_since(t) < ACCEPT_WARN_EVERY) {
            self.held_back = self.held_back.saturating_add(1);
            return false;
        }
        match self.held_back {
            0 => log_warning!("accept() failed: {e}"),
            n => {
                log_warning!("accept() failed: {e} ({n} more failure(s) in the last {}s not logged)", ACCEPT_WARN_EVERY.as_secs())
            }
        }
        self.last_logged = Some(now);
        self.held_back = 0;
        true
    }
}

/// Shared-memory heartbeat slots for up to this many live workers.
pub const MAX_WORKER_SLOTS: usize = 4096;

pub fn new_slots() -> std::io::Result<Arc<crate::sys::SharedSlots>> {
    crate::sys::SharedSlots::new(2 * MAX_WORKER_SLOTS).map(Arc::new)
}

#[cfg(test)]
mod accept_error_tests {
    use super::*;
    use std::time::Instant;

    /// `workers` may not ask for more workers than the master has heartbeat slots.
    #[test]
    fn workers_bound_matches_heartbeat_slots() {
        use crate::config::{Key, Kind, setting};
        let Kind::IntRange(_, hi) = setting(Key::Workers).kind else { panic!("workers has no range") };
        assert_eq!(usize::try_from(hi).unwrap(), MAX_WORKER_SLOTS);
    }

    #[test]
    fn fd_exhaustion_warns_once_per_period() {
        let mut errors = AcceptErrors::default();
        let e = std::io::Error::from_raw_os_error(libc::EMFILE);
        let t0 = Instant::now();
        assert!(errors.report(&e, t0), "the first failure is logged");
        // Ten retries a second for a whole period: all held back.
        let logged = (1..100u64).filter(|i| errors.report(&e, t0 + ACCEPT_RETRY * u32::try_from(*i).unwrap())).count();
        assert_eq!(logged, 0);
        assert_eq!(errors.held_back, 99);
        assert!(errors.report(&e, t0 + ACCEPT_WARN_EVERY), "one line per period, counting the others");
        assert_eq!(errors.held_back, 0);
    }
}

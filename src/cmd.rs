//! The `ferrocorn` command from argv to exit status: load the config, prepare the process
//! (chdir, sys.path, environment), bind, optionally preload the app, then run the master.

use crate::arbiter::{Arbiter, ControlSpec, MasterSpec, Outcome, Rebuild, RecycleSpec};
use crate::config::{self, Command, Config, Key};
use crate::hooks::Hooks;
use crate::log;
use crate::sock::{self, BindAddr, BindOptions};
use crate::worker::class::WorkerClass;
use crate::worker::{self, WorkerSettings};
use crate::wsgi::{AllowList, WsgiSettings};
use ferrocorn_http::{HeaderMap, ParseOptions};
use pyo3::prelude::*;
use std::sync::Arc;
use std::time::Duration;

/// Bodies up to this size stay in memory; larger ones spill to a temp file.
const SPILL_THRESHOLD: usize = 1024 * 1024;

pub fn main(py: Python<'_>, argv: Vec<String>) -> i32 {
    let command = match config::load(py, &argv) {
        Ok(c) => c,
        Err(e) => {
            // ConfigError's Display is the whole message, "Error: " included.
            eprintln!("{e}");
            return 1;
        }
    };
    match command {
        Command::Exit(code) => code,
        Command::Check(cfg) => check(py, &cfg),
        Command::Run(cfg) => serve(py, cfg, argv),
    }
}

/// Problems found before anything is started; printed as `Error: ...` and exit 1.
fn preflight(py: Python<'_>, cfg: &Config) -> Result<String, String> {
    let unsupported = cfg.unsupported_in_use();
    if !unsupported.is_empty() {
        return Err(format!(
            "{} {} not supported yet by ferrocorn {}; remove {} from the configuration",
            if unsupported.len() == 1 { "setting" } else { "settings" },
            unsupported.join(", "),
            env!("CARGO_PKG_VERSION"),
            if unsupported.len() == 1 { "it" } else { "them" },
        ));
    }
    let class = worker_class(cfg)?;
    check_class_library(py, class)?;
    if cfg.bool(Key::Reload) && cfg.bool(Key::Preload) {
        return Err("--reload cannot be used with --preload: a preloaded app lives in the master, so \
                    new code would never be loaded; drop one of them"
            .into());
    }
    let uri = app_uri(py, cfg)?;
    prepare_process(py, cfg)?;
    // Import what workers run in Python now, in the master: it is shared copy-on-write, and a
    // worker that drops privileges (-u/-g) may no longer be able to read the interpreter's
    // own files to import them later.
    for module in ["ferrocorn._app", "ferrocorn._hooks"] {
        py.import(module).map_err(|e| format!("cannot import {module}: {e}"))?;
    }
    Ok(uri)
}

/// What `ferrocorn._app.load` is given: the `wsgi_app`, or for `--paste` the absolute config
/// URI behind the prefix `paste:` (no module target can start with `/`). PasteDeploy and the
/// `raw_paste_global_conf` values are checked here, in the master, so a missing package or a
/// bad value stops the server at start with a message naming it.
fn app_uri(py: Python<'_>, cfg: &Config) -> Result<String, String> {
    let Some(paste) = cfg.str(Key::Paste).filter(|s| !s.is_empty()) else {
        return match cfg.str(Key::WsgiApp).filter(|s| !s.is_empty()) {
            Some(uri) => Ok(uri.to_string()),
            None => Err("No application module specified.".into()),
        };
    };
    let abs = std::path::absolute(paste).map_err(|e| format!("--paste {paste:?}: {e}"))?;
    let module = py.import("ferrocorn._app").map_err(|e| format!("cannot import ferrocorn._app: {e}"))?;
    module.call_method1("prepare_paste", (cfg.list(Key::RawPasteGlobalConf).to_vec(),)).map_err(|e| e.value(py).to_string())?;
    Ok(format!("paste:{}", abs.display()))
}

/// `--chdir`, `--pythonpath` and `-e/--env`, applied before the app is imported.
fn prepare_process(py: Python<'_>, cfg: &Config) -> Result<(), String> {
    if let Some(dir) = cfg.str(Key::Chdir) {
        std::env::set_current_dir(dir).map_err(|e| format!("cannot change directory to {dir:?} (--chdir): {e}"))?;
    }
    let sys = py.import("sys").map_err(|e| e.to_string())?;
    let path = sys.getattr("path").map_err(|e| e.to_string())?;
    let cwd = std::env::current_dir().map(|p| p.display().to_string()).unwrap_or_default();
    // Like Gunicorn, the working directory is importable first, then --pythonpath entries.
    let mut front: Vec<String> = vec![cwd];
    if let Some(p) = cfg.str(Key::Pythonpath) {
        for part in p.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            front.push(part.to_string());
        }
    }
    for (i, p) in front.iter().enumerate() {
        path.call_method1("insert", (i, p)).map_err(|e| e.to_string())?;
    }
    let environ = py.import("os").and_then(|os| os.getattr("environ")).map_err(|e| e.to_string())?;
    for entry in cfg.list(Key::RawEnv) {
        // The table's validator guarantees KEY=VALUE.
        let (k, v) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
        environ.set_item(k, v).map_err(|e| format!("cannot set {k} from -e/--env: {e}"))?;
    }
    Ok(())
}

/// The `-k` class, with `--threads` > 1 turning sync into gthread (as Gunicorn does).
fn worker_class(cfg: &Config) -> Result<WorkerClass, String> {
    crate::compat::worker_class(cfg)
}

/// Imports the class's driver module in the master, as Gunicorn imports its worker class: a
/// missing gevent/eventlet/tornado is reported once, at start, with the command that fixes it.
fn check_class_library(py: Python<'_>, class: WorkerClass) -> Result<(), String> {
    let Some((module, _)) = class.driver() else { return Ok(()) };
    match py.import(module) {
        Ok(_) => Ok(()),
        Err(e) => {
            let missing = py
                .import("ferrocorn.workers")
                .and_then(|m| m.getattr("MissingLibrary"))
                .map(|cls| e.is_instance(py, &cls))
                .unwrap_or(false);
            if missing {
                Err(e.value(py).to_string())
            } else {
                Err(format!("cannot load the {} worker class:\n{}", class.name(), crate::wsgi::format_exception(py, &e)))
            }
        }
    }
}

fn check(py: Python<'_>, cfg: &Config) -> i32 {
    let uri = match preflight(py, cfg) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    match worker::load_app(py, &uri) {
        Ok(_) => 0,
        Err(e) => {
            eprintln!("Error: {}", e.message());
            1
        }
    }
}

/// What a duration setting past `NO_LIMIT_SECS` becomes where a `Duration` is needed: far
/// enough to never arrive, near enough that `Instant + FOREVER` cannot overflow.
const FOREVER: Duration = Duration::from_secs(config::NO_LIMIT_SECS.unsigned_abs());

fn serve(py: Python<'_>, cfg: Config, argv: Vec<String>) -> i32 {
    let uri = match preflight(py, &cfg) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    let access_log = match log::configure(py, &cfg) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    note_settings(&cfg);
    let _ = crate::sys::ignore_signal(libc::SIGPIPE);
    crate::sys::set_umask(cfg.int_as(Key::Umask));
    if cfg.bool(Key::Daemon) {
        if let Err(e) = daemonize(py, cfg.bool(Key::EnableStdioInheritance)) {
            crate::log_error!("cannot detach into the background (--daemon): {e}");
            return 1;
        }
    }

    let preloaded = if cfg.bool(Key::Preload) {
        match worker::load_app(py, &uri) {
            Ok(app) => Some(app),
            Err(e) => {
                crate::log_error!("{}", e.message());
                return e.exit_code();
            }
        }
    } else {
        None
    };

    let spec = match build_spec(py, &cfg, uri, preloaded.as_ref().map(|a| a.clone_ref(py)), None, access_log) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    let server = spec.hooks.server.clone_ref(py);
    let rebuild: Rebuild = Box::new(move |py| {
        let cfg = match config::load(py, &argv) {
            Ok(Command::Run(cfg)) => cfg,
            Ok(_) => return Err("the command line no longer describes a server to run".into()),
            Err(e) => return Err(e.to_string()),
        };
        let uri = app_uri(py, &cfg)?;
        // Gunicorn resets the environment it changed, then applies the new -e values.
        if let Ok(environ) = py.import("os").and_then(|os| os.getattr("environ")) {
            for entry in cfg.list(Key::RawEnv) {
                let (k, v) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
                let _ = environ.set_item(k, v);
            }
        }
        let access_log = log::configure(py, &cfg)?;
        build_spec(py, &cfg, uri, preloaded.as_ref().map(|a| a.clone_ref(py)), Some(&server), access_log)
    });
    let arbiter = match Arbiter::new(spec, rebuild) {
        Ok(a) => a,
        Err(e) => {
            crate::log_error!("cannot start the master: {e}");
            return 1;
        }
    };
    match arbiter.run(py) {
        Outcome::Master(code) | Outcome::Worker(code) => code,
    }
}

/// Turns the effective settings into what the master needs. Called at start and on HUP.
fn build_spec(
    py: Python<'_>,
    cfg: &Config,
    uri: String,
    preloaded: Option<Py<PyAny>>,
    server: Option<&Py<PyAny>>,
    access_log: Option<(String, String)>,
) -> Result<MasterSpec, String> {
    let mut binds = Vec::new();
    for b in cfg.list(Key::Bind) {
        binds.push(sock::parse_bind(b).map_err(|e| format!("{e} (-b/--bind)"))?);
    }
    let bind_opts =
        BindOptions { backlog: cfg.int_as(Key::Backlog), reuse_port: cfg.bool(Key::ReusePort), ..BindOptions::default() };
    let forwarded_allow =
        AllowList::parse(cfg.list(Key::ForwardedAllowIps)).map_err(|e| format!("invalid forwarded_allow_ips: {e}"))?;
    let proxy_allow = AllowList::parse(cfg.list(Key::ProxyAllowIps)).map_err(|e| format!("invalid proxy_allow_ips: {e}"))?;
    let wire = match cfg.str(Key::Protocol) {
        Some("uwsgi") => worker::Wire::Uwsgi(
            AllowList::parse(cfg.list(Key::UwsgiAllowIps)).map_err(|e| format!("invalid uwsgi_allow_ips: {e}"))?,
        ),
        _ => worker::Wire::Http,
    };
    let num_workers = cfg.int_as::<usize>(Key::Workers).max(1);
    let metrics_bind = match cfg.str(Key::MetricsBind).map(sock::parse_bind).transpose() {
        Ok(None) => None,
        Ok(Some(BindAddr::Tcp { host, port })) => Some((host, port)),
        Ok(Some(other)) => return Err(format!("--metrics-bind takes HOST:PORT, not {other}")),
        Err(e) => return Err(format!("{e} (--metrics-bind)")),
    };
    let control = control_spec(cfg)?;
    let class = worker_class(cfg)?;
    // gthread runs the app on a pool; sync runs it inline on the I/O thread; the event-loop
    // classes ignore --threads, as in Gunicorn.
    let threads = if class == WorkerClass::Gthread { cfg.int_as::<usize>(Key::Threads).max(1) } else { 0 };
    // Certificates and keys are checked before anything is bound (and again on HUP, which is how
    // certificates are reloaded): a bad path or a key that does not match its certificate stops
    // the server at start, or keeps the running configuration on HUP.
    let tls = crate::tls::TlsSettings::from_config(py, cfg)
        .and_then(|s| s.map(|s| crate::tls::Tls::load(py, s)).transpose())
        .map_err(|e| e.to_string())?;
    let forwarder_headers: Vec<String> = cfg.list(Key::ForwarderHeaders).iter().map(|s| s.trim().to_string()).collect();
    let wsgi = WsgiSettings {
        server_software: crate::compat::server_names(py).1,
        multithread: class.multithread(),
        multiprocess: num_workers > 1,
        script_name: std::env::var("SCRIPT_NAME").unwrap_or_default(),
        forwarded_allow: forwarded_allow.clone(),
        secure_scheme_headers: cfg.pairs(Key::SecureSchemeHeaders).to_vec(),
        forwarder_headers: forwarder_headers.clone(),
    };

    // 0 and "no limit" both turn the timeout off; either way nothing adds it to an Instant.
    let timeout = cfg.duration(Key::Timeout).filter(|t| !t.is_zero());
    // `None`: workers may take as long as they like to drain.
    let graceful_timeout = cfg.duration(Key::GracefulTimeout);
    let header_map = match cfg.str(Key::HeaderMap).unwrap_or("drop") {
        "refuse" => HeaderMap::Refuse,
        "dangerous" => HeaderMap::Dangerous,
        _ => HeaderMap::Drop,
    };
    let parse = ParseOptions {
        limit_request_line: cfg.int_as(Key::LimitRequestLine),
        limit_request_fields: cfg.int_as(Key::LimitRequestFields),
        limit_request_field_size: cfg.int_as(Key::LimitRequestFieldSize),
        permit_obsolete_folding: cfg.bool(Key::PermitObsoleteFolding),
        strip_header_spaces: cfg.bool(Key::StripHeaderSpaces),
        permit_unconventional_http_method: cfg.bool(Key::PermitUnconventionalHttpMethod),
        permit_unconventional_http_version: cfg.bool(Key::PermitUnconventionalHttpVersion),
        casefold_http_method: cfg.bool(Key::CasefoldHttpMethod),
        header_map,
        forwarder_headers: Vec::new(),
    };
    let parse_trusted =
        ParseOptions { forwarder_headers: forwarder_headers.iter().map(|n| n.as_bytes().into()).collect(), ..parse.clone() };
    let worker_settings = WorkerSettings {
        parse,
        keepalive: cfg.duration(Key::Keepalive).unwrap_or(FOREVER),
        io_timeout: timeout,
        // The sync class runs the app on the engine's thread: nothing could answer meanwhile,
        // and `timeout` already covers it (see note_settings).
        request_timeout: cfg.duration(Key::RequestTimeout).filter(|t| !t.is_zero() && class != WorkerClass::Sync),
        max_requests: cfg.int_as(Key::MaxRequests),
        worker_connections: cfg.int_as::<usize>(Key::WorkerConnections).max(1),
        wire,
        proxy_protocol: worker::ProxyMode::from_setting(cfg.str(Key::ProxyProtocol).unwrap_or("off")),
        proxy_allow,
        forwarded_allow,
        parse_trusted,
        tls,
        spill_threshold: SPILL_THRESHOLD,
        tmp_upload_dir: cfg.str(Key::TmpUploadDir).map(std::path::PathBuf::from),
        sendfile: cfg.bool(Key::Sendfile),
        server_header: crate::compat::server_names(py).0,
        graceful_timeout: graceful_timeout.unwrap_or(FOREVER),
        master_pid: 0,
        // Beat four times per timeout, so a worker is never judged on a stale beat.
        tick: timeout.map_or(Duration::from_secs(1), |t| (t / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))),
    };
    // With --paste the processes are named after the ini file (Gunicorn's default_proc_name),
    // not the internal `paste:` URI.
    let fallback = if cfg.str(Key::Paste).is_some() { cfg.str(Key::DefaultProcName) } else { None };
    let proc_name = cfg.str(Key::ProcName).or(fallback).map(str::to_string).unwrap_or_else(|| uri.clone());
    let hooks = Hooks::new(py, cfg, &proc_name, &uri, server).map_err(|e| format!("cannot prepare server hooks: {e}"))?;
    let reload = if cfg.bool(Key::Reload) {
        Some(cfg.list(Key::ReloadExtraFiles).iter().map(std::path::PathBuf::from).collect())
    } else {
        None
    };
    Ok(MasterSpec {
        binds,
        bind_opts,
        num_workers,
        worker_class: class.name().to_string(),
        class,
        app_uri: uri,
        preloaded,
        worker_settings,
        max_requests_jitter: cfg.int_as(Key::MaxRequestsJitter),
        wsgi,
        access_log,
        timeout,
        graceful_timeout,
        pidfile: cfg.str(Key::Pidfile).map(std::path::PathBuf::from),
        proc_name,
        threads,
        daemon: cfg.bool(Key::Daemon),
        hooks: Arc::new(hooks),
        uid: cfg.int_as(Key::User),
        gid: cfg.int_as(Key::Group),
        initgroups: cfg.bool(Key::Initgroups),
        reload,
        metrics_bind,
        control,
        config_snapshot: crate::arbiter::config_snapshot(cfg),
        recycle: RecycleSpec {
            max_rss_mib: cfg.int_as(Key::MaxWorkerRss),
            rss_jitter_mib: cfg.int_as(Key::MaxWorkerRssJitter),
            // A lifetime too long to mean anything is no lifetime limit (zero turns it off).
            max_lifetime: cfg.duration(Key::MaxWorkerLifetime).unwrap_or(Duration::ZERO),
            lifetime_jitter: cfg.duration(Key::MaxWorkerLifetimeJitter).unwrap_or(Duration::ZERO),
        },
        backlog_metric: cfg.bool(Key::EnableBacklogMetric),
    })
}

/// Start-up notes about settings that are accepted but worth a word in the log.
fn note_settings(cfg: &Config) {
    if cfg.is_set(Key::HttpParser) {
        crate::log_debug!(
            "http_parser = {}: ferrocorn always uses its own strict HTTP parser",
            cfg.str(Key::HttpParser).unwrap_or("auto")
        );
    }
    if cfg.duration(Key::RequestTimeout).is_some_and(|t| !t.is_zero()) && worker_class(cfg) == Ok(WorkerClass::Sync) {
        crate::log_warning!(
            "request_timeout is ignored by the sync worker class: its worker runs one request at a time, \
             and `timeout` already answers it 500 and replaces the worker"
        );
    }
    // Each connection is a file descriptor: past the limit accept() fails with EMFILE, and the
    // connections wait in the backlog, however high worker_connections is.
    let connections: u64 = cfg.int_as(Key::WorkerConnections);
    if let Some(limit) = crate::sys::open_files_limit().filter(|l| connections > *l) {
        crate::log_warning!(
            "worker_connections ({connections}) is more than the open files limit ({limit}, `ulimit -n`): \
             a worker runs out of file descriptors before it reaches worker_connections; raise the limit \
             or lower worker_connections"
        );
    }
}

/// `control_socket` made absolute against the working directory (as Gunicorn does), with its
/// mode; `None` under `control_socket_disable`.
fn control_spec(cfg: &Config) -> Result<Option<ControlSpec>, String> {
    if cfg.bool(Key::ControlSocketDisable) {
        return Ok(None);
    }
    let raw = cfg.int(Key::ControlSocketMode);
    let mode = u32::try_from(raw)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("Invalid value for control_socket_mode: {raw:#o}: permission bits run from 0 to 0o777"))?;
    let Some(path) = cfg.str(Key::ControlSocket).filter(|p| !p.is_empty()) else {
        return Err("Invalid value for control_socket: an empty path (use --no-control-socket to turn it off)".into());
    };
    let path = std::path::PathBuf::from(path);
    let path = if path.is_absolute() {
        path
    } else {
        std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?.join(path)
    };
    Ok(Some(ControlSpec { path, mode }))
}

/// Detaches from the terminal the classic way (fork, setsid, fork), as Gunicorn's `--daemon`
/// does, with Python's `os.fork` so at-fork hooks run. Standard streams go to /dev/null.
fn daemonize(py: Python<'_>, inherit_stdio: bool) -> PyResult<()> {
    let os = py.import("os")?;
    for step in 0..2 {
        let pid: i32 = os.call_method0("fork")?.extract()?;
        if pid != 0 {
            os.call_method1("_exit", (0,))?;
        }
        if step == 0 {
            os.call_method0("setsid")?;
        }
    }
    crate::sys::set_umask(0o22);
    // `--enable-stdio-inheritance` keeps stdout/stderr that the shell redirected to a file.
    if inherit_stdio {
        crate::sys::stdio_inherit_redirected()?;
    } else {
        crate::sys::stdio_to_devnull()?;
    }
    Ok(())
}

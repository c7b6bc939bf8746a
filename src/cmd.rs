//! The `ferrocorn` command from argv to exit status: load the config, prepare the process
//! (chdir, sys.path, environment), bind, optionally preload the app, then run the master.

use crate::arbiter::{Arbiter, MasterSpec, Outcome};
use crate::config::{self, Command, Config, Key};
use crate::log::{self, Level};
use crate::sock::{self, BindOptions};
use crate::worker::{self, WorkerSettings};
use crate::wsgi::{AllowList, WsgiSettings};
use ferrocorn_http::{HeaderMap, ParseOptions};
use pyo3::prelude::*;
use std::time::Duration;

/// Bodies up to this size stay in memory; larger ones spill to a temp file.
const SPILL_THRESHOLD: usize = 1024 * 1024;

/// Worker classes that exist in Gunicorn; the ones not listed in `SUPPORTED` are refused clearly.
const KNOWN_CLASSES: &[&str] = &["sync", "gthread", "gevent", "eventlet", "tornado"];
const SUPPORTED_CLASSES: &[&str] = &["sync", "gthread"];

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
        Command::Run(cfg) => serve(py, cfg),
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
    let class = worker_class(cfg);
    if !SUPPORTED_CLASSES.contains(&class.as_str()) {
        if KNOWN_CLASSES.contains(&class.as_str()) {
            return Err(format!(
                "worker class {class:?} is not supported yet by ferrocorn {}; use -k sync",
                env!("CARGO_PKG_VERSION")
            ));
        }
        return Err(format!(
            "unknown worker class {class:?}; valid classes are: {}",
            KNOWN_CLASSES.join(", ")
        ));
    }
    let Some(uri) = cfg.str(Key::WsgiApp).filter(|s| !s.is_empty()) else {
        return Err("No application module specified.".into());
    };
    prepare_process(py, cfg)?;
    Ok(uri.to_string())
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

fn worker_class(cfg: &Config) -> String {
    let class = cfg.str(Key::WorkerClass).unwrap_or("sync").to_string();
    let class = class.rsplit("workers.").next().unwrap_or(&class).trim_end_matches("Worker").to_ascii_lowercase();
    let class = match class.as_str() {
        "sync" | "" => "sync".to_string(),
        "gthread" | "thread" | "threadworker" => "gthread".to_string(),
        other => other.to_string(),
    };
    // The seed and Gunicorn: --threads above 1 with the sync class means gthread.
    if class == "sync" && cfg.int(Key::Threads) > 1 { "gthread".to_string() } else { class }
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
        Err(msg) => {
            eprintln!("Error: {msg}");
            1
        }
    }
}

fn level(cfg: &Config) -> Level {
    match cfg.str(Key::Loglevel).unwrap_or("info").to_ascii_lowercase().as_str() {
        "debug" => Level::Debug,
        "warning" | "warn" => Level::Warning,
        "error" => Level::Error,
        "critical" => Level::Critical,
        _ => Level::Info,
    }
}

fn secs(n: i64) -> u64 {
    n.max(0) as u64
}

fn serve(py: Python<'_>, cfg: Config) -> i32 {
    let uri = match preflight(py, &cfg) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };
    let errorlog = cfg.str(Key::Errorlog).unwrap_or("-").to_string();
    if let Err(e) = log::init_error_log(level(&cfg), &errorlog) {
        eprintln!("Error: cannot open the error log {errorlog:?} (--error-logfile): {e}");
        return 1;
    }
    let _ = crate::sys::ignore_signal(libc::SIGPIPE);
    crate::sys::set_umask(cfg.int(Key::Umask).clamp(0, 0o777) as u32);
    if cfg.bool(Key::Daemon) {
        if let Err(e) = daemonize(py) {
            crate::log_error!("cannot detach into the background (--daemon): {e}");
            return 1;
        }
    }

    let preloaded = if cfg.bool(Key::Preload) {
        match worker::load_app(py, &uri) {
            Ok(app) => Some(app),
            Err(msg) => {
                crate::log_error!("{msg}");
                return worker::APP_LOAD_ERROR;
            }
        }
    } else {
        None
    };

    // Certificates and keys are checked before anything is bound: a bad path or a key that does
    // not match its certificate stops the server here.
    let tls = match crate::tls::TlsSettings::from_config(py, &cfg).and_then(|s| s.map(|s| crate::tls::Tls::load(py, s)).transpose()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("Error: {e}");
            return 1;
        }
    };

    let mut addrs = Vec::new();
    for b in cfg.list(Key::Bind) {
        match sock::parse_bind(b) {
            Ok(a) => addrs.push(a),
            Err(e) => {
                eprintln!("Error: {e} (-b/--bind)");
                return 1;
            }
        }
    }
    let opts = BindOptions { backlog: cfg.int(Key::Backlog) as i32, reuse_port: cfg.bool(Key::ReusePort), ..BindOptions::default() };
    let listeners = match sock::bind_all(&addrs, &opts) {
        Ok(l) => l,
        Err(e) => {
            crate::log_error!("{e}");
            return 1;
        }
    };

    let forwarded_allow = match AllowList::parse(cfg.list(Key::ForwardedAllowIps)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("Error: invalid forwarded_allow_ips: {e}");
            return 1;
        }
    };
    let proxy_allow = match AllowList::parse(cfg.list(Key::ProxyAllowIps)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("Error: invalid proxy_allow_ips: {e}");
            return 1;
        }
    };
    let num_workers = cfg.int(Key::Workers).max(1) as usize;
    let class = worker_class(&cfg);
    // gthread runs the app on a pool; sync runs it inline on the I/O thread.
    let threads = if class == "gthread" { cfg.int(Key::Threads).max(1) as usize } else { 0 };
    let secure_scheme_headers = cfg.pairs(Key::SecureSchemeHeaders).to_vec();
    let script_name = std::env::var("SCRIPT_NAME").unwrap_or_default();
    let forwarder_headers: Vec<String> = cfg.list(Key::ForwarderHeaders).iter().map(|s| s.trim().to_string()).collect();
    let (worker_forwarded_allow, wsgi_forwarders) = (forwarded_allow.clone(), forwarder_headers.clone());
    let make_wsgi = Box::new(move || WsgiSettings {
        server_software: format!("ferrocorn/{}", env!("CARGO_PKG_VERSION")),
        multithread: threads > 0,
        multiprocess: num_workers > 1,
        script_name: script_name.clone(),
        forwarded_allow: forwarded_allow.clone(),
        secure_scheme_headers: secure_scheme_headers.clone(),
        forwarder_headers: wsgi_forwarders.clone(),
    });

    let timeout = secs(cfg.int(Key::Timeout));
    let header_map = match cfg.str(Key::HeaderMap).unwrap_or("drop") {
        "refuse" => HeaderMap::Refuse,
        "dangerous" => HeaderMap::Dangerous,
        _ => HeaderMap::Drop,
    };
    let parse = ParseOptions {
        limit_request_line: cfg.int(Key::LimitRequestLine).max(0) as usize,
        limit_request_fields: cfg.int(Key::LimitRequestFields).max(0) as usize,
        limit_request_field_size: cfg.int(Key::LimitRequestFieldSize).max(0) as usize,
        permit_obsolete_folding: cfg.bool(Key::PermitObsoleteFolding),
        strip_header_spaces: cfg.bool(Key::StripHeaderSpaces),
        permit_unconventional_http_method: cfg.bool(Key::PermitUnconventionalHttpMethod),
        casefold_http_method: cfg.bool(Key::CasefoldHttpMethod),
        header_map,
        forwarder_headers: Vec::new(),
    };
    let parse_trusted = ParseOptions {
        forwarder_headers: forwarder_headers.iter().map(|n| n.as_bytes().into()).collect(),
        ..parse.clone()
    };
    let worker_settings = WorkerSettings {
        parse,
        keepalive: Duration::from_secs(secs(cfg.int(Key::Keepalive))),
        io_timeout: if timeout == 0 { None } else { Some(Duration::from_secs(timeout)) },
        max_requests: secs(cfg.int(Key::MaxRequests)),
        worker_connections: cfg.int(Key::WorkerConnections).max(1) as usize,
        proxy_protocol: worker::ProxyMode::from_setting(cfg.str(Key::ProxyProtocol).unwrap_or("off")),
        proxy_allow,
        forwarded_allow: worker_forwarded_allow,
        parse_trusted,
        tls,
        spill_threshold: SPILL_THRESHOLD,
        tmp_upload_dir: cfg.str(Key::TmpUploadDir).map(std::path::PathBuf::from),
        server_header: format!("ferrocorn/{}", env!("CARGO_PKG_VERSION")).into_bytes(),
        tick: Duration::from_millis(if timeout == 0 { 1000 } else { (timeout * 1000 / 4).clamp(50, 1000) }),
    };
    let access_log = cfg
        .str(Key::Accesslog)
        .map(|t| (t.to_string(), cfg.str(Key::AccessLogFormat).unwrap_or_default().to_string()));

    let app_name = uri.clone();
    let spec = MasterSpec {
        listeners,
        num_workers,
        worker_class: class,
        app_uri: uri,
        preloaded,
        worker_settings,
        max_requests_jitter: secs(cfg.int(Key::MaxRequestsJitter)),
        make_wsgi,
        access_log,
        timeout,
        graceful_timeout: secs(cfg.int(Key::GracefulTimeout)),
        pidfile: cfg.str(Key::Pidfile).map(std::path::PathBuf::from),
        proc_name: cfg.str(Key::ProcName).map(str::to_string).unwrap_or_else(|| app_name.clone()),
        threads,
    };
    let arbiter = match Arbiter::new(spec) {
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

/// Detaches from the terminal the classic way (fork, setsid, fork), as Gunicorn's `--daemon`
/// does, with Python's `os.fork` so at-fork hooks run. Standard streams go to /dev/null.
fn daemonize(py: Python<'_>) -> PyResult<()> {
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
    crate::sys::stdio_to_devnull()?;
    Ok(())
}

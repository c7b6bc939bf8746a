//! End-to-end tests of `load_with`: layering, the config file, and error messages. They embed
//! the interpreter, which works because `cargo test` builds without pyo3's `extension-module`.

use super::*;
use std::path::PathBuf;

fn py_run<T>(f: impl FnOnce(Python<'_>) -> T) -> T {
    Python::initialize();
    Python::attach(f)
}

/// Writes a config file into a fresh temporary directory and returns its path.
fn conf(name: &str, body: &str) -> String {
    let dir: PathBuf = std::env::temp_dir().join(format!("ferrocorn-cfg-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("gunicorn.conf.py");
    std::fs::write(&path, body).expect("write conf");
    path.to_string_lossy().into_owned()
}

fn argv(words: &[&str]) -> Vec<String> {
    std::iter::once("ferrocorn").chain(words.iter().copied()).map(String::from).collect()
}

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn run(words: &[&str], e: &Env) -> Result<Config, ConfigError> {
    py_run(|py| match load_with(py, &argv(words), e)? {
        Command::Run(c) | Command::Check(c) => Ok(c),
        Command::Exit(code) => panic!("exited {code}"),
    })
}

fn err(words: &[&str]) -> String {
    match run(words, &env(&[])) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted {words:?}"),
    }
}

#[test]
fn layers_merge_in_gunicorn_order() {
    let c = conf("order", "workers = 2\nthreads = '5'\nbind = '0.0.0.0:1'\ntimeout = 9\n");
    let e = env(&[("GUNICORN_CMD_ARGS", "-w 3 --threads 6"), ("WEB_CONCURRENCY", "8")]);
    let cfg = run(&["-c", &c, "-w", "4", "app:a"], &e).unwrap();
    assert_eq!((cfg.int(Key::Workers), cfg.source(Key::Workers)), (4, Source::CommandLine));
    assert_eq!((cfg.int(Key::Threads), cfg.source(Key::Threads)), (6, Source::EnvArgs));
    assert_eq!((cfg.int(Key::Timeout), cfg.source(Key::Timeout)), (9, Source::ConfigFile));
    assert_eq!(cfg.list(Key::Bind), ["0.0.0.0:1"]);
    assert_eq!((cfg.int(Key::Backlog), cfg.is_set(Key::Backlog)), (2048, false));

    let cfg = run(&["-c", &c, "app:a"], &env(&[("WEB_CONCURRENCY", "8")])).unwrap();
    assert_eq!(cfg.int(Key::Workers), 2);
    let cfg = run(&["app:a"], &env(&[("WEB_CONCURRENCY", "8"), ("PORT", "9000")])).unwrap();
    assert_eq!((cfg.int(Key::Workers), cfg.is_set(Key::Workers)), (8, false));
    assert_eq!(cfg.list(Key::Bind), ["0.0.0.0:9000"]);
}

#[test]
fn config_location_from_env_args() {
    let c = conf("envloc", "workers = 7\n");
    let cfg = run(&["app:a"], &env(&[("GUNICORN_CMD_ARGS", &format!("-c '{c}'"))])).unwrap();
    assert_eq!(cfg.int(Key::Workers), 7);
}

#[test]
fn file_values_are_converted() {
    let c = conf(
        "types",
        "import os\n\
         bind = ['a:1', 'b:2']\nworkers = '0x3'\npreload_app = 'True'\nreuse_port = True\n\
         raw_env = 'A=1'\nsecure_scheme_headers = {'X-SSL': 'on'}\nproxy_protocol = True\n\
         forwarded_allow_ips = '10.0.0.0/8, *'\nwsgi_app = 'pkg:app'\nUNRELATED = 1\n\
         def post_fork(server, worker): pass\n\
         def post_request(worker, req): pass\n\
         logconfig_dict = {'version': 1}\n",
    );
    let cfg = run(&["-c", &c], &env(&[])).unwrap();
    assert_eq!(cfg.list(Key::Bind), ["a:1", "b:2"]);
    assert_eq!(cfg.int(Key::Workers), 3);
    assert!(cfg.bool(Key::Preload) && cfg.bool(Key::ReusePort));
    assert_eq!(cfg.list(Key::RawEnv), ["A=1"]);
    assert_eq!(cfg.pairs(Key::SecureSchemeHeaders), [("X-SSL".to_string(), "on".to_string())]);
    assert_eq!(cfg.str(Key::ProxyProtocol), Some("auto"));
    assert_eq!(cfg.list(Key::ForwardedAllowIps), ["10.0.0.0/8", "*"]);
    assert_eq!(cfg.str(Key::WsgiApp), Some("pkg:app"));
    assert!(cfg.py(Key::PostFork).is_some() && cfg.py(Key::OnStarting).is_none());
    // logconfig_dict is supported since the logging work; nothing here is refused.
    assert!(cfg.unsupported_in_use().is_empty(), "{:?}", cfg.unsupported_in_use());
    // post_request is adapted to always take four arguments.
    py_run(|py| {
        let hook = cfg.py(Key::PostRequest).unwrap().bind(py);
        hook.call1((1, 2, 3, 4)).unwrap();
    });
    // The positional APP_MODULE wins over wsgi_app.
    let cfg = run(&["-c", &c, "other:app"], &env(&[])).unwrap();
    assert_eq!(cfg.str(Key::WsgiApp), Some("other:app"));
    assert_eq!(cfg.str(Key::DefaultProcName), Some("other:app"));
}

#[test]
fn file_errors_are_clear() {
    let c = conf("badint", "workers = 'abc'\n");
    assert_eq!(
        err(&["-c", &c, "a:b"]),
        "Error: invalid value for workers (-w/--workers) in the config file: 'abc' is not an integer"
    );
    let c = conf("badtype", "timeout = 1.5\n");
    assert!(err(&["-c", &c, "a:b"]).contains("timeout (-t/--timeout) in the config file: 1.5 is not an integer (at least 0"));
    let c = conf("arity", "def post_fork(server): pass\n");
    assert!(err(&["-c", &c, "a:b"]).contains("takes 1 positional arguments; expected a callable taking 2"));
    let c = conf("syntax", "workers = 2\nbind = [\n");
    let e = err(&["-c", &c, "a:b"]);
    assert!(e.starts_with("Error: syntax error in config file ") && e.contains(", line 2: "), "{e}");
    let c = conf("raises", "def f():\n    raise ValueError('boom')\nf()\n");
    let e = err(&["-c", &c, "a:b"]);
    assert!(e.contains("Traceback") && e.contains("ValueError: boom") && e.contains("line 2"), "{e}");
    assert!(err(&["-c", "/no/such.conf.py", "a:b"]).contains("doesn't exist"));
}

#[test]
fn env_and_cli_errors() {
    let e = run(&["a:b"], &env(&[("GUNICORN_CMD_ARGS", "--workers=x")])).err().unwrap().to_string();
    assert_eq!(e, "Error: invalid value for workers (-w/--workers) in GUNICORN_CMD_ARGS: 'x' is not an integer");
    let e = run(&["a:b"], &env(&[("GUNICORN_CMD_ARGS", "-w '3")])).err().unwrap().to_string();
    assert!(e.contains("GUNICORN_CMD_ARGS"), "{e}");
    assert_eq!(err(&["--backlog", "lots", "a:b"]), "Error: invalid value for backlog (--backlog): 'lots' is not an integer");
    assert_eq!(err(&[]), "Error: No application module specified.");
}

#[test]
fn unsupported_settings_are_reported_only_when_changed() {
    let cfg = run(&["--spew", "-w", "2", "a:b"], &env(&[])).unwrap();
    assert_eq!(cfg.unsupported_in_use(), vec!["spew"]);
    let c = conf("unsup", "spew = False\nkeyfile = None\n");
    let cfg = run(&["-c", &c, "a:b"], &env(&[])).unwrap();
    assert!(cfg.unsupported_in_use().is_empty());
}

#[test]
fn print_config_lists_everything_sorted() {
    let cfg = run(&["-w", "3", "a:b"], &env(&[])).unwrap();
    let text = cfg.print_config();
    let names: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap_or("")).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names.len(), SETTINGS.len());
    assert!(text.lines().any(|l| l.starts_with("workers ") && l.ends_with("= 3")));
    assert!(text.contains("bind") && text.contains("['127.0.0.1:8000']"));
}

#[test]
fn check_config_returns_check() {
    py_run(|py| {
        assert!(matches!(load_with(py, &argv(&["--check-config", "a:b"]), &env(&[])), Ok(Command::Check(_))));
        assert!(matches!(load_with(py, &argv(&["--version"]), &env(&[])), Ok(Command::Exit(0))));
    });
}

/// Reading every default through the accessor its kind implies must not hit the table-bug panic.
#[test]
fn every_default_fits_its_accessor() {
    let cfg = run(&["a:b"], &env(&[])).unwrap();
    for s in SETTINGS {
        match s.kind {
            k if k.is_int() => {
                cfg.int(s.key);
            }
            Kind::Bool => {
                cfg.bool(s.key);
            }
            Kind::List | Kind::Files | Kind::CommaList | Kind::AddrList | Kind::HttpProtocols => {
                cfg.list(s.key);
            }
            Kind::Pairs => {
                cfg.pairs(s.key);
            }
            Kind::Hook(_) | Kind::PostRequestHook | Kind::PyDict => {
                cfg.py(s.key);
            }
            Kind::SslVersion => {}
            _ => {
                cfg.str(s.key);
            }
        }
    }
    assert_eq!(cfg.list(Key::ProxyAllowIps), ["127.0.0.1", "::1"]);
    assert_eq!(cfg.list(Key::ForwarderHeaders), ["SCRIPT_NAME", "PATH_INFO"]);
}

/// Every integer setting is judged by its row's bounds, from every source, and values beyond
/// 64 bits are judged rather than wrapped.
#[test]
fn integer_bounds_from_every_source() {
    let file = |name: &str, text: &str| err(&["-c", &conf(name, text), "a:b"]);
    // Issue 10: these gave workers uid 0 through a cast.
    assert!(
        file("uid_neg", "user = -1\n")
            .contains("user (-u/--user) in the config file: -1 is out of range; expected a name, or 0 to 4294967294")
    );
    assert!(file("gid_neg", "group = -1\n").contains("group (-g/--group) in the config file: -1 is out of range"));
    assert!(file("uid_big", "user = 2**64\n").contains("18446744073709551616 is out of range"));
    assert!(err(&["-u", "4294967296", "a:b"]).contains("user (-u/--user): 4294967296 is out of range"));
    assert!(err(&["-g", "4294967295", "a:b"]).contains("is out of range"));
    assert!(err(&["-u", "-1", "a:b"]).contains("'-1' is not a known user"));
    let e = run(&["a:b"], &env(&[("GUNICORN_CMD_ARGS", "--umask 0o10000")])).err().unwrap().to_string();
    assert!(e.contains("umask (-m/--umask) in GUNICORN_CMD_ARGS: 0o10000 is out of range; expected 0 to 0o7777"), "{e}");
    assert!(file("backlog", "backlog = 2**31\n").contains("expected 0 to 2147483647"));
    assert!(file("workers", "workers = 10**30\n").contains("expected 0 to 4096"));
    assert!(err(&["--threads", "4097", "a:b"]).contains("expected 0 to 4096"));
    assert!(err(&["--max-requests", "-5", "a:b"]).contains("is negative"));
    assert!(err(&["--cert-reqs", "3", "a:b"]).contains("expected 0 to 2"));
    // Durations of any size are "no limit"; below 0 is refused.
    for big in ["2**62", "2**63 - 1", "10**30", "10**400"] {
        let cfg = run(
            &["-c", &conf("dur", &format!("timeout = {big}\ngraceful_timeout = {big}\nkeepalive = {big}\n")), "a:b"],
            &env(&[]),
        )
        .unwrap();
        for key in [Key::Timeout, Key::GracefulTimeout, Key::Keepalive] {
            assert_eq!(cfg.duration(key), None, "{big}");
        }
    }
    let cfg = run(&["--timeout", "99999999999999999999999", "--keep-alive", "7", "a:b"], &env(&[])).unwrap();
    assert_eq!(cfg.duration(Key::Timeout), None);
    assert_eq!(cfg.duration(Key::Keepalive), Some(std::time::Duration::from_secs(7)));
    assert!(file("dur_neg", "timeout = -10**30\n").contains("is negative"));
    // Request limits above Gunicorn's ceilings mean the ceiling, as in Gunicorn.
    let cfg = run(&["--limit-request-line", "100000", "--limit-request-fields", "10**9", "a:b"], &env(&[]));
    assert!(cfg.is_err(), "CLI integers are decimal");
    let cfg = run(
        &[
            "-c",
            &conf("lim", "limit_request_line = 10**9\nlimit_request_fields = 2**40\nlimit_request_field_size = 10**30\n"),
            "a:b",
        ],
        &env(&[]),
    )
    .unwrap();
    assert_eq!(cfg.int(Key::LimitRequestLine), 8190);
    assert_eq!(cfg.int(Key::LimitRequestFields), 32768);
    assert_eq!(cfg.int(Key::LimitRequestFieldSize), 1_048_576);
    assert!(err(&["--limit-request-line", "-1", "a:b"]).contains("is negative"));
}

//! The settings table: every Gunicorn setting declared exactly once.
//!
//! Names, sections, flags, metavars, defaults and value rules follow Gunicorn's settings reference
//! (checked against `gunicorn.config.KNOWN_SETTINGS`) so that an existing `gunicorn.conf.py`,
//! command line or `GUNICORN_CMD_ARGS` means the same thing here. The descriptions are ferrocorn's.
//! Everything else (the `Key` enum, the argument parser, config-file keys, `--print-config`,
//! `docs/settings.md`) is generated from this one list.

/// The groups settings are listed under in `--help` and in the docs, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    ConfigFile,
    ServerSocket,
    WorkerProcesses,
    Security,
    Debugging,
    ServerMechanics,
    Logging,
    ProcessNaming,
    Ssl,
    Http2,
    ServerHooks,
    DirtyArbiters,
    DirtyArbiterHooks,
    Control,
}

impl Section {
    pub const ALL: [Section; 14] = [
        Section::ConfigFile,
        Section::ServerSocket,
        Section::WorkerProcesses,
        Section::Security,
        Section::Debugging,
        Section::ServerMechanics,
        Section::Logging,
        Section::ProcessNaming,
        Section::Ssl,
        Section::Http2,
        Section::ServerHooks,
        Section::DirtyArbiters,
        Section::DirtyArbiterHooks,
        Section::Control,
    ];

    /// The heading Gunicorn uses for this section.
    pub fn title(self) -> &'static str {
        match self {
            Section::ConfigFile => "Config File",
            Section::ServerSocket => "Server Socket",
            Section::WorkerProcesses => "Worker Processes",
            Section::Security => "Security",
            Section::Debugging => "Debugging",
            Section::ServerMechanics => "Server Mechanics",
            Section::Logging => "Logging",
            Section::ProcessNaming => "Process Naming",
            Section::Ssl => "SSL",
            Section::Http2 => "HTTP/2",
            Section::ServerHooks => "Server Hooks",
            Section::DirtyArbiters => "Dirty Arbiters",
            Section::DirtyArbiterHooks => "Dirty Arbiter Hooks",
            Section::Control => "Control",
        }
    }
}

/// How a setting's flag behaves on the command line (argparse's `action`/`nargs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Takes one value; the last occurrence wins.
    Store,
    /// Takes one value per occurrence; all occurrences form a list.
    Append,
    /// A bare flag meaning `true`.
    True,
    /// A bare flag meaning `false` (`--no-sendfile`).
    False,
    /// An optional value; the bare flag means the given constant (`--proxy-protocol`).
    Optional(&'static str),
}

/// The rule a value must satisfy, and the shape it is stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string, surrounding whitespace stripped; may be unset.
    Str,
    /// A non-negative integer (decimal on the command line, like Gunicorn's `type=int`).
    Int,
    /// A non-negative integer where a leading `0` means octal, as for `umask`.
    AutoInt,
    /// An integer within inclusive bounds; anything else is refused.
    IntRange(i64, i64),
    /// An integer of at least the first bound. Above the second it means the second, as
    /// Gunicorn clamps its request limits (so a file written for Gunicorn still loads).
    IntClamped(i64, i64),
    /// Like `AutoInt`, within inclusive bounds.
    AutoIntRange(i64, i64),
    /// A duration in whole seconds, `>= 0`, of any size: from `NO_LIMIT_SECS` up (`sys.maxsize`
    /// included) it means "no limit". Read with `Config::duration`.
    Seconds,
    Bool,
    /// A list of strings; a single string counts as a one-element list.
    List,
    /// A comma-separated string, kept as a list.
    CommaList,
    /// A comma-separated list of IP addresses or networks, or `*`.
    AddrList,
    /// A dict of strings (`secure_scheme_headers`).
    Pairs,
    /// A dict kept as the Python object (`logconfig_dict`).
    PyDict,
    /// One of a fixed set of words; the bool `true`/`false` map to the given words if any.
    Choice(&'static [&'static str]),
    /// Like `Choice`, but Gunicorn also accepts aliases (see `validate::canonical_choice`).
    ProxyProtocol,
    Http2Cleartext,
    /// A comma-separated list of `h1`/`h2`.
    HttpProtocols,
    /// A dotted class path, or the class itself from a config file.
    Class,
    /// A callable taking exactly this many positional arguments (or a dotted path to one).
    Hook(u8),
    /// `post_request`: a callable of 2, 3 or 4 positional arguments.
    PostRequestHook,
    /// A directory that must exist; stored as an absolute path.
    Chdir,
    /// A user name or uid (`0..=MAX_ID`), stored as the uid.
    User,
    /// A group name or gid (`0..=MAX_ID`), stored as the gid.
    Group,
    /// Paths that must exist, or glob patterns (kept unexpanded).
    Files,
    /// `HOST:PORT` or `unix://PATH` of a statsd server.
    StatsdAddr,
    /// Deprecated and ignored by Gunicorn; accepted as given.
    SslVersion,
}

impl Kind {
    /// Kinds stored as `Value::Int` and read with `Config::int` (or `Config::duration`).
    pub fn is_int(self) -> bool {
        matches!(
            self,
            Kind::Int
                | Kind::AutoInt
                | Kind::IntRange(..)
                | Kind::IntClamped(..)
                | Kind::AutoIntRange(..)
                | Kind::Seconds
                | Kind::User
                | Kind::Group
        )
    }

    /// The accepted range, as the docs and error messages state it; `None` for non-integers.
    pub fn range_text(self) -> Option<String> {
        Some(match self {
            Kind::Int | Kind::AutoInt => format!("0 to {}", i64::MAX),
            Kind::IntRange(lo, hi) => format!("{lo} to {hi}"),
            Kind::AutoIntRange(lo, hi) => format!("{lo} to {hi:#o}"),
            Kind::IntClamped(lo, hi) => format!("at least {lo}; values above {hi} mean {hi}"),
            Kind::Seconds => format!("at least 0; {NO_LIMIT_SECS} (about 100 years) or more means no limit"),
            Kind::User | Kind::Group => format!("a name, or 0 to {MAX_ID}"),
            _ => return None,
        })
    }
}

/// Durations from this many seconds up (about 100 years) mean "no limit": `timeout =
/// sys.maxsize` is a common way to write "never", and no deadline this far away is meant.
pub const NO_LIMIT_SECS: i64 = 100 * 365 * 24 * 60 * 60;

/// The largest uid or gid: `(uid_t)-1` (4294967295) means "unchanged" to setuid/chown, so it is
/// not an id (Python's `os.setuid` refuses it too).
pub const MAX_ID: i64 = 4_294_967_294;

/// A default that is known when the table is compiled, or computed from the environment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DefaultValue {
    None,
    Bool(bool),
    Int(i64),
    Str(&'static str),
    List(&'static [&'static str]),
    Pairs(&'static [(&'static str, &'static str)]),
    /// Computed at load time (see `defaults.rs`); the text is what the docs show.
    Computed(&'static str),
}

/// One row of the table.
#[derive(Debug)]
pub struct Setting {
    pub key: Key,
    pub name: &'static str,
    pub section: Section,
    /// Short and long flags, as Gunicorn spells them; empty for file-only settings.
    pub flags: &'static [&'static str],
    pub meta: Option<&'static str>,
    pub action: Action,
    pub kind: Kind,
    pub default: DefaultValue,
    /// Whether ferrocorn honours this setting yet.
    pub supported: bool,
    /// One line, for `--help`.
    pub short: &'static str,
    /// The rest of the description, for the docs.
    pub long: &'static str,
}

impl Setting {
    /// Flags joined the way error messages name them: `-w/--workers`.
    pub fn flags_label(&self) -> String {
        self.flags.join("/")
    }
}

macro_rules! settings {
    ($(
        $key:ident = $name:literal, $section:ident, [$($flag:literal),*], $meta:expr,
        $action:expr, $kind:expr, $default:expr, $supported:literal,
        $short:literal, $long:literal;
    )*) => {
        /// Every setting, by name. The discriminant is the row's index in `SETTINGS`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Key { $($key),* }

        /// The table itself, in Gunicorn's declaration order.
        pub static SETTINGS: &[Setting] = &[$(
            Setting {
                key: Key::$key,
                name: $name,
                section: Section::$section,
                flags: &[$($flag),*],
                meta: $meta,
                action: $action,
                kind: $kind,
                default: $default,
                supported: $supported,
                short: $short,
                long: $long,
            }
        ),*];
    };
}

use Action::{Append, Optional, Store, True};
use DefaultValue as D;
use Kind as K;

const NO_META: Option<&str> = None;
const fn m(s: &'static str) -> Option<&'static str> {
    Some(s)
}

settings! {
    Config = "config", ConfigFile, ["-c", "--config"], m("CONFIG"), Store, K::Str,
        D::Str("./gunicorn.conf.py"), true,
        "The configuration file to read.",
        "Either a path (optionally written `file:PATH`) or `python:MODULE_NAME` for an importable \
         module. Without this flag, `gunicorn.conf.py` in the current directory is read when it \
         exists. Only meaningful on the command line or in `GUNICORN_CMD_ARGS`.";
    WsgiApp = "wsgi_app", ConfigFile, [], m("STRING"), Store, K::Str, D::None, true,
        "The WSGI application to serve, as `MODULE:VARIABLE`.",
        "Lets a config file name the application. The positional `APP_MODULE` argument, when \
         given, takes precedence.";

    Bind = "bind", ServerSocket, ["-b", "--bind"], m("ADDRESS"), Append, K::List,
        D::Computed("`['127.0.0.1:8000']`, or `['0.0.0.0:$PORT']` when `PORT` is set"), true,
        "The address(es) to listen on.",
        "Each entry is `HOST`, `HOST:PORT`, `[IPv6]:PORT`, `unix:PATH` or `fd://FD`. Repeat the \
         flag (or give a list in the config file) to listen on several addresses at once.";
    Backlog = "backlog", ServerSocket, ["--backlog"], m("INT"), Store, K::IntRange(0, 2_147_483_647),
        D::Int(2048), true,
        "How many pending connections the kernel may queue.",
        "Passed to `listen()`. Connections beyond this many, not yet accepted, are refused or \
         dropped by the kernel; the effective ceiling is also capped by `somaxconn`.";

    Workers = "workers", WorkerProcesses, ["-w", "--workers"], m("INT"), Store, K::IntRange(0, 4096),
        D::Computed("`$WEB_CONCURRENCY`, or `1`"), true,
        "The number of worker processes serving requests.",
        "A common starting point is two to four per CPU core. When unset, the `WEB_CONCURRENCY` \
         environment variable supplies the value. `0` runs one worker; 4096 is the most the \
         master tracks.";
    WorkerClass = "worker_class", WorkerProcesses, ["-k", "--worker-class"], m("STRING"), Store,
        K::Class, D::Str("sync"), true,
        "The kind of worker to run.",
        "One of `sync`, `gthread`, `gevent`, `eventlet` or `tornado` (see `docs/workers.md`). \
         `sync` handles one request at a time per process; with `threads` above 1 it behaves as \
         `gthread`. Gunicorn's spellings are accepted too: `egg:gunicorn#gevent`, \
         `gunicorn.workers.ggevent.GeventWorker`, and the `ferrocorn.workers.*` class paths.";
    Threads = "threads", WorkerProcesses, ["--threads"], m("INT"), Store, K::IntRange(0, 4096),
        D::Int(1), true,
        "Threads per worker for handling requests.",
        "With more than one thread, a sync worker becomes a threaded worker that serves several \
         requests concurrently within one process. Ignored by `gevent`, `eventlet` and \
         `tornado`, as in Gunicorn. ferrocorn starts every thread when the worker boots, hence \
         the ceiling of 4096.";
    WorkerConnections = "worker_connections", WorkerProcesses, ["--worker-connections"], m("INT"),
        Store, K::Int, D::Int(1000), true,
        "The most simultaneous clients one worker will hold.",
        "Applies to every class: past it, a worker stops accepting until a connection closes. \
         For `gevent` and `eventlet` it is also how many requests may be in the application at \
         once.";
    MaxRequests = "max_requests", WorkerProcesses, ["--max-requests"], m("INT"), Store, K::Int,
        D::Int(0), true,
        "Restart a worker after it has served this many requests.",
        "A blunt but effective guard against slow memory leaks in the application. `0` never \
         restarts workers for this reason.";
    MaxRequestsJitter = "max_requests_jitter", WorkerProcesses, ["--max-requests-jitter"], m("INT"),
        Store, K::Int, D::Int(0), true,
        "A random amount, up to this, added to `max_requests` per worker.",
        "Spreads worker restarts out so that they do not all happen at the same moment.";
    MaxWorkerRss = "max_worker_rss", WorkerProcesses, ["--max-worker-rss"], m("MIB"), Store, K::Int,
        D::Int(0), true,
        "Replace a worker once its resident memory passes this many MiB.",
        "The master checks every worker's RSS about once a second; a worker over its limit keeps \
         serving while a replacement boots, and is then stopped gracefully, one worker at a time, so \
         capacity never drops. `0` turns it off. Not a Gunicorn setting (Granian's `--workers-max-rss`, \
         uWSGI's `reload-on-rss`).";
    MaxWorkerRssJitter = "max_worker_rss_jitter", WorkerProcesses, ["--max-worker-rss-jitter"],
        m("MIB"), Store, K::Int, D::Int(0), true,
        "A random amount of MiB, up to this, added to `max_worker_rss` per worker.",
        "So workers that leak at the same pace are not all replaced together.";
    MaxWorkerLifetime = "max_worker_lifetime", WorkerProcesses, ["--max-worker-lifetime"], m("INT"),
        Store, K::Seconds, D::Int(0), true,
        "Replace a worker once it has run this many seconds.",
        "Replaced like `max_worker_rss`: the replacement boots first, then the old worker stops \
         gracefully. `0` turns it off. Not a Gunicorn setting (Granian's `--workers-lifetime`, uWSGI's \
         `max-worker-lifetime`).";
    MaxWorkerLifetimeJitter = "max_worker_lifetime_jitter", WorkerProcesses,
        ["--max-worker-lifetime-jitter"], m("INT"), Store, K::Seconds, D::Int(0), true,
        "A random number of seconds, up to this, added to `max_worker_lifetime` per worker.",
        "Spreads the replacements out.";
    Timeout = "timeout", WorkerProcesses, ["-t", "--timeout"], m("INT"), Store, K::Seconds, D::Int(30),
        true,
        "Seconds a worker may stay silent before the master kills and replaces it.",
        "A worker that neither finishes a request nor reports in for this long is considered \
         hung. `0` disables the check.";
    RequestTimeout = "request_timeout", WorkerProcesses, ["--request-timeout"], m("INT"), Store,
        K::Seconds, D::Int(0), true,
        "Seconds one request may spend in the application before it is answered 503.",
        "For `gthread`, `gevent`, `eventlet` and `tornado`, where `timeout` cannot see one slow request \
         because the worker keeps serving others. A request still in the app past it is answered \
         `503 Service Unavailable` (if nothing was sent yet; else its connection is closed), its \
         Python stack is logged with its method, path and running time, and since running Python \
         code cannot be stopped safely, its worker stops accepting, finishes its other requests and \
         is replaced, as after `max_requests`. Named after what Gunicorn users ask for \
         (gunicorn#2086); not a Gunicorn setting. `0` turns it off. The `sync` class ignores it: \
         there the worker is the request, and `timeout` already answers 500 and replaces it.";
    GracefulTimeout = "graceful_timeout", WorkerProcesses, ["--graceful-timeout"], m("INT"), Store,
        K::Seconds, D::Int(30), true,
        "Seconds workers get to finish in-flight requests when asked to stop.",
        "After a restart or graceful shutdown signal, workers still running past this are killed.";
    Keepalive = "keepalive", WorkerProcesses, ["--keep-alive"], m("INT"), Store, K::Seconds, D::Int(2),
        true,
        "Seconds to wait for the next request on an idle keep-alive connection.",
        "Ignored by the sync worker, which closes the connection after each response. Behind a \
         load balancer, a value somewhat above the balancer's idle timeout avoids races.";

    LimitRequestLine = "limit_request_line", Security, ["--limit-request-line"], m("INT"), Store,
        K::IntClamped(0, 8190), D::Int(4094), true,
        "The longest request line accepted, in bytes.",
        "Requests with a longer method, target and version line are rejected, which bounds the \
         cost of hostile clients. `0` removes the limit (the line is still never longer than \
         64 KiB).";
    LimitRequestFields = "limit_request_fields", Security, ["--limit-request-fields"], m("INT"),
        Store, K::IntClamped(0, 32768), D::Int(100), true,
        "The most header fields a request may carry.",
        "Bounds the work and memory a single request can demand from a worker. `0` means \
         32768, as in Gunicorn.";
    LimitRequestFieldSize = "limit_request_field_size", Security, ["--limit-request-field_size"],
        m("INT"), Store, K::IntClamped(0, 1_048_576), D::Int(8190), true,
        "The largest header field accepted, in bytes.",
        "`0` means 8190, as in Gunicorn 27. The odd underscore in the flag is Gunicorn's and is kept for \
         compatibility.";

    Reload = "reload", Debugging, ["--reload"], NO_META, True, K::Bool, D::Bool(false), true,
        "Restart workers when source code changes.",
        "Meant for development only.";
    ReloadEngine = "reload_engine", Debugging, ["--reload-engine"], m("STRING"), Store,
        K::Choice(&["auto", "poll", "inotify"]), D::Str("auto"), true,
        "How code changes are detected when `reload` is on.",
        "ferrocorn accepts all three and polls file times once a second whichever is chosen: \
         polling needs no extra package and sees every filesystem.";
    ReloadExtraFiles = "reload_extra_files", Debugging, ["--reload-extra-file"], m("FILES"), Append,
        K::Files, D::List(&[]), true,
        "More files or glob patterns whose changes trigger a reload.",
        "Plain paths must exist; patterns are re-expanded on every check.";
    Spew = "spew", Debugging, ["--spew"], NO_META, True, K::Bool, D::Bool(false), false,
        "Trace every executed line of Python.",
        "Extremely verbose; for desperate debugging only.";
    CheckConfig = "check_config", Debugging, ["--check-config"], NO_META, True, K::Bool,
        D::Bool(false), true,
        "Validate the configuration, load the application, and exit.",
        "Exits 0 when everything loads, non-zero otherwise.";
    PrintConfig = "print_config", Debugging, ["--print-config"], NO_META, True, K::Bool,
        D::Bool(false), true,
        "Print the final value of every setting and exit.",
        "One `name = value` line per setting, sorted by name.";

    Preload = "preload_app", ServerMechanics, ["--preload"], NO_META, True, K::Bool,
        D::Bool(false), true,
        "Import the application in the master, before forking workers.",
        "Saves memory and start-up time through copy-on-write, but code changes then need a full \
         restart rather than a worker reload.";
    Sendfile = "sendfile", ServerMechanics, ["--no-sendfile"], NO_META, Action::False, K::Bool,
        D::Computed("`true`, unless the `SENDFILE` environment variable says otherwise"), true,
        "Whether file responses may use `sendfile()`.",
        "`--no-sendfile` turns it off. When not configured, `SENDFILE` set to anything other \
         than `y`, `1`, `yes` or `true` also turns it off.";
    ReusePort = "reuse_port", ServerMechanics, ["--reuse-port"], NO_META, True, K::Bool,
        D::Bool(false), true,
        "Set `SO_REUSEPORT` on listening sockets.",
        "Lets several sockets bind the same address, with the kernel spreading connections.";
    Chdir = "chdir", ServerMechanics, ["--chdir"], NO_META, Store, K::Chdir,
        D::Computed("the current directory"), true,
        "Change to this directory before loading the application.",
        "Relative paths are resolved against the directory ferrocorn was started in; the \
         directory must exist.";
    Daemon = "daemon", ServerMechanics, ["-D", "--daemon"], NO_META, True, K::Bool,
        D::Bool(false), true,
        "Detach from the terminal and run in the background.",
        "Not needed (and best avoided) under a process supervisor such as systemd.";
    RawEnv = "raw_env", ServerMechanics, ["-e", "--env"], m("ENV"), Append, K::List, D::List(&[]),
        true,
        "Set an environment variable for the server, as `KEY=VALUE`.",
        "Repeat the flag for several variables; the config file takes a list.";
    Pidfile = "pidfile", ServerMechanics, ["-p", "--pid"], m("FILE"), Store, K::Str, D::None, true,
        "Write the master's process id to this file.",
        "No file is written when unset.";
    WorkerTmpDir = "worker_tmp_dir", ServerMechanics, ["--worker-tmp-dir"], m("DIR"), Store, K::Str,
        D::None, true,
        "Where workers keep their heartbeat files.",
        "When unset the system temporary directory is used. A memory-backed directory such as \
         `/dev/shm` avoids stalls on slow or busy disks.";
    User = "user", ServerMechanics, ["-u", "--user"], m("USER"), Store, K::User,
        D::Computed("the effective user id of the process"), true,
        "Run workers as this user.",
        "A user name or a numeric uid.";
    Group = "group", ServerMechanics, ["-g", "--group"], m("GROUP"), Store, K::Group,
        D::Computed("the effective group id of the process"), true,
        "Run workers as this group.",
        "A group name or a numeric gid.";
    Umask = "umask", ServerMechanics, ["-m", "--umask"], m("INT"), Store, K::AutoIntRange(0, 0o7777),
        D::Int(0),
        true,
        "The file mode creation mask of the server.",
        "A leading `0` reads the number as octal, `0x` as hexadecimal, as in `0o022` or `022`.";
    Initgroups = "initgroups", ServerMechanics, ["--initgroups"], NO_META, True, K::Bool,
        D::Bool(false), true,
        "Give workers every group of the `user` they switch to.",
        "Loads the supplementary group list of that user.";
    TmpUploadDir = "tmp_upload_dir", ServerMechanics, [], m("DIR"), Store, K::Str, D::None, true,
        "Where large request bodies may be spooled to disk.",
        "Only some worker types use it; the system default applies when unset.";
    SecureSchemeHeaders = "secure_scheme_headers", ServerMechanics, [], NO_META, Store, K::Pairs,
        D::Pairs(&[("X-FORWARDED-PROTOCOL", "ssl"), ("X-FORWARDED-PROTO", "https"),
                   ("X-FORWARDED-SSL", "on")]), true,
        "Headers (and their values) by which a trusted proxy says the request came over HTTPS.",
        "A dict from upper-case header name to the value meaning \"secure\". Honoured only from \
         addresses in `forwarded_allow_ips`.";
    ForwardedAllowIps = "forwarded_allow_ips", ServerMechanics, ["--forwarded-allow-ips"],
        m("STRING"), Store, K::AddrList,
        D::Computed("`$FORWARDED_ALLOW_IPS`, or `127.0.0.1,::1`"), true,
        "Front-end addresses trusted to set forwarding headers.",
        "A comma-separated list of IP addresses or networks, or `*` to trust everyone (only \
         safe when no client can reach the server directly).";
    Accesslog = "accesslog", Logging, ["--access-logfile"], m("FILE"), Store, K::Str, D::None, true,
        "Where to write the access log.",
        "`-` means standard output. No access log is written when unset.";
    DisableRedirectAccessToSyslog = "disable_redirect_access_to_syslog", Logging,
        ["--disable-redirect-access-to-syslog"], NO_META, True, K::Bool, D::Bool(false), true,
        "Keep access log lines out of syslog.",
        "Only matters when syslog logging is on.";
    AccessLogFormat = "access_log_format", Logging, ["--access-logformat"], m("STRING"), Store,
        K::Str, D::Str("%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\""), true,
        "The format of access log lines.",
        "Uses Gunicorn's `%(atom)s` atoms: remote address `h`, request line `r`, status `s`, \
         response length `b`, referer `f`, user agent `a`, request time `T`/`D`/`M`, \
         `{header}i` and `{header}o` for request and response headers, and so on.";
    Errorlog = "errorlog", Logging, ["--error-logfile", "--log-file"], m("FILE"), Store, K::Str,
        D::Str("-"), true,
        "Where to write the error log.",
        "`-` means standard error.";
    Loglevel = "loglevel", Logging, ["--log-level"], m("LEVEL"), Store, K::Str, D::Str("info"),
        true,
        "How much the error log says.",
        "One of `debug`, `info`, `warning`, `error` or `critical`.";
    LogFormat = "log_format", Logging, ["--log-format"], m("FORMAT"), Store,
        K::Choice(&["text", "json"]), D::Str("text"), true,
        "The line format of the error log and the access log: `text` or `json`.",
        "`json` writes one JSON object per line, for log shippers. Error log: `time`, `pid`, `level`, \
         `message` (a traceback stays inside its message); `wsgi.errors` writes become objects with \
         `\"source\": \"wsgi.errors\"`. Access log: one key per atom of `access_log_format`, named as \
         written (`h`, `r`, `s`, `{user-agent}i`, ...), every value a string. Values are escaped so a \
         client cannot end a string or add a field; bytes that are not UTF-8 appear as the text `\\xHH`. \
         Not a Gunicorn setting (`logconfig_json` is Gunicorn's, for a `dictConfig` file). Does not apply \
         when a Python logging configuration or `logger_class` takes over the logs, nor to output \
         captured by `capture_output`.";
    CaptureOutput = "capture_output", Logging, ["--capture-output"], NO_META, True, K::Bool,
        D::Bool(false), true,
        "Send the standard output and error of workers to the error log.",
        "Useful when the application prints instead of logging.";
    LoggerClass = "logger_class", Logging, ["--logger-class"], m("STRING"), Store, K::Class,
        D::Str("gunicorn.glogging.Logger"), true,
        "A custom logger class, as a dotted path.",
        "Replaces the built-in logging of errors and access lines.";
    Logconfig = "logconfig", Logging, ["--log-config"], m("FILE"), Store, K::Str, D::None, true,
        "A `logging.config.fileConfig` file to configure logging with.",
        "Overrides the other logging settings.";
    LogconfigDict = "logconfig_dict", Logging, [], NO_META, Store, K::PyDict, D::None, true,
        "A dict for `logging.config.dictConfig`.",
        "Config file only; merged over the built-in logging configuration.";
    LogconfigJson = "logconfig_json", Logging, ["--log-config-json"], m("FILE"), Store, K::Str,
        D::None, true,
        "A JSON file in `dictConfig` form to configure logging with.",
        "The file-based counterpart of `logconfig_dict`.";
    SyslogAddr = "syslog_addr", Logging, ["--log-syslog-to"], m("SYSLOG_ADDR"), Store, K::Str,
        D::Str("udp://localhost:514"), true,
        "Where syslog messages go.",
        "`unix://PATH#TYPE`, `udp://HOST:PORT` or `tcp://HOST:PORT`.";
    Syslog = "syslog", Logging, ["--log-syslog"], NO_META, True, K::Bool, D::Bool(false), true,
        "Also log to syslog.",
        "The destination is `syslog_addr`.";
    SyslogPrefix = "syslog_prefix", Logging, ["--log-syslog-prefix"], m("SYSLOG_PREFIX"), Store,
        K::Str, D::None, true,
        "The program name shown in syslog entries.",
        "Defaults to the process name.";
    SyslogFacility = "syslog_facility", Logging, ["--log-syslog-facility"], m("SYSLOG_FACILITY"),
        Store, K::Str, D::Str("user"), true,
        "The syslog facility to log under.",
        "For example `user`, `daemon` or `local0`.";
    EnableStdioInheritance = "enable_stdio_inheritance", Logging,
        ["-R", "--enable-stdio-inheritance"], NO_META, True, K::Bool, D::Bool(false), true,
        "Keep standard streams open when daemonizing.",
        "Lets a daemonized server still write to the terminal's streams.";
    StatsdHost = "statsd_host", Logging, ["--statsd-host"], m("STATSD_ADDR"), Store, K::StatsdAddr,
        D::None, true,
        "Send metrics to this statsd server.",
        "`HOST:PORT` (port 8125 by default) or `unix://PATH`.";
    DogstatsdTags = "dogstatsd_tags", Logging, ["--dogstatsd-tags"], m("DOGSTATSD_TAGS"), Store,
        K::Str, D::Str(""), true,
        "Tags attached to every statsd metric, comma-separated.",
        "Uses the DogStatsD tag extension.";
    StatsdPrefix = "statsd_prefix", Logging, ["--statsd-prefix"], m("STATSD_PREFIX"), Store,
        K::Str, D::Str(""), true,
        "A prefix for every statsd metric name.",
        "A trailing dot is added when missing.";
    MetricsBind = "metrics_bind", Logging, ["--metrics-bind"], m("ADDRESS"), Store, K::Str,
        D::None, true,
        "Serve Prometheus metrics at http://ADDRESS/metrics.",
        "`HOST:PORT`. The master answers it itself, aggregating every worker's requests, requests in flight, busy time and resident memory. Not a Gunicorn setting. Read at start; HUP does not move it.";
    EnableBacklogMetric = "enable_backlog_metric", Logging, ["--enable-backlog-metric"], NO_META,
        True, K::Bool, D::Bool(false), true,
        "Report the listen backlog length as a metric.",
        "Connections the kernel has queued on the TCP listeners and no worker has accepted yet, \
         read once a second by the master (Linux only: `tcp_info`). Sent as the statsd histogram \
         `gunicorn.backlog` and, with `metrics_bind`, the Prometheus gauge \
         `ferrocorn_listen_backlog`.";

    ProcName = "proc_name", ProcessNaming, ["-n", "--name"], m("STRING"), Store, K::Str, D::None,
        true,
        "The name shown for the server's processes in `ps` and `top`.",
        "When unset, `default_proc_name` is used.";
    DefaultProcName = "default_proc_name", ProcessNaming, [], NO_META, Store, K::Str,
        D::Str("gunicorn"), true,
        "The process name used when `proc_name` is unset.",
        "Set from the application argument when one is given.";

    Pythonpath = "pythonpath", ServerMechanics, ["--pythonpath"], m("STRING"), Store, K::Str,
        D::None, true,
        "Directories to add to the Python path, comma-separated.",
        "They are put in front of `sys.path` before the application is imported.";
    Paste = "paste", ServerMechanics, ["--paste", "--paster"], m("STRING"), Store, K::Str, D::None,
        true,
        "Load a PasteDeploy configuration file instead of an application module.",
        "The file may select a section with `#name` (default `main`). Needs the PasteDeploy \
         package. Given on the command line, the file must exist, names the processes, and is \
         also the logging configuration when it has a `[loggers]` section (unless a config file \
         or flag sets `logconfig`). For `pserve`, `use = egg:ferrocorn#main` in `[server:main]` \
         runs ferrocorn with that section's settings (`host`/`port` become `bind`).";

    OnStarting = "on_starting", ServerHooks, [], NO_META, Store, K::Hook(1), D::None, true,
        "Called in the master just before it starts.",
        "Receives the server (arbiter) object.";
    OnReload = "on_reload", ServerHooks, [], NO_META, Store, K::Hook(1), D::None, true,
        "Called in the master when it is asked to reload (SIGHUP).",
        "Receives the server object.";
    WhenReady = "when_ready", ServerHooks, [], NO_META, Store, K::Hook(1), D::None, true,
        "Called in the master once the listening sockets are ready.",
        "Receives the server object.";
    PreFork = "pre_fork", ServerHooks, [], NO_META, Store, K::Hook(2), D::None, true,
        "Called in the master just before a worker is forked.",
        "Receives the server object and the new worker.";
    PostFork = "post_fork", ServerHooks, [], NO_META, Store, K::Hook(2), D::None, true,
        "Called in a new worker just after it is forked.",
        "Receives the server object and the worker.";
    PostWorkerInit = "post_worker_init", ServerHooks, [], NO_META, Store, K::Hook(1), D::None, true,
        "Called in a worker once the application is loaded.",
        "Receives the worker.";
    WorkerInt = "worker_int", ServerHooks, [], NO_META, Store, K::Hook(1), D::None, true,
        "Called in a worker that received SIGINT or SIGQUIT.",
        "Receives the worker.";
    WorkerAbort = "worker_abort", ServerHooks, [], NO_META, Store, K::Hook(1), D::None, true,
        "Called in a worker that received SIGABRT, usually because it timed out.",
        "Receives the worker.";
    PreExec = "pre_exec", ServerHooks, [], NO_META, Store, K::Hook(1), D::None, true,
        "Called in the new master just before it re-executes itself (SIGUSR2 upgrade).",
        "Receives the server object.";
    PreRequest = "pre_request", ServerHooks, [], NO_META, Store, K::Hook(2), D::None, true,
        "Called in a worker before each request is handled.",
        "Receives the worker and the request.";
    PostRequest = "post_request", ServerHooks, [], NO_META, Store, K::PostRequestHook, D::None,
        true,
        "Called in a worker after each request is handled.",
        "Receives the worker and the request, and optionally the WSGI environ and the response \
         when it declares three or four positional parameters.";
    ChildExit = "child_exit", ServerHooks, [], NO_META, Store, K::Hook(2), D::None, true,
        "Called in the master after a worker has exited.",
        "Receives the server object and the worker.";
    WorkerExit = "worker_exit", ServerHooks, [], NO_META, Store, K::Hook(2), D::None, true,
        "Called in a worker just before it exits.",
        "Receives the server object and the worker.";
    NworkersChanged = "nworkers_changed", ServerHooks, [], NO_META, Store, K::Hook(3), D::None, true,
        "Called in the master when the number of workers changes.",
        "Receives the server object, the new count and the old one (`None` at start-up).";
    OnExit = "on_exit", ServerHooks, [], NO_META, Store, K::Hook(1), D::None, true,
        "Called in the master just before ferrocorn exits.",
        "Receives the server object.";
    SslContext = "ssl_context", ServerHooks, [], NO_META, Store, K::Hook(2), D::None, true,
        "Called to build the `ssl.SSLContext` for TLS listeners.",
        "Receives the config and a factory for the default context, and returns the context. \
         ferrocorn's TLS is rustls: it reads back what maps (certificate chain, CA files, \
         `verify_mode`, minimum and maximum version, ciphers, ALPN) and refuses to start if the \
         hook used something it cannot honour; see `docs/security.md`.";

    ProxyProtocol = "proxy_protocol", ServerMechanics, ["--proxy-protocol"], m("MODE"),
        Optional("auto"), K::ProxyProtocol, D::Str("off"), true,
        "Accept the PROXY protocol header from a front end.",
        "`off`, `v1`, `v2`, or `auto` to detect either version; the bare flag means `auto`. Only \
         honoured from addresses in `proxy_allow_ips`.";
    ProxyAllowIps = "proxy_allow_ips", ServerMechanics, ["--proxy-allow-from"], NO_META, Store,
        K::AddrList, D::Str("127.0.0.1,::1"), true,
        "Front-end addresses allowed to send a PROXY protocol header.",
        "A comma-separated list of IP addresses or networks, or `*`.";
    Protocol = "protocol", ServerMechanics, ["--protocol"], m("STRING"), Store,
        K::Choice(&["http", "uwsgi"]), D::Str("http"), true,
        "The wire protocol spoken on the listening sockets.",
        "`http`, or `uwsgi` behind a front end speaking the uwsgi binary protocol (nginx's \
         `uwsgi_pass` with `include uwsgi_params;`). Responses go back as HTTP/1 without chunking. \
         The packet's vars are held to the HTTP/1 limits; `REMOTE_ADDR`/`REMOTE_PORT` and the \
         scheme (`UWSGI_SCHEME`, `HTTPS`) are taken from them. See `docs/differences.md`.";
    UwsgiAllowIps = "uwsgi_allow_ips", ServerMechanics, ["--uwsgi-allow-from"], NO_META, Store,
        K::AddrList, D::Str("127.0.0.1,::1"), true,
        "Front-end addresses allowed to speak the uwsgi protocol.",
        "A comma-separated list of IP addresses or networks, or `*`. Other TCP peers get 403 \
         as soon as they connect; unix-socket peers are always allowed.";

    Keyfile = "keyfile", Ssl, ["--keyfile"], m("FILE"), Store, K::Str, D::None, true,
        "The TLS private key file.",
        "An unencrypted PEM key (PKCS#8, PKCS#1 or SEC1). Setting it or `certfile` turns on TLS \
         for every listener; when unset the key is read from `certfile`. Checked at start-up: a \
         missing file or a key that does not match the certificate stops the server.";
    Certfile = "certfile", Ssl, ["--certfile"], m("FILE"), Store, K::Str, D::None, true,
        "The TLS certificate file.",
        "PEM, the server certificate first, then any intermediates. Setting it turns on TLS \
         (rustls, TLS 1.2 and 1.3, ALPN `http/1.1`); `wsgi.url_scheme` is then `https`.";
    SslVersion = "ssl_version", Ssl, ["--ssl-version"], NO_META, Store, K::SslVersion, D::Int(2),
        true,
        "Deprecated; ignored.",
        "Gunicorn ignores it in favour of `ssl_context`, and so does ferrocorn: it is accepted so \
         old files still load. Set a minimum version with `context.minimum_version` in an \
         `ssl_context` hook.";
    CertReqs = "cert_reqs", Ssl, ["--cert-reqs"], NO_META, Store, K::IntRange(0, 2), D::Int(0), true,
        "Whether clients must present a certificate.",
        "`0` none, `1` optional (verified when given), `2` required (Python's `ssl.VerifyMode`). \
         `1` and `2` need `ca_certs`: unlike Python, the system CA store is never used.";
    CaCerts = "ca_certs", Ssl, ["--ca-certs"], m("FILE"), Store, K::Str, D::None, true,
        "Certificate authorities used to verify clients.",
        "A PEM bundle.";
    SuppressRaggedEofs = "suppress_ragged_eofs", Ssl, ["--suppress-ragged-eofs"], NO_META, True,
        K::Bool, D::Bool(true), true,
        "Treat a TLS connection closed without notice as a normal end of data.",
        "Accepted for compatibility: request bodies are always framed by length or chunking, so \
         a close without TLS close_notify ends the connection either way and never shortens what \
         the app reads.";
    DoHandshakeOnConnect = "do_handshake_on_connect", Ssl, ["--do-handshake-on-connect"], NO_META,
        True, K::Bool, D::Bool(false), true,
        "Complete the TLS handshake as soon as a connection is accepted.",
        "Accepted for compatibility: ferrocorn always runs the handshake in the connection's own \
         task right after accept, bounded by `timeout`, never on the accept loop or the app.";
    Ciphers = "ciphers", Ssl, ["--ciphers"], NO_META, Store, K::Str, D::None, true,
        "The TLS cipher list, in OpenSSL syntax.",
        "Expanded by OpenSSL (through Python's `ssl`), then narrowed to the suites rustls \
         implements: ECDHE with AES-GCM or ChaCha20-Poly1305 for TLS 1.2, and the three TLS 1.3 \
         suites. A list that leaves none of them is a start-up error. rustls' defaults apply \
         when unset.";

    HttpProtocols = "http_protocols", Http2, ["--http-protocols"], m("STRING"), Store,
        K::HttpProtocols, D::Str("h1"), false,
        "The HTTP versions to offer, most preferred first.",
        "A comma-separated list of `h1` and `h2`.";
    Http2Cleartext = "http2_cleartext", Http2, ["--http2-cleartext"], m("STRING"), Store,
        K::Http2Cleartext, D::Str("off"), false,
        "Whether HTTP/2 may be used without TLS.",
        "`off`, `prior-knowledge`, `upgrade` or `both`.";
    Http2MaxConcurrentStreams = "http2_max_concurrent_streams", Http2,
        ["--http2-max-concurrent-streams"], m("INT"), Store, K::IntRange(1, i64::MAX), D::Int(100),
        false,
        "The most concurrent streams per HTTP/2 connection.",
        "At least 1.";
    Http2InitialWindowSize = "http2_initial_window_size", Http2, ["--http2-initial-window-size"],
        m("INT"), Store, K::IntRange(0, 2_147_483_647), D::Int(65535), false,
        "The initial HTTP/2 flow-control window, in bytes.",
        "At most 2^31-1.";
    Http2MaxFrameSize = "http2_max_frame_size", Http2, ["--http2-max-frame-size"], m("INT"), Store,
        K::IntRange(16384, 16_777_215), D::Int(16384), false,
        "The largest HTTP/2 frame payload accepted, in bytes.",
        "Between 16384 and 16777215.";
    Http2MaxHeaderListSize = "http2_max_header_list_size", Http2, ["--http2-max-header-list-size"],
        m("INT"), Store, K::Int, D::Int(65536), false,
        "The largest HTTP/2 header list accepted, in bytes.",
        "Counted after decompression.";

    RawPasteGlobalConf = "raw_paste_global_conf", ServerMechanics, ["--paste-global"], m("CONF"),
        Append, K::List, D::List(&[]), true,
        "A `KEY=VALUE` global passed to a PasteDeploy configuration.",
        "Repeat the flag for several values; `\\=` is a literal `=`. The values reach the ini \
         file as `%(KEY)s` and the app factory's `global_config`.";
    PermitObsoleteFolding = "permit_obsolete_folding", ServerMechanics,
        ["--permit-obsolete-folding"], NO_META, True, K::Bool, D::Bool(false), true,
        "Accept header values continued on the next line.",
        "Line folding is obsolete (RFC 9112 section 5.2) and refused by default.";
    StripHeaderSpaces = "strip_header_spaces", ServerMechanics, ["--strip-header-spaces"], NO_META,
        True, K::Bool, D::Bool(false), true,
        "Accept whitespace between a header name and its colon, removing it.",
        "Such requests are refused by default because proxies may read them differently \
         (request smuggling).";
    PermitUnconventionalHttpMethod = "permit_unconventional_http_method", ServerMechanics,
        ["--permit-unconventional-http-method"], NO_META, True, K::Bool, D::Bool(false), true,
        "Accept request methods outside the usual form.",
        "By default methods must be upper-case tokens of 3 to 20 characters.";
    PermitUnconventionalHttpVersion = "permit_unconventional_http_version", ServerMechanics,
        ["--permit-unconventional-http-version"], NO_META, True, K::Bool, D::Bool(false), true,
        "Accept request lines with an HTTP major version other than 1 (HTTP/0.x, HTTP/2.0 to 9.x).",
        "Such requests are refused by default (505). When accepted, HTTP/0.x is served as HTTP/1.0 and \
         HTTP/2.0 and later as HTTP/1.1; the syntax `HTTP/DIGIT.DIGIT` is always required.";
    CasefoldHttpMethod = "casefold_http_method", ServerMechanics, ["--casefold-http-method"],
        NO_META, True, K::Bool, D::Bool(false), true,
        "Upper-case request methods before passing them on.",
        "Kept for applications that relied on older, lenient behaviour.";
    ForwarderHeaders = "forwarder_headers", ServerMechanics, ["--forwarder-headers"], NO_META,
        Store, K::CommaList, D::Str("SCRIPT_NAME,PATH_INFO"), true,
        "Environ variables a trusted proxy may set through headers.",
        "A comma-separated list of header names containing `_` (compared without regard to \
         case; `*` means all). From addresses in `forwarded_allow_ips` (and unix-socket peers) \
         these headers pass whatever `header_map` says, and a `SCRIPT_NAME` header sets the \
         environ's `SCRIPT_NAME`; from anyone else they are handled by `header_map`. Make sure \
         the proxy never lets clients send them directly.";
    HeaderMap = "header_map", ServerMechanics, ["--header-map"], NO_META, Store,
        K::Choice(&["drop", "refuse", "dangerous"]), D::Str("drop"), true,
        "What to do with headers whose names would collide in the environ.",
        "Names differing only in `-` versus `_` map to the same `HTTP_` key. `drop` ignores such \
         headers, `refuse` rejects the request, `dangerous` maps them anyway.";

    AsgiLoop = "asgi_loop", WorkerProcesses, ["--asgi-loop"], m("STRING"), Store,
        K::Choice(&["auto", "asyncio", "uvloop"]), D::Str("auto"), false,
        "The event loop used by ASGI workers.",
        "`auto`, `asyncio` or `uvloop`.";
    AsgiLifespan = "asgi_lifespan", WorkerProcesses, ["--asgi-lifespan"], m("STRING"), Store,
        K::Choice(&["auto", "on", "off"]), D::Str("auto"), false,
        "Whether ASGI workers run the lifespan protocol.",
        "`auto`, `on` or `off`.";
    AsgiDisconnectGracePeriod = "asgi_disconnect_grace_period", WorkerProcesses,
        ["--asgi-disconnect-grace-period"], m("INT"), Store, K::Int, D::Int(3), false,
        "Seconds an ASGI app gets to notice a client disconnect.",
        "Afterwards its task is cancelled.";
    WebsocketMaxMessageSize = "websocket_max_message_size", WorkerProcesses,
        ["--websocket-max-message-size"], m("INT"), Store, K::Int, D::Int(16_777_216), false,
        "The largest WebSocket message accepted, in bytes.",
        "Applies to ASGI workers.";
    HttpParser = "http_parser", WorkerProcesses, ["--http-parser"], m("STRING"), Store,
        K::Choice(&["auto", "fast", "python"]), D::Str("auto"), true,
        "Which HTTP parser Gunicorn's workers use.",
        "`auto`, `fast` or `python` are accepted, and anything else refused, as by Gunicorn; \
         ferrocorn always uses its own strict parser whichever is chosen (and says so in the \
         debug log).";
    RootPath = "root_path", ServerMechanics, ["--root-path"], m("STRING"), Store, K::Str,
        D::Str(""), true,
        "The path prefix the application is mounted under (ASGI `root_path`).",
        "Used when a proxy serves the application below a sub-path. Gunicorn uses it for ASGI \
         apps only; WSGI apps get their prefix from `SCRIPT_NAME` (the environment, or a trusted \
         proxy's `SCRIPT_NAME` header), so for ferrocorn it is accepted and has no effect.";

    DirtyApps = "dirty_apps", DirtyArbiters, ["--dirty-app"], m("STRING"), Append, K::List,
        D::List(&[]), false,
        "Applications to run in separate \"dirty\" worker processes.",
        "For long or heavy tasks that should not block request workers.";
    DirtyWorkers = "dirty_workers", DirtyArbiters, ["--dirty-workers"], m("INT"), Store, K::Int,
        D::Int(0), false,
        "The number of dirty worker processes.",
        "`0` disables them.";
    DirtyTimeout = "dirty_timeout", DirtyArbiters, ["--dirty-timeout"], m("INT"), Store, K::Int,
        D::Int(300), false,
        "Seconds a dirty task may run.",
        "`0` disables the limit.";
    DirtyThreads = "dirty_threads", DirtyArbiters, ["--dirty-threads"], m("INT"), Store, K::Int,
        D::Int(1), false,
        "Threads per dirty worker.",
        "How many tasks one dirty worker runs at once.";
    DirtyGracefulTimeout = "dirty_graceful_timeout", DirtyArbiters, ["--dirty-graceful-timeout"],
        m("INT"), Store, K::Int, D::Int(30), false,
        "Seconds dirty workers get to finish when stopping.",
        "After that they are killed.";
    OnDirtyStarting = "on_dirty_starting", DirtyArbiterHooks, [], NO_META, Store, K::Hook(1),
        D::None, false,
        "Called when the dirty arbiter starts.",
        "Receives the dirty arbiter.";
    DirtyPostFork = "dirty_post_fork", DirtyArbiterHooks, [], NO_META, Store, K::Hook(2), D::None,
        false,
        "Called in a dirty worker just after it is forked.",
        "Receives the dirty arbiter and the worker.";
    DirtyWorkerInit = "dirty_worker_init", DirtyArbiterHooks, [], NO_META, Store, K::Hook(1),
        D::None, false,
        "Called in a dirty worker once its applications are loaded.",
        "Receives the worker.";
    DirtyWorkerExit = "dirty_worker_exit", DirtyArbiterHooks, [], NO_META, Store, K::Hook(2),
        D::None, false,
        "Called in a dirty worker just before it exits.",
        "Receives the dirty arbiter and the worker.";

    ControlSocket = "control_socket", Control, ["--control-socket"], m("PATH"), Store, K::Str,
        D::Computed("`$XDG_RUNTIME_DIR/gunicorn.ctl`, or `~/.gunicorn/gunicorn.ctl`"), true,
        "The path of the Unix socket for runtime control commands.",
        "Used by Gunicorn's `gunicornc` and by `ferrocorn ctl` (see docs/operations.md). A relative path is taken from the working directory; a missing parent directory is created (mode 0700). A live socket of another server at the same path is left alone (this server then runs without one), and only the socket file this server made is removed at exit. Read at start; HUP does not move it.";
    ControlSocketMode = "control_socket_mode", Control, ["--control-socket-mode"], m("INT"), Store,
        K::AutoInt, D::Int(0o600), true,
        "The permission bits of the control socket.",
        "Octal with a leading `0`, as for `umask`: `0600` lets only the server's user in, `0660` its group too. Connections are also checked against the mode with the peer's credentials (SO_PEERCRED), so loosening the file's permissions later lets no one else in.";
    ControlSocketDisable = "control_socket_disable", Control, ["--no-control-socket"], NO_META,
        True, K::Bool, D::Bool(false), true,
        "Do not open the control socket.",
        "Turns off runtime control commands.";
}

/// The row of a key. Indexing cannot fail: the macro builds both from the same list.
pub fn setting(key: Key) -> &'static Setting {
    &SETTINGS[key as usize]
}

/// The row with this setting name (as used in config files).
pub fn by_name(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_index_their_rows() {
        for (i, s) in SETTINGS.iter().enumerate() {
            assert_eq!(s.key as usize, i, "{} is out of place", s.name);
        }
    }

    #[test]
    fn names_and_flags_are_unique() {
        let mut names = std::collections::HashSet::new();
        let mut flags = std::collections::HashSet::new();
        for s in SETTINGS {
            assert!(names.insert(s.name), "duplicate name {}", s.name);
            for f in s.flags {
                assert!(flags.insert(*f), "duplicate flag {f}");
            }
        }
    }

    #[test]
    fn flag_actions_fit_kinds() {
        for s in SETTINGS {
            match s.action {
                Action::True | Action::False => assert_eq!(s.kind, Kind::Bool, "{}", s.name),
                Action::Append => assert!(matches!(s.kind, Kind::List | Kind::Files), "{}", s.name),
                _ => {}
            }
        }
    }
}

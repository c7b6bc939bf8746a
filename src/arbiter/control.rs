//! The control socket (`control_socket`): a Unix stream socket the master serves from its own
//! loop, speaking Gunicorn 27's `gunicornc` protocol, so that client (and `ferrocorn ctl`) can
//! list workers, resize the pool, reload, reopen logs and shut down.
//!
//! Wire format, both ways: a 4-byte big-endian length, then that many bytes of UTF-8 JSON.
//! Requests are `{"id": ..., "command": "show workers", "args": [...]}`; answers are
//! `{"id": ..., "status": "ok", "data": {...}}` or `{"id": ..., "status": "error", "error": "..."}`.
//!
//! Like the metrics endpoint, every exchange is non-blocking and bounded (message size, number
//! of clients, deadlines), so a client can never hold the master's loop. Peers are checked with
//! SO_PEERCRED against the socket's mode, so a socket file whose permissions were loosened after
//! the fact still refuses other users.

use super::{Abort, Arbiter};
use crate::worker::heartbeat::Heartbeat;
use crate::{log_debug, log_info, log_warning, sys};
use pyo3::prelude::*;
use serde_json::{Map, Value, json};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Commands are a few dozen bytes; anything this large is not a control client.
const MAX_MESSAGE: usize = 64 * 1024;
/// Connections served at once; the oldest is dropped to make room for a new one.
const MAX_CLIENTS: usize = 16;
/// An interactive client may sit idle this long between commands (Gunicorn's figure).
const IDLE: Duration = Duration::from_secs(300);
/// A message that has started must be complete within this, and an answer taken within it.
const EXCHANGE: Duration = Duration::from_secs(10);

/// What the run flow prepared from the config.
#[derive(Debug, Clone)]
pub struct ControlSpec {
    pub path: PathBuf,
    pub mode: u32,
}

/// Who may talk to the master, derived from the socket's mode.
#[derive(Debug, Clone, Copy)]
struct Access {
    uid: u32,
    gid: u32,
    mode: u32,
}

impl Access {
    fn allows(&self, uid: u32, gid: u32) -> bool {
        uid == 0 || uid == self.uid || (self.mode & 0o060 != 0 && gid == self.gid) || self.mode & 0o006 != 0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a request.
    Reading,
    /// An answer is being written; the connection closes once it is out.
    Closing,
}

struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    deadline: Instant,
    phase: Phase,
    /// A peer the mode does not admit: its first request is answered with this, then it is closed.
    refused: Option<String>,
}

/// A request taken off a connection, for the master to execute.
pub struct Request {
    client: usize,
    id: Value,
    command: Result<Command, String>,
}

pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
    /// Device and inode of the socket file we made: we unlink only that file, never a
    /// replacement another server put at the same path.
    file_id: (u64, u64),
    access: Access,
    clients: Vec<Client>,
}

/// Why the socket was not opened.
#[derive(Debug)]
pub enum OpenError {
    /// Another live server answers on this path; it is left alone.
    InUse(PathBuf),
    /// Something that is not a socket sits at the path; it is not removed.
    NotASocket(PathBuf),
    Io(PathBuf, io::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::InUse(p) => write!(f, "{} is in use by another running server", p.display()),
            OpenError::NotASocket(p) => write!(f, "{} exists and is not a socket; not removing it", p.display()),
            OpenError::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl ControlSocket {
    pub fn open(spec: &ControlSpec) -> Result<ControlSocket, OpenError> {
        let path = spec.path.clone();
        let io_err = |e| OpenError::Io(path.clone(), e);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io_err)?;
        }
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if !meta.file_type().is_socket() => return Err(OpenError::NotASocket(path)),
            Ok(_) => {
                if UnixStream::connect(&path).is_ok() {
                    return Err(OpenError::InUse(path));
                }
                // A socket nobody answers on: left behind by a server that died.
                std::fs::remove_file(&path).map_err(io_err)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        // Created owner-only, then widened to the configured mode: never more open than asked.
        let old = sys::set_umask(0o177);
        let bound = UnixListener::bind(&path);
        sys::set_umask(old);
        let listener = bound.map_err(io_err)?;
        let made = (|| {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(spec.mode & 0o777))?;
            listener.set_nonblocking(true)?;
            std::fs::symlink_metadata(&path)
        })();
        let meta = match made {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(io_err(e));
            }
        };
        let access = Access { uid: nix::unistd::geteuid().as_raw(), gid: nix::unistd::getegid().as_raw(), mode: spec.mode };
        Ok(ControlSocket { listener, path, file_id: (meta.dev(), meta.ino()), access, clients: Vec::new() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops serving and removes the socket file, if it is still ours. (Dropping without this,
    /// as a forked worker does, leaves the file to the master.)
    pub fn close(self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.file_id {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }

    /// The descriptors the master's poll should wake on.
    pub fn poll_fds(&self, out: &mut Vec<RawFd>) {
        out.push(self.listener.as_raw_fd());
        out.extend(self.clients.iter().filter(|c| c.phase == Phase::Reading).map(|c| c.stream.as_raw_fd()));
    }

    /// A shorter poll while an answer is waiting to be written.
    pub fn wants_write(&self) -> bool {
        self.clients.iter().any(|c| !c.out.is_empty())
    }

    /// Accepts, reads and flushes what is ready without blocking; returns complete requests.
    pub fn poll(&mut self, now: Instant) -> Vec<Request> {
        self.accept_all(now);
        let mut requests = Vec::new();
        for (i, c) in self.clients.iter_mut().enumerate() {
            if c.phase == Phase::Reading && c.out.is_empty() {
                match c.read(now) {
                    Ok(Some((id, command))) => {
                        let command = match &c.refused {
                            Some(why) => {
                                c.phase = Phase::Closing;
                                Err(why.clone())
                            }
                            None => command,
                        };
                        requests.push(Request { client: i, id, command });
                    }
                    Ok(None) => {}
                    Err(why) => {
                        log_debug!("control client dropped: {why}");
                        c.phase = Phase::Closing;
                        c.out.clear();
                    }
                }
            }
        }
        requests
    }

    /// Queues the answer to `req` and tries to send it at once.
    pub fn answer(&mut self, req: &Request, response: &Value) {
        let Some(c) = self.clients.get_mut(req.client) else { return };
        c.out.extend_from_slice(&frame(response));
        c.deadline = Instant::now() + EXCHANGE;
    }

    /// Writes pending answers and drops finished, failed and expired connections.
    pub fn flush(&mut self, now: Instant) {
        self.clients.retain_mut(|c| {
            if !c.out.is_empty() {
                match c.stream.write(&c.out) {
                    Ok(n) => {
                        c.out.drain(..n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
                if c.out.is_empty() && c.phase == Phase::Reading {
                    c.deadline = now + IDLE;
                }
            }
            let done = c.phase == Phase::Closing && c.out.is_empty();
            !done && now < c.deadline
        });
    }

    fn accept_all(&mut self, now: Instant) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if stream.set_nonblocking(true).is_err() {
                        continue;
                    }
                    let refused = self.check_peer(&stream).err();
                    let deadline = match &refused {
                        Some(why) => {
                            log_warning!("control socket: refused a connection: {why}");
                            now + EXCHANGE
                        }
                        None => now + IDLE,
                    };
                    let client = Client { stream, inbuf: Vec::new(), out: Vec::new(), deadline, phase: Phase::Reading, refused };
                    if self.clients.len() >= MAX_CLIENTS {
                        self.clients.remove(0);
                    }
                    self.clients.push(client);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if e.kind() != io::ErrorKind::WouldBlock {
                        log_debug!("control accept: {e}");
                    }
                    return;
                }
            }
        }
    }

    fn check_peer(&self, stream: &UnixStream) -> Result<(), String> {
        use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
        let cred = getsockopt(stream, PeerCredentials).map_err(|e| format!("cannot read the peer's credentials: {e}"))?;
        let (uid, gid) = (cred.uid(), cred.gid());
        if self.access.allows(uid, gid) {
            Ok(())
        } else {
            Err(format!("Permission denied: uid {uid} (pid {}) may not use this control socket", cred.pid()))
        }
    }
}

/// A complete request off the wire: its id, and the command or why it is not one.
type Message = (Value, Result<Command, String>);

impl Client {
    /// Reads what has arrived; returns a request once one is complete.
    fn read(&mut self, now: Instant) -> Result<Option<Message>, String> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(msg) = self.take_message()? {
                return Ok(Some(msg));
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return Err("closed".into()),
                Ok(n) => {
                    if self.inbuf.is_empty() {
                        self.deadline = now + EXCHANGE;
                    }
                    self.inbuf.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn take_message(&mut self) -> Result<Option<Message>, String> {
        let Some(head) = self.inbuf.first_chunk::<4>() else { return Ok(None) };
        let len = usize::try_from(u32::from_be_bytes(*head)).map_err(|_| "length does not fit".to_string())?;
        if len > MAX_MESSAGE {
            return Err(format!("message of {len} bytes is larger than {MAX_MESSAGE}"));
        }
        let Some(payload) = self.inbuf.get(4..4 + len) else { return Ok(None) };
        let parsed: Value = serde_json::from_slice(payload).map_err(|e| format!("invalid JSON: {e}"))?;
        self.inbuf.drain(..4 + len);
        let Value::Object(msg) = parsed else { return Err("a request must be a JSON object".into()) };
        let id = msg.get("id").cloned().unwrap_or(Value::from(0));
        Ok(Some((id, Command::from_message(&msg))))
    }
}

fn frame(v: &Value) -> Vec<u8> {
    let payload = v.to_string().into_bytes();
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + payload.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

fn ok_response(id: &Value, data: Value) -> Value {
    json!({"id": id, "status": "ok", "data": data})
}

fn error_response(id: &Value, error: &str) -> Value {
    json!({"id": id, "status": "error", "error": error})
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    All,
    Workers,
    Dirty,
    Config,
    Stats,
    Listeners,
    /// ferrocorn's own: per-worker counters for `ferrocorn ctl top`.
    Top,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    Graceful,
    Quick,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Show(Show),
    WorkerAdd(u64),
    WorkerRemove(u64),
    WorkerKill(i32),
    /// ferrocorn has no dirty arbiter; these answer as Gunicorn does when none runs.
    DirtyChange,
    Reload,
    Reopen,
    Shutdown(Shutdown),
    Help,
}

impl Command {
    /// Parses `command` (split as a shell would) followed by `args`, as Gunicorn's server does.
    fn from_message(msg: &Map<String, Value>) -> Result<Command, String> {
        let command = match msg.get("command") {
            None => "",
            Some(Value::String(s)) => s.trim(),
            Some(_) => return Err("Invalid argument: command must be a string".into()),
        };
        if command.is_empty() {
            return Err("Empty command".into());
        }
        let mut parts = shlex::split(command).ok_or_else(|| "Invalid argument: No closing quotation".to_string())?;
        if let Some(Value::Array(args)) = msg.get("args") {
            parts.extend(args.iter().map(|a| match a {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }));
        }
        Command::parse(&parts).map_err(|e| format!("Invalid argument: {e}"))
    }

    pub fn parse(parts: &[String]) -> Result<Command, String> {
        let lower = |i: usize| parts.get(i).map(|s| s.to_lowercase());
        let Some(cmd) = lower(0) else { return Err("Empty command".into()) };
        let count = |i: usize| -> Result<u64, String> {
            match parts.get(i) {
                None => Ok(1),
                Some(s) => Ok(u64::try_from(parse_int(s)?).unwrap_or(0).max(1)),
            }
        };
        Ok(match cmd.as_str() {
            "show" => Command::Show(match lower(1).as_deref() {
                None => return Err("Missing show target (all|workers|dirty|config|stats|listeners|top)".into()),
                Some("all") => Show::All,
                Some("workers") => Show::Workers,
                Some("dirty") => Show::Dirty,
                Some("config") => Show::Config,
                Some("stats") => Show::Stats,
                Some("listeners") => Show::Listeners,
                Some("top") => Show::Top,
                Some(other) => return Err(format!("Unknown show target: {other}")),
            }),
            "worker" => match lower(1).as_deref() {
                None => return Err("Missing worker action (add|remove|kill)".into()),
                Some("add") => Command::WorkerAdd(count(2)?),
                Some("remove") => Command::WorkerRemove(count(2)?),
                Some("kill") => {
                    let pid = parts.get(2).ok_or("Missing PID for worker kill")?;
                    Command::WorkerKill(i32::try_from(parse_int(pid)?).map_err(|_| format!("no such pid: {pid}"))?)
                }
                Some(other) => return Err(format!("Unknown worker action: {other}")),
            },
            "dirty" => match lower(1).as_deref() {
                None => return Err("Missing dirty action (add|remove)".into()),
                Some("add" | "remove") => {
                    count(2)?;
                    Command::DirtyChange
                }
                Some(other) => return Err(format!("Unknown dirty action: {other}")),
            },
            "reload" => Command::Reload,
            "reopen" => Command::Reopen,
            "shutdown" => Command::Shutdown(match lower(1).as_deref() {
                None | Some("graceful") => Shutdown::Graceful,
                Some("quick") => Shutdown::Quick,
                // Gunicorn treats any other word as graceful; a typo should not stop a server.
                Some(other) => return Err(format!("Unknown shutdown mode: {other} (graceful|quick)")),
            }),
            "help" => Command::Help,
            other => return Err(format!("Unknown command: {other}")),
        })
    }
}

/// An integer as Python's `int()` reads one: optional sign, surrounding spaces, `_` between digits.
fn parse_int(s: &str) -> Result<i64, String> {
    let t = s.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    let clean = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.chars().all(|c| c.is_ascii_digit() || c == '_');
    if !clean {
        return Err(format!("invalid literal for int() with base 10: '{s}'"));
    }
    t.replace('_', "").parse::<i64>().map_err(|_| format!("number out of range: '{s}'"))
}

/// What the control commands report that the master would not otherwise keep.
#[derive(Debug, Clone)]
pub struct Tally {
    pub started: SystemTime,
    pub workers_spawned: u64,
    pub workers_killed: u64,
    pub reloads: u64,
}

impl Tally {
    pub fn new() -> Tally {
        Tally { started: SystemTime::now(), workers_spawned: 0, workers_killed: 0, reloads: 0 }
    }
}

fn round2(secs: f64) -> f64 {
    (secs * 100.0).round() / 100.0
}

/// Seconds of CPU (user + system) a process has used, from `/proc/PID/stat`.
fn cpu_seconds(pid: i32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split_ascii_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no memory arguments; it returns -1 for an unknown name.
    let ticks = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok().filter(|&t| t > 0)?;
    Some(round2((utime + stime) as f64 / ticks as f64))
}

/// Resident memory of a process, from `/proc/PID/statm`.
pub(super) fn rss_bytes(pid: i32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_ascii_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: as above.
    let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok().filter(|&p| p > 0)?;
    pages.checked_mul(page)
}

/// The settings `show config` reports: the keys Gunicorn's handler lists, with ferrocorn's
/// effective values (the dirty-arbiter ones at their inert defaults).
pub fn config_snapshot(cfg: &crate::config::Config) -> Value {
    use crate::config::{Key, Value as V};
    const KEYS: &[(&str, Key)] = &[
        ("bind", Key::Bind),
        ("workers", Key::Workers),
        ("worker_class", Key::WorkerClass),
        ("threads", Key::Threads),
        ("timeout", Key::Timeout),
        ("graceful_timeout", Key::GracefulTimeout),
        ("keepalive", Key::Keepalive),
        ("max_requests", Key::MaxRequests),
        ("max_requests_jitter", Key::MaxRequestsJitter),
        ("worker_connections", Key::WorkerConnections),
        ("preload_app", Key::Preload),
        ("daemon", Key::Daemon),
        ("pidfile", Key::Pidfile),
        ("proc_name", Key::ProcName),
        ("reload", Key::Reload),
        ("dirty_workers", Key::DirtyWorkers),
        ("dirty_apps", Key::DirtyApps),
        ("dirty_timeout", Key::DirtyTimeout),
        ("control_socket", Key::ControlSocket),
        ("control_socket_disable", Key::ControlSocketDisable),
    ];
    let mut out = Map::new();
    for &(name, key) in KEYS {
        let v = match cfg.get(key) {
            V::None => Value::Null,
            V::Bool(b) => Value::from(*b),
            V::Int(i) => Value::from(*i),
            V::Float(f) => Value::from(*f),
            V::Str(s) => Value::from(s.as_str()),
            V::List(l) => Value::from(l.clone()),
            V::Pairs(p) => Value::Object(p.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect()),
            V::Py(_, text) => Value::from(text.as_str()),
        };
        out.insert(name.into(), v);
    }
    Value::Object(out)
}

impl Arbiter {
    /// Opens the control socket unless disabled. A failure is a warning, as in Gunicorn: the
    /// server runs without it.
    pub(super) fn open_control(&mut self) {
        if self.control.is_some() {
            return;
        }
        let Some(spec) = self.spec.control.clone() else {
            log_debug!("Control socket disabled");
            return;
        };
        match ControlSocket::open(&spec) {
            Ok(c) => {
                log_info!("Control socket listening at {}", c.path().display());
                self.control = Some(c);
            }
            Err(e) => log_warning!("Failed to start control socket: {e}"),
        }
    }

    pub(super) fn close_control(&mut self) {
        if let Some(c) = self.control.take() {
            c.close();
        }
    }

    /// Serves the control socket for one pass of the loop.
    pub(super) fn serve_control(&mut self, py: Python<'_>) {
        let Some(mut ctl) = self.control.take() else { return };
        let now = Instant::now();
        for req in ctl.poll(now) {
            let response = match &req.command {
                Ok(cmd) => match self.execute(py, cmd) {
                    Ok(data) => ok_response(&req.id, data),
                    Err(e) => error_response(&req.id, &e),
                },
                Err(e) => error_response(&req.id, e),
            };
            ctl.answer(&req, &response);
        }
        ctl.flush(now);
        self.control = Some(ctl);
    }

    fn execute(&mut self, py: Python<'_>, cmd: &Command) -> Result<Value, String> {
        Ok(match *cmd {
            Command::Show(Show::Workers) => {
                // Gunicorn's fields, plus what each busy lane is doing (ferrocorn's own).
                let workers = self.worker_rows(|_, w| self.lane_fields(w));
                json!({"count": workers.len(), "workers": workers})
            }
            Command::Show(Show::All) => {
                let workers = self.worker_rows(|_, _| {
                    let mut m = Map::new();
                    m.insert("type".into(), "web".into());
                    m
                });
                json!({
                    "arbiter": {"pid": self.pid, "type": "arbiter", "role": "master"},
                    "web_workers": workers,
                    "web_worker_count": workers.len(),
                    "dirty_arbiter": null,
                    "dirty_workers": [],
                    "dirty_worker_count": 0,
                })
            }
            Command::Show(Show::Dirty) => json!({"enabled": false, "pid": null, "workers": [], "apps": []}),
            Command::Show(Show::Config) => self.spec.config_snapshot.clone(),
            Command::Show(Show::Stats) => json!({
                "uptime": round2(self.tally.started.elapsed().unwrap_or_default().as_secs_f64()),
                "pid": self.pid,
                "workers_current": self.workers.len(),
                "workers_target": self.num_workers,
                "workers_spawned": self.tally.workers_spawned,
                "workers_killed": self.tally.workers_killed,
                "reloads": self.tally.reloads,
                "dirty_arbiter_pid": null,
            }),
            Command::Show(Show::Listeners) => {
                let listeners: Vec<Value> = self
                    .listeners
                    .iter()
                    .map(|l| {
                        let kind = match l.kind() {
                            crate::sock::ListenerKind::Unix { .. } => "unix",
                            crate::sock::ListenerKind::Tcp(t) => match t.local_addr() {
                                Ok(a) if a.is_ipv6() => "tcp6",
                                Ok(_) => "tcp",
                                Err(_) => "unknown",
                            },
                        };
                        json!({"address": l.describe(), "fd": l.raw_fd(), "type": kind})
                    })
                    .collect();
                json!({"count": listeners.len(), "listeners": listeners})
            }
            Command::Show(Show::Top) => self.top(),
            Command::WorkerAdd(n) => {
                let previous = self.num_workers;
                let room = crate::worker::MAX_WORKER_SLOTS.saturating_sub(previous);
                let add = usize::try_from(n).unwrap_or(usize::MAX);
                if add > room {
                    return Err(format!("Invalid argument: at most {room} more workers can be added"));
                }
                self.set_num_workers(py, previous + add);
                json!({"added": add, "previous": previous, "total": self.num_workers})
            }
            Command::WorkerRemove(n) => {
                let previous = self.num_workers;
                let total = previous.saturating_sub(usize::try_from(n).unwrap_or(usize::MAX)).max(1);
                self.set_num_workers(py, total);
                json!({"removed": previous - total, "previous": previous, "total": total})
            }
            Command::WorkerKill(pid) => {
                if !self.workers.contains_key(&pid) {
                    return Ok(json!({"success": false, "error": format!("Worker {pid} not found")}));
                }
                sys::kill(pid, libc::SIGTERM);
                self.tally.workers_killed += 1;
                json!({"success": true, "killed": pid})
            }
            Command::DirtyChange => json!({"success": false, "error": "Dirty arbiter not running"}),
            // As Gunicorn does: the master signals itself, and the loop handles it as usual.
            Command::Reload => {
                sys::kill(self.pid, libc::SIGHUP);
                json!({"status": "reloading"})
            }
            Command::Reopen => {
                sys::kill(self.pid, libc::SIGUSR1);
                json!({"status": "reopening"})
            }
            Command::Shutdown(mode) => {
                let (sig, name) = match mode {
                    Shutdown::Graceful => (libc::SIGTERM, "graceful"),
                    Shutdown::Quick => (libc::SIGINT, "quick"),
                };
                sys::kill(self.pid, sig);
                json!({"status": "shutting_down", "mode": name})
            }
            Command::Help => json!({"commands": {
                "show all": "Show all processes (arbiter, web workers, dirty workers)",
                "show workers": "List HTTP workers with their status",
                "show dirty": "List dirty workers and apps (ferrocorn has none)",
                "show config": "Show current effective configuration",
                "show stats": "Show server statistics",
                "show listeners": "Show bound sockets",
                "show top": "Per-worker requests, in flight, memory and CPU (ferrocorn)",
                "worker add [N]": "Spawn N workers (default 1)",
                "worker remove [N]": "Remove N workers (default 1)",
                "worker kill <PID>": "Gracefully terminate specific worker",
                "dirty add [N]": "Spawn N dirty workers (default 1)",
                "dirty remove [N]": "Remove N dirty workers (default 1)",
                "reload": "Graceful reload (HUP)",
                "reopen": "Reopen log files (USR1)",
                "shutdown [graceful|quick]": "Shutdown server (TERM/INT)",
                "help": "Show this help message",
            }}),
        })
    }

    /// One entry per worker, oldest first, with Gunicorn's fields plus whatever `extra` adds.
    fn worker_rows(&self, extra: impl Fn(i32, &super::WorkerInfo) -> Map<String, Value>) -> Vec<Value> {
        let mut rows: Vec<(u64, Value)> = self
            .workers
            .iter()
            .map(|(&pid, w)| {
                let hb = Heartbeat::new(self.slots.clone(), w.slot);
                let mut m = Map::new();
                m.insert("pid".into(), pid.into());
                m.insert("age".into(), w.age.into());
                m.insert("booted".into(), hb.booted().into());
                m.insert("aborted".into(), (w.abort != Abort::None).into());
                m.insert("last_heartbeat".into(), json!(round2(Duration::from_millis(hb.silent_for_ms()).as_secs_f64())));
                m.extend(extra(pid, w));
                (w.age, Value::Object(m))
            })
            .collect();
        rows.sort_by_key(|(age, _)| *age);
        rows.into_iter().map(|(_, v)| v).collect()
    }

    /// `current`: the requests the worker has in the app (method, path, seconds running), up
    /// to the lane entries it publishes; `current_unlisted`: how many more are in flight.
    fn lane_fields(&self, w: &super::WorkerInfo) -> Map<String, Value> {
        let mut m = Map::new();
        let Some(stats) = self.metrics.as_ref().map(|t| t.stats(w.slot)) else { return m };
        let lanes = stats.lanes();
        let in_flight = stats.snapshot().in_flight;
        let listed = u64::try_from(lanes.len()).unwrap_or(u64::MAX);
        let rows: Vec<Value> = lanes
            .into_iter()
            .map(|l| json!({"method": l.method, "path": l.path, "path_cut": l.cut, "running": round2(l.running.as_secs_f64())}))
            .collect();
        m.insert("current".into(), Value::Array(rows));
        m.insert("current_unlisted".into(), in_flight.saturating_sub(listed).into());
        m
    }

    /// `show top`: what `ferrocorn ctl top` draws.
    fn top(&self) -> Value {
        let workers = self.worker_rows(|pid, w| {
            let mut m = Map::new();
            m.insert("uptime".into(), json!(round2(w.born.elapsed().as_secs_f64())));
            m.insert("retiring".into(), (w.generation == super::RETIRING).into());
            m.insert("recycling".into(), (w.generation == super::RECYCLING).into());
            let stats = self.metrics.as_ref().map(|t| t.stats(w.slot).snapshot());
            m.insert("requests".into(), json!(stats.map(|s| s.requests)));
            m.insert("in_flight".into(), json!(stats.map(|s| s.in_flight)));
            m.insert("busy_seconds".into(), json!(stats.map(|s| round2(Duration::from_micros(s.busy_us).as_secs_f64()))));
            m.insert("rss_bytes".into(), json!(rss_bytes(pid)));
            m.insert("cpu_seconds".into(), json!(cpu_seconds(pid)));
            m.extend(self.lane_fields(w));
            m
        });
        json!({
            "pid": self.pid,
            "uptime": round2(self.tally.started.elapsed().unwrap_or_default().as_secs_f64()),
            "workers_target": self.num_workers,
            "rss_bytes": rss_bytes(self.pid),
            "cpu_seconds": cpu_seconds(self.pid),
            "workers": workers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Command, String> {
        let mut m = Map::new();
        m.insert("command".into(), s.into());
        Command::from_message(&m)
    }

    #[test]
    fn parses_gunicornc_commands() {
        assert_eq!(parse("show workers"), Ok(Command::Show(Show::Workers)));
        assert_eq!(parse("  SHOW Stats "), Ok(Command::Show(Show::Stats)));
        assert_eq!(parse("worker add"), Ok(Command::WorkerAdd(1)));
        assert_eq!(parse("worker add 3"), Ok(Command::WorkerAdd(3)));
        // Gunicorn clamps counts to at least one.
        assert_eq!(parse("worker remove -4"), Ok(Command::WorkerRemove(1)));
        assert_eq!(parse("worker kill 42"), Ok(Command::WorkerKill(42)));
        assert_eq!(parse("shutdown"), Ok(Command::Shutdown(Shutdown::Graceful)));
        assert_eq!(parse("shutdown quick"), Ok(Command::Shutdown(Shutdown::Quick)));
        let mut m = Map::new();
        m.insert("command".into(), "worker add".into());
        m.insert("args".into(), json!([2]));
        assert_eq!(Command::from_message(&m), Ok(Command::WorkerAdd(2)));
    }

    #[test]
    fn refuses_bad_commands_with_a_reason() {
        assert_eq!(parse(""), Err("Empty command".into()));
        assert!(parse("frobnicate").unwrap_err().contains("Unknown command: frobnicate"));
        assert!(parse("show").unwrap_err().contains("Missing show target"));
        assert!(parse("worker add x").unwrap_err().contains("invalid literal"));
        assert!(parse("worker add 99999999999999999999999").unwrap_err().contains("out of range"));
        assert!(parse("worker kill 99999999999").unwrap_err().contains("no such pid"));
        assert!(parse("worker kill").unwrap_err().contains("Missing PID"));
        assert!(parse("shutdown quik").unwrap_err().contains("Unknown shutdown mode"));
        assert!(parse("show 'workers").unwrap_err().contains("No closing quotation"));
        let mut m = Map::new();
        m.insert("command".into(), json!(7));
        assert!(Command::from_message(&m).is_err());
    }

    #[test]
    fn access_follows_the_mode() {
        let owner_only = Access { uid: 1000, gid: 1000, mode: 0o600 };
        assert!(owner_only.allows(1000, 5));
        assert!(owner_only.allows(0, 0));
        assert!(!owner_only.allows(1001, 1000));
        let group = Access { mode: 0o660, ..owner_only };
        assert!(group.allows(1001, 1000));
        assert!(!group.allows(1001, 1001));
    }

    #[test]
    fn frames_are_length_prefixed_json() {
        let f = frame(&json!({"a": 1}));
        assert_eq!(&f[..4], &7u32.to_be_bytes());
        assert_eq!(&f[4..], br#"{"a":1}"#);
    }
}

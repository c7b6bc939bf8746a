//! Listening sockets: bind addresses (`HOST`, `HOST:PORT`, `[v6]:PORT`, `unix:PATH`, `fd://FD`),
//! creating and inheriting listeners, and removing unix socket files at shutdown.
//!
//! The master creates every listener before forking; workers inherit them across `fork` and set
//! whatever blocking mode they need. Listeners keep `FD_CLOEXEC` so a program exec'd by the app
//! never holds them; the master clears it explicitly on the fds it hands to a re-exec'd master.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use socket2::{Domain, SockAddr, SockRef, Socket, Type};

mod addr;

pub use addr::{BindAddr, BindError, DEFAULT_PORT, parse_bind};

/// systemd passes activated sockets starting at this fd (`SD_LISTEN_FDS_START`).
const SD_LISTEN_FDS_START: RawFd = 3;

/// An open listening socket owned by the master and inherited by workers across fork.
#[derive(Debug)]
pub struct Listener {
    kind: ListenerKind,
    /// `SERVER_NAME`/`SERVER_PORT` computed once, since workers need them on every request.
    server_name: String,
    server_port: String,
}

#[derive(Debug)]
pub enum ListenerKind {
    Tcp(TcpListener),
    /// `path` is `None` for abstract or unnamed sockets adopted from a parent (nothing to unlink).
    Unix {
        listener: UnixListener,
        path: Option<PathBuf>,
        shown: String,
    },
}

impl Listener {
    fn tcp(listener: TcpListener) -> io::Result<Listener> {
        let addr = listener.local_addr()?;
        Ok(Listener {
            kind: ListenerKind::Tcp(listener),
            server_name: addr.ip().to_string(),
            server_port: addr.port().to_string(),
        })
    }

    fn unix(listener: UnixListener, path: Option<PathBuf>, shown: String) -> Listener {
        // Gunicorn splits the socket name at ':' and uses the pieces as name and port when there
        // are two; for an ordinary path the port is empty (see `environ_server`).
        let (name, port) = match shown.split_once(':') {
            Some((n, p)) => (n.to_string(), p.split(':').next().unwrap_or("").to_string()),
            None => (shown.clone(), String::new()),
        };
        Listener { kind: ListenerKind::Unix { listener, path, shown }, server_name: name, server_port: port }
    }

    pub fn kind(&self) -> &ListenerKind {
        &self.kind
    }

    /// The socket itself, for a worker that takes ownership of its inherited copy.
    pub fn into_kind(self) -> ListenerKind {
        self.kind
    }

    pub fn is_unix(&self) -> bool {
        matches!(self.kind, ListenerKind::Unix { .. })
    }

    /// As Gunicorn prints it: `http://127.0.0.1:8000`, `http://[::1]:8000` or `unix:/run/app.sock`.
    pub fn describe(&self) -> String {
        self.describe_with_scheme("http")
    }

    /// Like `describe` with another scheme for TCP listeners (`https` when TLS is on).
    pub fn describe_with_scheme(&self, scheme: &str) -> String {
        match &self.kind {
            ListenerKind::Tcp(_) if self.server_name.contains(':') => {
                format!("{scheme}://[{}]:{}", self.server_name, self.server_port)
            }
            ListenerKind::Tcp(_) => format!("{scheme}://{}:{}", self.server_name, self.server_port),
            ListenerKind::Unix { shown, .. } => format!("unix:{shown}"),
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        match &self.kind {
            ListenerKind::Tcp(l) => l.as_raw_fd(),
            ListenerKind::Unix { listener, .. } => listener.as_raw_fd(),
        }
    }

    /// `(SERVER_NAME, SERVER_PORT)` as Gunicorn derives them from the listening socket: the IP
    /// (IPv6 without brackets) and port for TCP; for unix sockets the path and an empty port,
    /// which Gunicorn replaces from the `Host` header when there is one (see `environ_server`).
    pub fn local_addr_for_environ(&self) -> (String, String) {
        (self.server_name.clone(), self.server_port.clone())
    }

    /// `SERVER_NAME` without allocating (see `local_addr_for_environ`).
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// `SERVER_PORT` without allocating; empty for an ordinary unix socket path.
    pub fn server_port(&self) -> &str {
        &self.server_port
    }

    /// Gunicorn's full `SERVER_NAME`/`SERVER_PORT` rule: TCP listeners give their own address;
    /// a unix listener takes them from the `Host` header (port 80/443 by scheme when the header
    /// has none), and falls back to the socket path with an empty port.
    pub fn environ_server(&self, host_header: Option<&str>, scheme: &str) -> (String, String) {
        match (&self.kind, host_header) {
            (ListenerKind::Unix { .. }, Some(host)) if self.server_port.is_empty() => match host.split_once(':') {
                Some((n, p)) => (n.to_string(), p.split(':').next().unwrap_or("").to_string()),
                None => {
                    let port = match scheme {
                        "http" => "80",
                        "https" => "443",
                        _ => "",
                    };
                    (host.to_string(), port.to_string())
                }
            },
            _ => self.local_addr_for_environ(),
        }
    }

    /// The socket path to remove at final shutdown, if this is a filesystem unix socket.
    pub fn unix_path(&self) -> Option<&Path> {
        match &self.kind {
            ListenerKind::Unix { path, .. } => path.as_deref(),
            ListenerKind::Tcp(_) => None,
        }
    }
}

/// Options for creating listeners.
#[derive(Debug, Clone)]
pub struct BindOptions {
    pub backlog: i32,
    pub reuse_port: bool,
    /// How many times to retry a busy address, one second apart, after the first attempt.
    /// Gunicorn makes 5 attempts in all, which is `retries: 4`.
    pub retries: u32,
}

impl Default for BindOptions {
    fn default() -> BindOptions {
        BindOptions { backlog: 2048, reuse_port: false, retries: 4 }
    }
}

/// Why one bind attempt failed: busy addresses are retried, everything else fails at once.
enum Attempt {
    Busy,
    Fatal(BindError),
}

/// Opens every address, retrying busy ones; a socket file left by a dead server is replaced.
pub fn bind_all(addrs: &[BindAddr], opts: &BindOptions) -> Result<Vec<Listener>, BindError> {
    let mut seen_fds = Vec::new();
    let mut out = Vec::with_capacity(addrs.len());
    for addr in addrs {
        if let BindAddr::Fd(fd) = addr {
            if seen_fds.contains(fd) {
                return Err(BindError::DuplicateFd { fd: *fd });
            }
            seen_fds.push(*fd);
            out.push(adopt_fd(*fd, opts)?);
            continue;
        }
        out.push(bind_with_retries(addr, opts)?);
    }
    Ok(out)
}

fn bind_with_retries(addr: &BindAddr, opts: &BindOptions) -> Result<Listener, BindError> {
    let shown = addr.to_string();
    let attempts = opts.retries.saturating_add(1);
    for attempt in 1..=attempts {
        match bind_once(addr, opts) {
            Ok(l) => return Ok(l),
            Err(Attempt::Fatal(e)) => return Err(e),
            Err(Attempt::Busy) => {
                crate::log_error!("Connection in use: {shown}");
                if attempt < attempts {
                    crate::log_debug!("Retrying in 1 second.");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }
    Err(BindError::InUse { addr: shown, attempts })
}

fn os_err(addr: &BindAddr, op: &'static str, source: io::Error) -> Attempt {
    if source.kind() == io::ErrorKind::AddrInUse {
        return Attempt::Busy;
    }
    Attempt::Fatal(BindError::Os { addr: addr.to_string(), op, source })
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, BindError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    let addrs: Vec<SocketAddr> =
        (host, port).to_socket_addrs().map_err(|e| BindError::Resolve { host: host.to_string(), source: Some(e) })?.collect();
    // Gunicorn opens an AF_INET socket for every host name, so IPv4 wins when both exist.
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| BindError::Resolve { host: host.to_string(), source: None })
}

fn bind_once(addr: &BindAddr, opts: &BindOptions) -> Result<Listener, Attempt> {
    match addr {
        BindAddr::Tcp { host, port } => {
            let sa = resolve(host, *port).map_err(Attempt::Fatal)?;
            // socket2 creates the socket with CLOEXEC set, which is what we want (see module doc).
            let sock =
                Socket::new(Domain::for_address(sa), Type::STREAM, None).map_err(|e| os_err(addr, "create a socket for", e))?;
            // IPV6_V6ONLY is left at the system default, as Gunicorn leaves it (dual-stack `[::]`
            // on Linux unless net.ipv6.bindv6only is set).
            set_common_options(&sock, opts).map_err(|e| os_err(addr, "set options on", e))?;
            sock.set_tcp_nodelay(true).map_err(|e| os_err(addr, "set TCP_NODELAY on", e))?;
            sock.bind(&sa.into()).map_err(|e| os_err(addr, "bind", e))?;
            sock.listen(opts.backlog).map_err(|e| os_err(addr, "listen on", e))?;
            Listener::tcp(sock.into()).map_err(|e| os_err(addr, "read the address of", e))
        }
        BindAddr::Unix(path) => {
            clear_stale_unix_socket(addr, path)?;
            let sa = SockAddr::unix(path).map_err(|e| os_err(addr, "bind", e))?;
            let sock = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(|e| os_err(addr, "create a socket for", e))?;
            sock.set_reuse_address(true).map_err(|e| os_err(addr, "set options on", e))?;
            // The file's mode is 0777 minus the process umask, which the caller sets beforehand.
            sock.bind(&sa).map_err(|e| os_err(addr, "bind", e))?;
            sock.listen(opts.backlog).map_err(|e| os_err(addr, "listen on", e))?;
            let shown = path.display().to_string();
            Ok(Listener::unix(sock.into(), Some(path.clone()), shown))
        }
        BindAddr::Fd(fd) => adopt_fd(*fd, opts).map_err(Attempt::Fatal),
    }
}

fn set_common_options(sock: &Socket, opts: &BindOptions) -> io::Result<()> {
    sock.set_reuse_address(true)?;
    if opts.reuse_port {
        // Gunicorn ignores kernels that do not know the option; so do we.
        if let Err(e) = sock.set_reuse_port(true) {
            if !matches!(e.raw_os_error(), Some(libc::ENOPROTOOPT) | Some(libc::EINVAL)) {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Removes a socket file nobody listens on; a live one means the address is busy.
fn clear_stale_unix_socket(addr: &BindAddr, path: &Path) -> Result<(), Attempt> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(os_err(addr, "inspect", e)),
    };
    if !meta.file_type().is_socket() {
        return Err(Attempt::Fatal(BindError::NotASocket { path: path.to_path_buf() }));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(Attempt::Busy),
        // Nobody accepts on it: the server that made it is gone.
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(os_err(addr, "remove the stale socket file of", e)),
        },
        Err(e) => Err(os_err(addr, "probe the existing socket file of", e)),
    }
}

fn bad_fd(fd: RawFd, why: impl Into<String>) -> BindError {
    BindError::BadFd { fd, why: why.into() }
}

/// Takes ownership of an already-open stream socket (`fd://`, systemd, re-exec).
///
/// Every check runs on a borrowed descriptor, so an fd that is refused (say `fd://1` by mistake)
/// stays open. A bound socket that does not listen yet is put in listening state, as Gunicorn does.
fn adopt_fd(fd: RawFd, opts: &BindOptions) -> Result<Listener, BindError> {
    if fd < 0 {
        return Err(bad_fd(fd, "negative descriptor"));
    }
    // SAFETY: F_GETFD only reads the descriptor flags; any integer is acceptable and a closed
    // descriptor yields EBADF.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(bad_fd(fd, "it is not open"));
    }
    // SAFETY: the descriptor was just checked to be open, and nothing closes it while this
    // borrow lives (adoption happens at startup, before workers or app threads exist).
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let sref = SockRef::from(&borrowed);
    let ty = sref.r#type().map_err(|e| bad_fd(fd, format!("it is not a socket ({e})")))?;
    if ty != Type::STREAM {
        return Err(bad_fd(fd, "it is not a stream socket (SOCK_STREAM)"));
    }
    let local = sref.local_addr().map_err(|e| bad_fd(fd, format!("getsockname failed: {e}")))?;
    if local.as_socket().is_none() && !local.is_unix() {
        return Err(bad_fd(fd, "it is neither a TCP nor a unix socket"));
    }
    let listening = sref.is_listener().unwrap_or(false);
    if !listening {
        let unbound = match local.as_socket() {
            Some(sa) => sa.port() == 0,
            None => local.as_unix().map(|u| u.is_unnamed()).unwrap_or(true),
        };
        if unbound {
            return Err(bad_fd(fd, "it is neither listening nor bound to an address"));
        }
        sref.listen(opts.backlog).map_err(|e| bad_fd(fd, format!("listen failed: {e}")))?;
    }
    sref.set_nonblocking(false).map_err(|e| bad_fd(fd, format!("fcntl failed: {e}")))?;
    sref.set_cloexec(true).map_err(|e| bad_fd(fd, format!("fcntl failed: {e}")))?;
    let _ = set_common_options(&sref, opts);

    // SAFETY: the descriptor is open and a stream socket; it was handed to us (fd://, systemd or
    // a re-exec'ing parent) for this purpose, and `bind_all`/`listeners_from_fds` refuse the same
    // number twice, so exactly one owner will close it.
    let sock = unsafe { Socket::from_raw_fd(fd) };
    if local.as_socket().is_some() {
        return Listener::tcp(sock.into()).map_err(|e| bad_fd(fd, e.to_string()));
    }
    let (path, shown) = if let Some(p) = local.as_pathname() {
        (Some(p.to_path_buf()), p.display().to_string())
    } else if let Some(name) = local.as_abstract_namespace() {
        // Shown with '@' for the leading NUL, as ss(8) and systemd print abstract names.
        (None, format!("@{}", String::from_utf8_lossy(name)))
    } else {
        (None, String::new())
    };
    Ok(Listener::unix(sock.into(), path, shown))
}

/// Adopts descriptors passed by a parent process.
fn listeners_from_fds(fds: &[RawFd], opts: &BindOptions) -> Result<Vec<Listener>, BindError> {
    let addrs: Vec<BindAddr> = fds.iter().map(|&fd| BindAddr::Fd(fd)).collect();
    bind_all(&addrs, opts)
}

/// Where inherited listeners came from; the master does not unlink systemd's sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InheritedFrom {
    Systemd,
    Reexec,
}

/// Listeners handed over by systemd socket activation (`LISTEN_PID` equal to our pid and
/// `LISTEN_FDS` = n, fds 3..3+n) or by a re-exec'ing Gunicorn-style master (`GUNICORN_FD`,
/// comma-separated), in that order of preference as in Gunicorn. `Ok(None)` when neither is set.
///
/// An inherited descriptor that is unusable is an error, not a silent skip: serving on fewer
/// sockets than configured would be worse than refusing to start. The variables are not removed
/// here (that is `unsafe` in a threaded process); the caller removes them before spawning anything.
pub fn listeners_from_env(opts: &BindOptions) -> Result<Option<(InheritedFrom, Vec<Listener>)>, BindError> {
    let var = |name| std::env::var(name).ok();
    listeners_from_vars(
        var("LISTEN_PID").as_deref(),
        var("LISTEN_FDS").as_deref(),
        var("GUNICORN_FD").as_deref(),
        std::process::id(),
        opts,
    )
}

/// `listeners_from_env` with the environment passed in, so it can be tested without touching
/// the process environment.
fn listeners_from_vars(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    gunicorn_fd: Option<&str>,
    pid: u32,
    opts: &BindOptions,
) -> Result<Option<(InheritedFrom, Vec<Listener>)>, BindError> {
    if let (Some(lpid), Some(lfds)) = (listen_pid, listen_fds) {
        // systemd sets LISTEN_PID so that children who inherit the environment ignore it.
        if lpid.trim().parse::<u32>().ok() == Some(pid) {
            let n: RawFd = lfds
                .trim()
                .parse()
                .ok()
                .filter(|n| (0..=1024).contains(n))
                .ok_or_else(|| BindError::Env { var: "LISTEN_FDS", value: lfds.to_string() })?;
            if n > 0 {
                let fds: Vec<RawFd> = (SD_LISTEN_FDS_START..SD_LISTEN_FDS_START + n).collect();
                return Ok(Some((InheritedFrom::Systemd, listeners_from_fds(&fds, opts)?)));
            }
        }
    }
    if let Some(value) = gunicorn_fd {
        let mut fds = Vec::new();
        for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let fd = part
                .parse::<RawFd>()
                .ok()
                .filter(|fd| *fd >= 0)
                .ok_or_else(|| BindError::Env { var: "GUNICORN_FD", value: value.to_string() })?;
            fds.push(fd);
        }
        if !fds.is_empty() {
            return Ok(Some((InheritedFrom::Reexec, listeners_from_fds(&fds, opts)?)));
        }
    }
    Ok(None)
}

/// Removes unix socket files (called by the master on final shutdown only).
pub fn unlink_unix_sockets(listeners: &[Listener]) {
    for path in listeners.iter().filter_map(Listener::unix_path) {
        if let Err(e) = std::fs::remove_file(path) {
            if e.kind() != io::ErrorKind::NotFound {
                crate::log_warning!("could not remove {}: {e}", path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::IntoRawFd;

    fn opts(retries: u32) -> BindOptions {
        BindOptions { backlog: 16, reuse_port: false, retries }
    }

    fn tcp(host: &str, port: u16) -> BindAddr {
        BindAddr::Tcp { host: host.to_string(), port }
    }

    #[test]
    fn bind_tcp_v4() {
        let ls = bind_all(&[tcp("127.0.0.1", 0)], &opts(0)).expect("bind");
        let l = &ls[0];
        let (name, port) = l.local_addr_for_environ();
        assert_eq!(name, "127.0.0.1");
        assert_ne!(port, "0");
        assert_eq!(l.describe(), format!("http://127.0.0.1:{port}"));
        assert_eq!(l.environ_server(Some("example.com"), "http"), (name, port.clone()));
        // Listening, blocking, close-on-exec.
        let sref = SockRef::from(match l.kind() {
            ListenerKind::Tcp(t) => t,
            ListenerKind::Unix { .. } => panic!("not tcp"),
        });
        assert!(sref.is_listener().unwrap());
        assert!(sref.reuse_address().unwrap());
        // SAFETY: only reads descriptor flags.
        assert_ne!(unsafe { libc::fcntl(l.raw_fd(), libc::F_GETFD) } & libc::FD_CLOEXEC, 0);
        assert!(!sref.nonblocking().unwrap());
        std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).expect("connect");
    }

    #[test]
    fn bind_tcp_v6() {
        if std::net::TcpListener::bind("[::1]:0").is_err() {
            eprintln!("no IPv6 loopback; skipped");
            return;
        }
        let ls = bind_all(&[parse_bind("[::1]:0").unwrap()], &opts(0)).expect("bind");
        let (name, port) = ls[0].local_addr_for_environ();
        assert_eq!(name, "::1");
        assert_eq!(ls[0].describe(), format!("http://[::1]:{port}"));
    }

    #[test]
    fn hostname_resolves() {
        let ls = bind_all(&[tcp("localhost", 0)], &opts(0)).expect("bind localhost");
        assert!(ls[0].describe().starts_with("http://127.0.0.1:"), "{}", ls[0].describe());
    }

    #[test]
    fn unix_stale_replaced_live_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("app.sock");
        // A stale socket: bound, then its listener dropped (the file stays).
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let addr = BindAddr::Unix(path.clone());
        let ls = bind_all(std::slice::from_ref(&addr), &opts(0)).expect("stale file replaced");
        assert_eq!(ls[0].describe(), format!("unix:{}", path.display()));
        assert_eq!(ls[0].local_addr_for_environ(), (path.display().to_string(), String::new()));
        assert_eq!(ls[0].environ_server(Some("h"), "http"), ("h".into(), "80".into()));
        assert_eq!(ls[0].environ_server(Some("h:81"), "https"), ("h".into(), "81".into()));
        UnixStream::connect(&path).expect("connect");

        // Live: refused as in use, and the live server's file is left alone.
        let err = bind_all(&[addr], &opts(0)).expect_err("live socket");
        assert!(matches!(err, BindError::InUse { attempts: 1, .. }), "{err}");
        assert!(err.to_string().contains("already in use"), "{err}");
        assert!(path.exists());

        unlink_unix_sockets(&ls);
        assert!(!path.exists());
    }

    #[test]
    fn unix_regular_file_not_touched() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("data.txt");
        std::fs::write(&path, b"keep me").unwrap();
        let err = bind_all(&[BindAddr::Unix(path.clone())], &opts(0)).expect_err("regular file");
        assert!(matches!(err, BindError::NotASocket { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    }

    #[test]
    fn busy_port_retries_then_fails() {
        let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = holder.local_addr().unwrap().port();
        let start = std::time::Instant::now();
        let err = bind_all(&[tcp("127.0.0.1", port)], &opts(1)).expect_err("busy");
        assert!(start.elapsed() >= Duration::from_millis(900), "no pause between attempts");
        match &err {
            BindError::InUse { addr, attempts } => {
                assert_eq!(addr, &format!("127.0.0.1:{port}"));
                assert_eq!(*attempts, 2);
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn adopt_fd_tcp_and_unix() {
        let tcp_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp_l.local_addr().unwrap().port();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("fd.sock");
        let unix_l = UnixListener::bind(&path).unwrap();
        let fds = [tcp_l.into_raw_fd(), unix_l.into_raw_fd()];
        let addrs: Vec<BindAddr> = fds.iter().map(|&fd| BindAddr::Fd(fd)).collect();
        let ls = bind_all(&addrs, &opts(0)).expect("adopt");
        assert_eq!(ls[0].describe(), format!("http://127.0.0.1:{port}"));
        assert_eq!(ls[0].raw_fd(), fds[0]);
        assert!(ls[1].is_unix());
        assert_eq!(ls[1].describe(), format!("unix:{}", path.display()));
    }

    #[test]
    fn adopt_fd_bound_not_listening_is_listened() {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
        let fd = s.into_raw_fd();
        let ls = bind_all(&[BindAddr::Fd(fd)], &opts(0)).expect("adopt");
        let (_, port) = ls[0].local_addr_for_environ();
        std::net::TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
    }

    #[test]
    fn adopt_fd_refusals_leave_fd_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = std::fs::File::create(dir.path().join("f")).unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let unbound = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        for (fd, why) in [
            (file.as_raw_fd(), "not a socket"),
            (udp.as_raw_fd(), "not a stream socket"),
            (unbound.as_raw_fd(), "neither listening nor bound"),
        ] {
            let err = bind_all(&[BindAddr::Fd(fd)], &opts(0)).expect_err(why);
            assert!(err.to_string().contains(why), "{err}");
            // SAFETY: only reads descriptor flags.
            assert!(unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0, "fd {fd} was closed");
        }
        let err = bind_all(&[BindAddr::Fd(100_000)], &opts(0)).expect_err("closed fd");
        assert!(err.to_string().contains("not open"), "{err}");
    }

    #[test]
    fn env_inheritance() {
        let none = listeners_from_vars(None, None, None, 7, &opts(0)).unwrap();
        assert!(none.is_none());
        // LISTEN_PID names another process: not ours, ignored (no fd touched).
        let other = listeners_from_vars(Some("8"), Some("2"), None, 7, &opts(0)).unwrap();
        assert!(other.is_none());
        let bad = listeners_from_vars(Some("7"), Some("two"), None, 7, &opts(0));
        assert!(matches!(bad, Err(BindError::Env { var: "LISTEN_FDS", .. })));
        let bad = listeners_from_vars(None, None, Some("3,x"), 7, &opts(0));
        assert!(matches!(bad, Err(BindError::Env { var: "GUNICORN_FD", .. })));

        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap().into_raw_fd();
        let b = std::net::TcpListener::bind("127.0.0.1:0").unwrap().into_raw_fd();
        let list = format!("{a},{b}");
        let (from, ls) = listeners_from_vars(None, None, Some(&list), 7, &opts(0)).unwrap().unwrap();
        assert_eq!(from, InheritedFrom::Reexec);
        assert_eq!(ls.iter().map(Listener::raw_fd).collect::<Vec<_>>(), vec![a, b]);
    }

    #[test]
    fn duplicate_fd_refused() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let fd = l.as_raw_fd();
        let err = bind_all(&[BindAddr::Fd(fd), BindAddr::Fd(fd)], &opts(0));
        // The first adoption took ownership; forget `l` so the fd is closed once only.
        std::mem::forget(l);
        assert!(matches!(err, Err(BindError::DuplicateFd { .. })));
    }
}

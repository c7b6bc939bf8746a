//! The few libc calls ferrocorn makes directly, each wrapped to return `io::Result`, with a
//! `SAFETY:` note on every unsafe block.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// Milliseconds on CLOCK_MONOTONIC. The clock is system-wide, so values written by a worker
/// are comparable in the master (heartbeats). Served from the vDSO: no syscall.
pub fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

/// An array of `u64` slots in anonymous shared memory, created by the master before forking
/// and written by workers: the heartbeat costs one atomic store, never a syscall or a file.
pub struct SharedSlots {
    ptr: *mut AtomicU64,
    len: usize,
}

// SAFETY: the memory is only accessed through atomics.
unsafe impl Send for SharedSlots {}
// SAFETY: as above.
unsafe impl Sync for SharedSlots {}

impl SharedSlots {
    pub fn new(len: usize) -> io::Result<SharedSlots> {
        let bytes = len * std::mem::size_of::<AtomicU64>();
        // SAFETY: an anonymous shared mapping with no fd; the result is checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // Anonymous mappings are zero-filled, which is a valid AtomicU64 (0).
        Ok(SharedSlots { ptr: ptr.cast(), len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slot `i`; panics on an out-of-range index (a bug in slot bookkeeping, not input).
    pub fn slot(&self, i: usize) -> &AtomicU64 {
        assert!(i < self.len, "heartbeat slot {i} out of range");
        // SAFETY: i < len and the mapping lives as long as `self`.
        unsafe { &*self.ptr.add(i) }
    }
}

impl Drop for SharedSlots {
    fn drop(&mut self) {
        // SAFETY: ptr/len describe the mapping made in `new`.
        unsafe { libc::munmap(self.ptr.cast(), self.len * std::mem::size_of::<AtomicU64>()) };
    }
}

/// Write end of the master's self-pipe, read by the signal handler.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn queue_signal(sig: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = sig as u8;
        let saved = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        // SAFETY: write(2) is async-signal-safe; the pipe is non-blocking, so a full pipe
        // just drops the byte (the signal is coalesced, as with real signals).
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
        // SAFETY: restoring errno so the interrupted code sees its own value.
        unsafe { *libc::__errno_location() = saved };
    }
}

/// Creates a non-blocking close-on-exec pipe.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_CLOEXEC)?;
    Ok((r, w))
}

/// Routes `signals` to one byte each on `write_fd` (the handler does nothing else).
pub fn install_signal_pipe(write_fd: RawFd, signals: &[libc::c_int]) -> io::Result<()> {
    SIGNAL_PIPE.store(write_fd, Ordering::Relaxed);
    for &sig in signals {
        set_handler(sig, queue_signal as *const () as libc::sighandler_t, libc::SA_RESTART)?;
    }
    Ok(())
}

/// Blocks every signal in the calling thread and returns the mask that was in force.
///
/// The master wraps fork() in this: a signal that reaches a new worker before it has reset
/// its handlers would otherwise run the master's handler in the child, which writes into the
/// master's own signal pipe (shared across fork), so a TERM meant for that worker would stop
/// the master. Blocked, the signal stays pending until the child's [`reset_signals`].
pub fn block_all_signals() -> libc::sigset_t {
    // SAFETY: both sets are initialised by sigfillset/sigprocmask before they are read.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        old
    }
}

/// Puts back a mask returned by [`block_all_signals`] (in the master, after fork).
pub fn restore_signal_mask(old: &libc::sigset_t) {
    // SAFETY: `old` was filled in by pthread_sigmask.
    unsafe {
        libc::pthread_sigmask(libc::SIG_SETMASK, old, std::ptr::null_mut());
    }
}

/// Keeps request-sized buffers (bodies up to the 1 MiB spill threshold, responses) on the
/// malloc heap and stops glibc handing the heap top back after every request.
///
/// With glibc's defaults a 1 MiB body is first mmap'd, then (the threshold adapts) taken from
/// the heap top, which is trimmed as soon as the request frees it: every request faults in
/// megabytes of fresh zeroed pages. Measured on POST 1 MiB echo at c=1: 248 req/s with the
/// defaults, 1,062 with thresholds raised. A worker may keep up to TRIM bytes of freed heap.
///
/// `threaded` (gthread): glibc gives every thread that allocates its own arena, and each arena
/// keeps its freed buffers, so 64 app threads held 205 MiB after POST 1 MiB at c=50. The app
/// threads take turns under the GIL anyway, so a few shared arenas cost no contention.
pub fn tune_malloc(threaded: bool) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // An operator who tuned malloc through the environment keeps their settings.
        let tuned_by_env = std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some()
            || std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_some()
            || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("malloc"));
        if tuned_by_env {
            return;
        }
        const MMAP: libc::c_int = 16 << 20;
        const TRIM: libc::c_int = 32 << 20;
        // SAFETY: mallopt takes two integers and only changes allocator parameters.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM);
            if threaded && std::env::var_os("MALLOC_ARENA_MAX").is_none() {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
        }
    }
}

/// Restores default dispositions (in a fresh worker) and forgets the master's pipe.
pub fn reset_signals(signals: &[libc::c_int]) -> io::Result<()> {
    SIGNAL_PIPE.store(-1, Ordering::Relaxed);
    for &sig in signals {
        set_handler(sig, libc::SIG_DFL, 0)?;
    }
    // SAFETY: an empty, initialised set passed to sigprocmask to unblock everything.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
    Ok(())
}

/// Ignores `sig` (used for SIGPIPE: a client that goes away must be an EPIPE, not a death).
pub fn ignore_signal(sig: libc::c_int) -> io::Result<()> {
    set_handler(sig, libc::SIG_IGN, 0)
}

fn set_handler(sig: libc::c_int, handler: libc::sighandler_t, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: a zeroed sigaction is valid; we fill handler, flags and an empty mask.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = handler;
        act.sa_flags = flags;
        libc::sigemptyset(&mut act.sa_mask);
        if libc::sigaction(sig, &act, std::ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Asks the kernel to send `sig` to this process when its parent dies, then checks that the
/// parent is still `expected_parent` (it may have died between fork and this call).
pub fn die_with_parent(sig: libc::c_int, expected_parent: i32) -> bool {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and has no memory arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) };
    // SAFETY: getppid cannot fail.
    unsafe { libc::getppid() == expected_parent }
}

/// Waits until `fd` is readable or `timeout_ms` passes (EINTR counts as a wake-up).
pub fn wait_readable(fd: &impl AsRawFd, timeout_ms: i32) -> io::Result<bool> {
    let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if n < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(err);
    }
    Ok(n > 0)
}

/// Waits until any of `fds` is readable (or has a connection to accept, or hung up), or
/// `timeout_ms` passes (EINTR counts as a wake-up). Callers then try each fd non-blockingly.
pub fn wait_any_readable(fds: &[RawFd], timeout_ms: i32) -> io::Result<()> {
    let mut pfds: Vec<libc::pollfd> = fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: `pfds` is a valid array of `pfds.len()` pollfds that outlives the call.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, timeout_ms) };
    if n < 0 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    Ok(())
}

/// This process's resident memory in bytes (`/proc/self/statm` resident pages times the page
/// size), or `None` where that file is missing or unreadable.
pub fn resident_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = text.split_ascii_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no memory arguments; it returns -1 for an unknown name.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok().filter(|&p| p > 0)?)
}

/// Drains the self-pipe, returning the queued signal numbers in arrival order.
pub fn drain_pipe(fd: &impl AsRawFd) -> Vec<libc::c_int> {
    let mut out = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        // SAFETY: buf is valid for 64 bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        out.extend(buf[..n as usize].iter().map(|&b| b as libc::c_int));
    }
    out
}

/// Writes one wake-up byte to a non-blocking pipe. A full pipe already holds a wake-up, so
/// EAGAIN (and any other failure: the reader is gone) is ignored.
pub fn wake(fd: &impl AsRawFd) {
    let byte = 1u8;
    // SAFETY: writes one byte from a valid local; the fd stays open for the call.
    unsafe { libc::write(fd.as_raw_fd(), (&byte as *const u8).cast(), 1) };
}

/// Sends `sig` to `pid`; a process that is already gone is not an error.
pub fn kill(pid: i32, sig: libc::c_int) {
    // SAFETY: kill has no memory arguments.
    unsafe { libc::kill(pid, sig) };
}

pub fn getpid() -> i32 {
    std::process::id() as i32
}

/// Sets the file mode creation mask; returns the previous one.
pub fn set_umask(mask: libc::mode_t) -> libc::mode_t {
    // SAFETY: umask cannot fail and has no memory arguments.
    unsafe { libc::umask(mask) }
}

unsafe extern "C" {
    /// glibc's pointer to the original `argv[0]` string, the start of the kernel-provided
    /// argument area that `/proc/PID/cmdline` (and so `ps`) shows.
    static mut program_invocation_name: *mut libc::c_char;
}

/// Another way to set the title, tried first (the `setproctitle` package: see `compat.rs`); it
/// returns false when it cannot, and the argument area is then written here.
static TITLE_HOOK: std::sync::OnceLock<fn(&str) -> bool> = std::sync::OnceLock::new();

/// Registers the hook [`set_proc_title`] tries first (once; later calls are ignored).
pub fn set_title_hook(hook: fn(&str) -> bool) {
    let _ = TITLE_HOOK.set(hook);
}

/// Shows `title` as this process's command line in `ps` and as its name in `top`.
///
/// Through the title hook when it works; otherwise the title is written over the original
/// argument strings (which Python copied at start-up, so nothing reads them any more),
/// truncated to their total length. The short kernel name (15 bytes) is set with
/// `PR_SET_NAME` either way.
pub fn set_proc_title(title: &str) {
    if !TITLE_HOOK.get().is_some_and(|hook| hook(title)) {
        write_argv_title(title);
    }
    let mut comm = [0u8; 16];
    let short = title.as_bytes();
    let n = short.len().min(15);
    comm[..n].copy_from_slice(&short[..n]);
    // SAFETY: PR_SET_NAME reads a NUL-terminated buffer of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, comm.as_ptr() as libc::c_ulong, 0, 0, 0) };
}

fn write_argv_title(title: &str) {
    let area: usize = std::env::args_os().map(|a| a.len() + 1).sum();
    // SAFETY: reading a pointer-sized static that glibc set before main.
    let start = unsafe { program_invocation_name };
    if !start.is_null() && area > 1 {
        let bytes = title.as_bytes();
        let n = bytes.len().min(area - 1);
        // SAFETY: `start` points at argv[0], and the kernel lays argv's strings out contiguously
        // for `area` bytes (the lengths were measured from the same strings); we write within
        // that area only and keep a terminating NUL.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), start.cast::<u8>(), n);
            std::ptr::write_bytes(start.cast::<u8>().add(n), 0, area - n);
        }
    }
}

/// Points fds 0, 1 and 2 at /dev/null (a daemon has no terminal).
pub fn stdio_to_devnull() -> io::Result<()> {
    let devnull = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors replaces them atomically; no Rust object
        // owns fds 0-2, so nothing is invalidated.
        if unsafe { libc::dup2(devnull.as_raw_fd(), fd) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

pub fn getppid() -> i32 {
    // SAFETY: getppid cannot fail.
    unsafe { libc::getppid() }
}

/// Sets or clears FD_CLOEXEC (cleared on listeners handed to a re-executed master).
pub fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: F_GETFD/F_SETFD on an fd we own; failures are reported.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        let new = if on { flags | libc::FD_CLOEXEC } else { flags & !libc::FD_CLOEXEC };
        if libc::fcntl(fd, libc::F_SETFD, new) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Switches this process to `uid`/`gid` (a worker dropping root), group first so the
/// user switch cannot lock us out of changing it. With `initgroups`, the user's supplementary
/// groups are loaded; otherwise they are cleared to just `gid`.
pub fn drop_privileges(uid: u32, gid: u32, initgroups: bool) -> io::Result<()> {
    use nix::unistd::{Gid, Uid};
    let current_uid = Uid::effective().as_raw();
    let current_gid = Gid::effective().as_raw();
    if uid == current_uid && gid == current_gid {
        return Ok(());
    }
    if gid != current_gid || uid != current_uid {
        let groups_done = if initgroups {
            match nix::unistd::User::from_uid(Uid::from_raw(uid)) {
                Ok(Some(user)) => {
                    let name = std::ffi::CString::new(user.name).map_err(|_| io::Error::other("bad user name"))?;
                    nix::unistd::initgroups(&name, Gid::from_raw(gid)).map_err(io::Error::from)?;
                    true
                }
                _ => false,
            }
        } else {
            false
        };
        if !groups_done && current_uid == 0 {
            nix::unistd::setgroups(&[Gid::from_raw(gid)]).map_err(io::Error::from)?;
        }
        nix::unistd::setgid(Gid::from_raw(gid)).map_err(io::Error::from)?;
    }
    if uid != current_uid {
        nix::unistd::setuid(Uid::from_raw(uid)).map_err(io::Error::from)?;
    }
    Ok(())
}

/// Changes a file's owner (unix socket files for workers that dropped privileges).
/// The soft limit on open files (`ulimit -n`); `None` when unlimited or unknown.
pub fn open_files_limit() -> Option<u64> {
    use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit};
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    (soft != RLIM_INFINITY).then_some(soft)
}

pub fn chown(path: &std::path::Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
}

/// Removes an environment variable. Only called by the single-threaded master before any
/// thread exists, which is what makes the unsafe `remove_var` sound.
pub fn remove_env(name: &str) {
    // SAFETY: see above; the master has no other threads.
    unsafe { std::env::remove_var(name) };
}

/// Sends a systemd notification (`READY=1`, `STOPPING=1`) when `NOTIFY_SOCKET` is set.
pub fn sd_notify(state: &str) {
    let Ok(path) = std::env::var("NOTIFY_SOCKET") else { return };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else { return };
    let sent = if let Some(name) = path.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr))
    } else {
        sock.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = sent {
        crate::log_debug!("sd_notify({state:?}) to {path}: {e}");
    }
}

/// Makes `target` refer to the file `src` refers to (and not close-on-exec), for pointing the
/// standard descriptors at a log file.
pub fn dup2(src: RawFd, target: RawFd) -> io::Result<()> {
    // SAFETY: dup2 atomically replaces `target`; callers pass standard descriptors (1, 2),
    // which no Rust object owns, and `src` is a descriptor they keep open.
    if unsafe { libc::dup2(src, target) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The daemon's standard streams with `enable_stdio_inheritance`: stdin from /dev/null, and
/// stdout/stderr kept when they were redirected (`ferrocorn ... > out.log 2>&1`) but sent to
/// /dev/null when they are a terminal, which a daemon must not hold.
pub fn stdio_inherit_redirected() -> io::Result<()> {
    let devnull = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null")?;
    for fd in 0..3 {
        // SAFETY: isatty only inspects the descriptor.
        let tty = unsafe { libc::isatty(fd) } == 1;
        if fd == 0 || tty {
            dup2(devnull.as_raw_fd(), fd)?;
        }
    }
    Ok(())
}

//! `enable_backlog_metric`: connections the kernel has completed on a listening socket that no
//! worker has accepted yet. Linux reports it for a TCP listener in `tcp_info.tcpi_unacked` (for
//! a socket in LISTEN state that field is the accept queue length, and `tcpi_sacked` its limit,
//! the `backlog`), which is what Gunicorn 27 reads. Other platforms, and unix sockets, have no
//! such counter.

use std::os::fd::RawFd;

/// Connections waiting in the accept queue of the listening TCP socket `fd`; `None` if the
/// kernel does not say (not Linux, not a TCP socket, or the call failed).
#[cfg(target_os = "linux")]
pub fn queued(fd: RawFd) -> Option<u32> {
    // SAFETY: tcp_info is a plain C struct of integers, for which all-zero bytes are valid.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::tcp_info>()).ok()?;
    // SAFETY: `info` is a live, writable tcp_info and `len` is its size, so the kernel writes
    // at most that many bytes into it; a bad or non-TCP fd makes the call fail, not write.
    let rc = unsafe { libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_INFO, (&raw mut info).cast::<libc::c_void>(), &mut len) };
    (rc == 0).then_some(info.tcpi_unacked)
}

#[cfg(not(target_os = "linux"))]
pub fn queued(_fd: RawFd) -> Option<u32> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn counts_connections_not_yet_accepted() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(queued(listener.as_raw_fd()), Some(0));
        let clients: Vec<_> = (0..3).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect();
        assert_eq!(queued(listener.as_raw_fd()), Some(3));
        let _accepted = listener.accept().unwrap();
        assert_eq!(queued(listener.as_raw_fd()), Some(2));
        drop(clients);
        // Not a socket at all: no value rather than a wrong one.
        let file = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(queued(file.as_raw_fd()), None);
    }
}

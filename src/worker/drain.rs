//! TERM drains the listen backlog (gunicorn#3397): connections the kernel had already accepted
//! into the backlog when the master started a graceful stop are served, not reset when the
//! last copy of the listening socket closes.
//!
//! Only for a stop asked by the master (TERM): a worker that leaves for `max_requests` leaves
//! the backlog to the workers that stay, and a quick stop (INT/QUIT) serves nothing more.

use super::{ConnInfo, Peer, Shared, start_connection};
use crate::log_debug;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

static SERVER_STOPPING: AtomicBool = AtomicBool::new(false);

/// TERM from the master: the accept loops drain the backlog once before they stop.
pub fn server_stopping() {
    SERVER_STOPPING.store(true, Ordering::Relaxed);
}

fn wanted() -> bool {
    SERVER_STOPPING.load(Ordering::Relaxed)
}

/// Accepts whatever is queued on `listener` right now (never waits) and serves it.
pub async fn tcp_backlog(listener: tokio::net::TcpListener, server: Option<Arc<(String, String)>>, sh: &Rc<Shared>) {
    if !wanted() {
        return;
    }
    let Ok(std_listener) = listener.into_std() else { return };
    let mut served = 0usize;
    while served < sh.settings.worker_connections {
        let Ok((s, peer)) = std_listener.accept() else { break };
        if s.set_nonblocking(true).is_err() {
            continue;
        }
        let Ok(stream) = tokio::net::TcpStream::from_std(s) else { continue };
        let _ = stream.set_nodelay(true);
        start_connection(stream, ConnInfo::new(Peer::Tcp(peer), server.clone()), sh).await;
        served += 1;
    }
    if served > 0 {
        log_debug!("served {served} connection(s) from the listen backlog while stopping");
    }
}

/// As `tcp_backlog`, for a Unix socket listener.
pub async fn unix_backlog(listener: tokio::net::UnixListener, sh: &Rc<Shared>) {
    if !wanted() {
        return;
    }
    let Ok(std_listener) = listener.into_std() else { return };
    let mut served = 0usize;
    while served < sh.settings.worker_connections {
        let Ok((s, _)) = std_listener.accept() else { break };
        if s.set_nonblocking(true).is_err() {
            continue;
        }
        let Ok(stream) = tokio::net::UnixStream::from_std(s) else { continue };
        start_connection(stream, ConnInfo::new(Peer::Unix, None), sh).await;
        served += 1;
    }
    if served > 0 {
        log_debug!("served {served} connection(s) from the listen backlog while stopping");
    }
}

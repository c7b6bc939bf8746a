"""The master process: worker count, replacing dead workers, graceful and fast stops."""
import collections
import os
import signal
import threading
import time

import pytest

from harness import connect, get, wait_for


def test_two_workers(serve):
    srv = serve("echo:app", "-w", "2")
    workers = wait_for(lambda: len(srv.workers()) == 2 and srv.workers(), 15, what="2 workers")
    assert srv.pid not in workers
    # the requests are served by the children, not by the master
    pids = {get(srv.addr).json()["__pid"] for _ in range(10)}
    assert pids <= set(workers)


def test_killed_worker_is_replaced(serve):
    srv = serve("echo:app", "-w", "2")
    before = wait_for(lambda: len(srv.workers()) == 2 and srv.workers(), 15, what="2 workers")
    victim = before[0]
    os.kill(victim, signal.SIGKILL)

    def replaced():
        now = srv.workers()
        return len(now) == 2 and victim not in now and now
    after = wait_for(replaced, 15, what="a replacement worker")
    assert set(after) - set(before), "no new pid"
    for _ in range(5):
        assert get(srv.addr).status == 200
    assert srv.alive()


def test_sigterm_lets_inflight_request_finish(serve, tmp_path):
    srv = serve("misc:sleep", "-w", "1", "--graceful-timeout", "10",
                extra_env={"FC_MARKER_DIR": str(tmp_path)})
    result = {}
    conn = connect(srv.addr, timeout=15)
    conn.sendall(b"GET /sleep/2 HTTP/1.0\r\nHost: t\r\n\r\n")

    def read():
        try:
            result["r"] = conn.read_response(timeout=15)
        except Exception as exc:  # reported below
            result["e"] = exc
    t = threading.Thread(target=read)
    t.start()
    # the app drops a marker file as it starts sleeping: signal only once it is in flight
    wait_for(lambda: any(p.name.startswith("sleeping-") for p in tmp_path.iterdir()), 10,
             what="the request to reach the app")
    srv.signal(signal.SIGTERM)
    t.join(20)
    conn.close()
    assert "e" not in result, result.get("e")
    assert result["r"].status == 200
    assert result["r"].body.startswith(b"slept")
    assert srv.wait_exit(20) == 0, srv.logs()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT])
def test_fast_stop(serve, tmp_path, sig):
    path = str(tmp_path / "fast.sock")
    srv = serve("misc:sleep", "-w", "2", bind=["unix:" + path], addr=path)
    wait_for(lambda: len(srv.workers()) == 2, 15, what="2 workers")
    workers = srv.workers()
    srv.signal(sig)
    code = srv.wait_exit(10)
    assert code is not None, "master still running 10 s after %s" % sig
    assert not os.path.exists(path), "unix socket file left behind"
    wait_for(lambda: not any(os.path.exists("/proc/%d" % w) and _not_zombie(w)
                             for w in workers), 10, what="workers gone")


def test_sigterm_removes_unix_socket(serve, tmp_path):
    path = str(tmp_path / "term.sock")
    srv = serve("echo:app", bind=["unix:" + path], addr=path)
    assert os.path.exists(path)
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit() == 0
    assert not os.path.exists(path)


def _not_zombie(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_workers_never_outlive_a_killed_master(serve):
    """kill -9 on the master: each worker drains and exits, even one holding a client that
    never finishes its request (bounded by the graceful timeout, not by the client)."""
    srv = serve("echo:app", "-w", "2", "--graceful-timeout", "2")
    workers = wait_for(lambda: len(srv.workers()) == 2 and srv.workers(), 15, what="2 workers")
    with connect(srv.addr) as stuck:
        stuck.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n")  # the head never ends
        os.kill(srv.pid, signal.SIGKILL)
        wait_for(lambda: not any(_not_zombie(w) for w in workers), 15,
                 what="workers to exit after their master was killed")


def test_sync_workers_share_a_burst_of_connections(serve):
    """Connections arriving together are spread over the sync workers, not taken whole by the
    first one to wake, which would then serve them one by one while the other idles."""
    srv = serve("lifecycle:app", "-w", "2")
    wait_for(lambda: len(srv.workers()) == 2, 15, what="2 workers")
    clients = []
    for _ in range(10):
        c = connect(srv.addr)
        c.sendall(b"GET /sleep/0.1 HTTP/1.1\r\nHost: t\r\n\r\n")
        clients.append(c)
    counts = _served_by(clients)
    assert len(counts) == 2 and min(counts.values()) >= 3, counts


def _served_by(clients):
    """Reads one response from each client: how many each worker pid answered."""
    served_by = []
    for c in clients:
        r = c.read_response()
        assert r.status == 200
        served_by.append(r.body.split()[-1])
        c.close()
    return collections.Counter(served_by)


@pytest.mark.beyond_gunicorn
def test_gthread_workers_share_a_burst_of_keep_alive_connections(serve):
    """Connections that all arrive before any of their requests are spread over the gthread
    workers: a worker already holding a connection per thread lets the others take the next
    ones, instead of queueing requests behind its busy threads while another worker idles."""
    srv = serve("lifecycle:app", "-w", "2", "-k", "gthread", "--threads", "4")
    wait_for(lambda: len(srv.workers()) == 2, 15, what="2 workers")
    clients = [connect(srv.addr) for _ in range(12)]
    time.sleep(0.5)  # every connection accepted before the first request is sent
    for c in clients:
        c.sendall(b"GET /sleep/0.2 HTTP/1.1\r\nHost: t\r\n\r\n")
    counts = _served_by(clients)
    assert len(counts) == 2 and min(counts.values()) >= 4, counts

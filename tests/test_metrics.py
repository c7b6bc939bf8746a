"""The Prometheus endpoint (`--metrics-bind`), served by the master from per-worker counters in
shared memory. Not a Gunicorn feature."""
import os
import signal
import socket
import threading
import time

import pytest

from harness import APPS, IO_TIMEOUT, free_port, get, run_cmd, wait_for

pytestmark = pytest.mark.beyond_gunicorn


def scrape(port, path="/metrics", timeout=IO_TIMEOUT):
    """GET the metrics over a raw socket; returns (status line, headers text, body text)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return lines[0], "\n".join(lines[1:]), body.decode()


def parse(body):
    """{(name, frozenset(labels)): value} from the exposition text."""
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        key, value = line.rsplit(" ", 1)
        name, _, labels = key.partition("{")
        pairs = frozenset(tuple(p.split("=", 1)) for p in labels.rstrip("}").split(",") if p)
        out[(name, frozenset((k, v.strip('"')) for k, v in pairs))] = float(value)
    return out


def metrics(port):
    status, headers, body = scrape(port)
    assert status == "HTTP/1.1 200 OK", status
    assert "Content-Type: text/plain; version=0.0.4" in headers
    return parse(body)


def total(m, name):
    return m[(name, frozenset())]


def per_worker(m, name):
    """{pid: value} of a per-worker series."""
    return {int(dict(labels)["pid"]): v for (n, labels), v in m.items() if n == name}


@pytest.fixture
def metrics_server(serve):
    port = free_port()
    srv = serve("misc:sleep", "-w", "2", "--metrics-bind", "127.0.0.1:%d" % port)
    # Both workers booted and reported their memory once.
    wait_for(lambda: len(srv.workers()) == 2
             and set(per_worker(metrics(port), "ferrocorn_worker_memory_rss_bytes")) == set(srv.workers())
             and all(v > 0 for v in per_worker(metrics(port), "ferrocorn_worker_memory_rss_bytes").values()),
             timeout=20, what="both workers in the metrics")
    return srv, port


def test_counts_requests_per_worker_and_in_total(metrics_server):
    srv, port = metrics_server
    before = total(metrics(port), "ferrocorn_requests_total")
    n = 20
    for _ in range(n):
        assert get(srv.addr, "/").status == 200
    # A request is counted once its response is written, just after the client has it.
    wait_for(lambda: total(metrics(port), "ferrocorn_requests_total") == before + n, timeout=5,
             what="%d requests counted" % n)
    m = metrics(port)
    assert total(m, "ferrocorn_requests_total") == before + n
    assert total(m, "ferrocorn_workers") == 2
    pids = set(srv.workers())
    requests = per_worker(m, "ferrocorn_worker_requests_total")
    assert set(requests) == pids
    assert sum(requests.values()) == total(m, "ferrocorn_requests_total")
    assert set(per_worker(m, "ferrocorn_worker_requests_in_flight").values()) == {0}
    assert total(m, "ferrocorn_requests_in_flight") == 0
    assert set(per_worker(m, "ferrocorn_worker_busy_seconds_total")) == pids
    assert total(m, "ferrocorn_busy_seconds_total") > 0
    assert all(v > 0 for v in per_worker(m, "ferrocorn_worker_memory_rss_bytes").values())
    # Another path is a 404, so a misconfigured scraper notices.
    assert scrape(port, "/nope")[0] == "HTTP/1.1 404 Not Found"


def test_slow_request_shows_in_flight(metrics_server):
    srv, port = metrics_server
    done = {}
    t = threading.Thread(target=lambda: done.setdefault("r", get(srv.addr, "/sleep/1.5", timeout=10)))
    t.start()
    try:
        wait_for(lambda: total(metrics(port), "ferrocorn_requests_in_flight") == 1, timeout=5,
                 what="one request in flight")
        m = metrics(port)
        assert sorted(per_worker(m, "ferrocorn_worker_requests_in_flight").values()) == [0, 1]
    finally:
        t.join(10)
    assert done["r"].status == 200
    wait_for(lambda: total(metrics(port), "ferrocorn_requests_in_flight") == 0, timeout=5,
             what="no request in flight")
    m = metrics(port)
    assert total(m, "ferrocorn_busy_seconds_total") >= 1.5


def test_requests_of_exited_workers_stay_counted(metrics_server):
    srv, port = metrics_server
    start = total(metrics(port), "ferrocorn_requests_total")
    for _ in range(6):
        get(srv.addr, "/")
    wait_for(lambda: total(metrics(port), "ferrocorn_requests_total") == start + 6, timeout=5,
             what="6 requests counted")
    before = start + 6
    victim = srv.workers()[0]
    srv_pids = set(srv.workers())
    os.kill(victim, signal.SIGTERM)
    wait_for(lambda: victim not in per_worker(metrics(port), "ferrocorn_worker_requests_total")
             and len(per_worker(metrics(port), "ferrocorn_worker_requests_total")) == 2,
             timeout=10, what="the worker replaced")
    m = metrics(port)
    assert total(m, "ferrocorn_requests_total") == before
    assert set(per_worker(m, "ferrocorn_worker_requests_total")) != srv_pids


def test_silent_metrics_client_does_not_stall_the_master(metrics_server):
    srv, port = metrics_server
    silent = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:
        # The app still answers, the endpoint still answers other clients...
        for _ in range(5):
            assert get(srv.addr, "/", timeout=5).status == 200
        assert total(metrics(port), "ferrocorn_workers") == 2
        # ...and a silent client is dropped after its deadline, not held.
        silent[0].settimeout(8)
        assert silent[0].recv(1) == b""
        # TERM still stops the server promptly.
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        assert srv.wait_exit(10) == 0
        assert time.monotonic() - t0 < 5
    finally:
        for s in silent:
            s.close()


def test_metrics_bind_must_be_host_port():
    r = run_cmd(["--bind", "127.0.0.1:%d" % free_port(), "--metrics-bind", "unix:/tmp/x.sock", "misc:sleep"],
                cwd=APPS, timeout=20)
    assert r.returncode != 0
    assert "--metrics-bind takes HOST:PORT" in r.stderr

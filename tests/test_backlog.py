"""`enable_backlog_metric`: connections queued on the listening socket while every worker is
busy, reported by the master as the statsd histogram `gunicorn.backlog` (as Gunicorn 27 does)
and as the Prometheus gauge `ferrocorn_listen_backlog` on `--metrics-bind`."""

import os
import socket
import sys
import time

import pytest

import harness

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tcp_info is Linux-only")

QUEUED = 5


Udp = harness.UdpListener


def occupy_and_queue(srv, tmp_path):
    """Keeps the only worker in the app, then queues QUEUED connections behind it. Returns the
    sockets (the caller closes them)."""
    busy = harness.connect(srv.addr)
    busy.sendall(b"GET /sleep/4 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    harness.wait_for(lambda: any(n.startswith("sleeping-") for n in os.listdir(tmp_path / "m")),
                     harness.IO_TIMEOUT, what="the slow request in the app")
    waiting = []
    for _ in range(QUEUED):
        c = harness.connect(srv.addr)
        c.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        waiting.append(c)
    return [busy] + waiting


def start(serve, tmp_path, *extra):
    (tmp_path / "m").mkdir(exist_ok=True)
    # One sync worker that holds one connection at a time: while it sleeps, every other
    # connection waits in the kernel's accept queue (Gunicorn's sync worker does this anyway;
    # worker_connections makes ferrocorn's event loop do the same).
    return serve("misc:sleep", "-w", "1", "--worker-connections", "1", "--timeout", "30", *extra,
                 extra_env={"FC_MARKER_DIR": str(tmp_path / "m")})


def test_backlog_sent_to_statsd_as_histogram(serve, tmp_path):
    udp = Udp()
    conns = []
    try:
        srv = start(serve, tmp_path, "--enable-backlog-metric", "--statsd-host", "127.0.0.1:%d" % udp.port)
        harness.wait_for(lambda: "gunicorn.backlog:0|h" in udp.items, harness.IO_TIMEOUT,
                         what="an empty backlog reported")
        conns = occupy_and_queue(srv, tmp_path)
        harness.wait_for(lambda: "gunicorn.backlog:%d|h" % QUEUED in udp.items, harness.IO_TIMEOUT,
                         what="the queued connections reported")
        # Every queued request is served once the worker is free, and the backlog empties.
        for c in conns:
            assert c.read_response(timeout=15).status == 200
        seen = len(udp.items)
        harness.wait_for(lambda: "gunicorn.backlog:0|h" in udp.items[seen:], harness.IO_TIMEOUT,
                         what="the backlog back to 0")
    finally:
        for c in conns:
            c.close()
        udp.close()


def test_no_backlog_metric_unless_enabled(serve, tmp_path):
    udp = Udp()
    try:
        start(serve, tmp_path, "--statsd-host", "127.0.0.1:%d" % udp.port)
        harness.wait_for(lambda: any(i.startswith("gunicorn.workers:") for i in udp.items),
                         harness.IO_TIMEOUT, what="the workers gauge")
        # The master reports the backlog every second when enabled; give it two.
        time.sleep(2.2)
        assert not [i for i in udp.items if "backlog" in i]
    finally:
        udp.close()


def _gauge(port):
    with socket.create_connection(("127.0.0.1", port), timeout=harness.IO_TIMEOUT) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    body = data.partition(b"\r\n\r\n")[2].decode()
    values = [line.split()[1] for line in body.splitlines() if line.startswith("ferrocorn_listen_backlog ")]
    assert "# TYPE ferrocorn_listen_backlog gauge" in body
    return int(values[0])


@pytest.mark.beyond_gunicorn
def test_backlog_prometheus_gauge(serve, tmp_path):
    port = harness.free_port()
    srv = start(serve, tmp_path, "--enable-backlog-metric", "--metrics-bind", "127.0.0.1:%d" % port)
    harness.wait_for(lambda: _gauge(port) == 0, harness.IO_TIMEOUT, what="gauge at 0")
    conns = occupy_and_queue(srv, tmp_path)
    try:
        harness.wait_for(lambda: _gauge(port) == QUEUED, harness.IO_TIMEOUT, what="gauge at %d" % QUEUED)
        for c in conns:
            assert c.read_response(timeout=15).status == 200
        harness.wait_for(lambda: _gauge(port) == 0, harness.IO_TIMEOUT, what="gauge back to 0")
    finally:
        for c in conns:
            c.close()

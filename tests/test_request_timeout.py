"""`request_timeout`: a request that stays in the app past it is answered 503, its stack is
logged with its method and path, and its worker is replaced gracefully (gthread and the greenlet
classes; the sync class has `timeout` for this)."""

import re
import socket
import time

import pytest

import harness

pytestmark = pytest.mark.beyond_gunicorn

CLASSES = [
    pytest.param(["-k", "gthread", "--threads", "2"], id="gthread"),
    pytest.param(["-k", "gevent"], id="gevent"),
    pytest.param(["-k", "eventlet"], id="eventlet"),
]


def report(srv, path):
    return re.search(r"Request timed out in GET %s after ([\d.]+)s in the app \(request_timeout is 3s\); "
                     r"worker \(pid:(\d+)\) will be replaced \(([^)]*)\); the app was at:\n"
                     r"(Traceback[^\[]*)" % re.escape(path), srv.stderr())


@pytest.mark.parametrize("cls", CLASSES)
def test_a_request_past_request_timeout_gets_503_and_its_worker_is_replaced(serve, tmp_path, cls):
    srv = serve("misc:sleep", *cls, "--request-timeout", "3", "--access-logfile", "-",
                extra_env=harness.marker_env(tmp_path))
    (pid,) = harness.wait_workers(srv, 1)
    t0 = time.monotonic()
    stuck, stuck_result = harness.in_flight(srv, "/sleep/30?id=7")
    harness.wait_marker(tmp_path, "sleeping")
    # Another request on another connection, still in the app when the first one times out.
    time.sleep(1.5)
    other, other_result = harness.in_flight(srv, "/sleep/2")

    stuck.join(15)
    took = time.monotonic() - t0
    assert stuck_result["r"].status == 503, stuck_result
    assert stuck_result["r"].header("Connection") == "close"
    assert 2.9 <= took < 8, took
    other.join(15)
    assert other_result["r"].status == 200, other_result
    assert other_result["r"].body == b"slept %d\n" % pid

    m = harness.wait_for(lambda: report(srv, "/sleep/30?id=7"), 10, what="the request timeout report")
    assert 2.9 <= float(m.group(1)) < 8 and int(m.group(2)) == pid, m.group(0)
    assert "in sleep" in m.group(4) and "misc.py" in m.group(4), m.group(4)
    # The other request in the app is not mistaken for it.
    assert srv.stderr().count("Request timed out in") == 1, srv.stderr()
    assert re.search(r'"GET /sleep/30\?id=7 HTTP/1.0" 503 ', srv.stdout()), srv.stdout()

    # Replaced gracefully: the old worker exits long before the stuck call would have returned,
    # a new one serves.
    (new,) = harness.wait_workers(srv, 1, exclude=[pid], timeout=15)
    harness.wait_gone([pid], timeout=15)
    assert time.monotonic() - t0 < 25
    assert "Restarting worker after a request timed out." in srv.stderr()
    r = harness.get(srv.addr, "/sleep/0")
    assert r.status == 200 and r.body == b"slept %d\n" % new
    assert srv.alive()


def test_a_streaming_response_past_the_timeout_is_cut_and_logged(serve):
    """Once the head is on the wire a 503 is no longer possible: the connection closes."""
    srv = serve("respond:app", "-k", "gthread", "--threads", "2", "--request-timeout", "3",
                "--access-logfile", "-")
    (pid,) = harness.wait_workers(srv, 1)
    s = socket.create_connection(srv.addr, timeout=10)
    s.sendall(b"GET /write-sleep?s=30 HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)  # a socket.timeout here means the connection was left open
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.1 200 OK") and b"first" in data, data
    # Cut short: no second piece, no last chunk.
    assert b"second" not in data and not data.endswith(b"0\r\n\r\n"), data
    m = harness.wait_for(lambda: report(srv, "/write-sleep?s=30"), 10, what="the request timeout report")
    assert "respond.py" in m.group(4)
    assert re.search(r'"GET /write-sleep\?s=30 HTTP/1.1" 200 ', srv.stdout()), srv.stdout()
    harness.wait_workers(srv, 1, exclude=[pid], timeout=15)


@pytest.mark.parametrize("cls", CLASSES[:2])
def test_a_generator_stalling_between_pieces_is_cut_and_logged(serve, cls):
    """The deadline covers every step of the body, not only the app call."""
    srv = serve("overtime:app", *cls, "--request-timeout", "3", "--access-logfile", "-")
    (pid,) = harness.wait_workers(srv, 1)
    s = socket.create_connection(srv.addr, timeout=10)
    s.sendall(b"GET /stream-then-stall HTTP/1.1\r\nHost: t\r\n\r\n")
    data = b""
    while True:
        chunk = s.recv(65536)  # a socket.timeout here means the connection was left open
        if not chunk:
            break
        data += chunk
    s.close()
    assert data.startswith(b"HTTP/1.1 200 OK") and data.count(b"x") >= 512 * 1024, data[:200]
    assert b"late" not in data and not data.endswith(b"0\r\n\r\n")
    m = harness.wait_for(lambda: report(srv, "/stream-then-stall"), 10, what="the request timeout report")
    assert "in stall_in_the_generator" in m.group(4), m.group(4)
    # Only the stuck lane, not the server's own threads or idle greenlets.
    assert srv.stderr().count("Request timed out in") == 1, srv.stderr()
    assert re.search(r'"GET /stream-then-stall HTTP/1.1" 200 ', srv.stdout()), srv.stdout()
    harness.wait_workers(srv, 1, exclude=[pid], timeout=15)


def test_fast_requests_are_untouched_and_the_setting_is_off_by_default(serve, tmp_path):
    srv = serve("misc:sleep", "-k", "gthread", "--threads", "2", "--request-timeout", "3")
    (pid,) = harness.wait_workers(srv, 1)
    assert harness.get(srv.addr, "/sleep/1").status == 200
    assert harness.get(srv.addr, "/").status == 200
    assert harness.wait_workers(srv, 1) == [pid]
    assert "timed out" not in srv.stderr()


def test_sync_ignores_it_with_a_warning(serve):
    srv = serve("misc:sleep", "--request-timeout", "1")
    assert harness.get(srv.addr, "/sleep/2").status == 200
    assert "request_timeout is ignored by the sync worker class" in srv.stderr()

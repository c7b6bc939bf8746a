"""TERM drains the listen backlog (gunicorn#3397): requests already queued in the kernel when
the master starts a graceful stop are served, not reset."""

import signal

import pytest

import harness

pytestmark = pytest.mark.beyond_gunicorn


def test_term_serves_connections_waiting_in_the_backlog(serve, tmp_path):
    srv = serve("misc:sleep", "-w", "1", "--graceful-timeout", "20",
                extra_env=harness.marker_env(tmp_path))
    t, result = harness.in_flight(srv, "/sleep/1.5")
    harness.wait_marker(tmp_path, "sleeping")
    # The only (sync) worker is busy: these wait in the listen backlog, their requests sent.
    queued = []
    for _ in range(6):
        c = harness.connect(srv.addr, timeout=30)
        c.sendall(b"GET / HTTP/1.0\r\nHost: t\r\n\r\n")
        queued.append(c)
    srv.signal(signal.SIGTERM)
    statuses = []
    for c in queued:
        try:
            r = c.read_response(timeout=10)
            statuses.append(r.status if r is not None else "closed")
        except OSError as exc:
            statuses.append(repr(exc))
        finally:
            c.close()
    t.join(30)
    assert result.get("r") is not None and result["r"].status == 200, result
    assert statuses == [200] * 6, statuses
    assert srv.wait_exit() == 0


def test_max_requests_leaves_the_backlog_to_the_next_worker(serve):
    """A worker leaving for max_requests does not take connections just to serve them on its
    way out: the replacement does."""
    srv = serve("misc:sleep", "-w", "1", "--max-requests", "3")
    for _ in range(8):
        assert harness.get(srv.addr).status == 200

"""A timeout that says what was stuck: before a hung worker dies, the error log has the stack of
the request that hung, with its method, path and running time."""

import os
import re
import signal

import pytest

import harness

pytestmark = pytest.mark.beyond_gunicorn


def report(srv, pid):
    m = re.search(r"Worker \(pid:%d\) timed out in GET /hang/here\?id=42( after ([\d.]+)s)? "
                  r"\([^)]*\); the app was at:\n(Traceback[^\[]*)" % pid, srv.stderr())
    return m


def test_sync_timeout_logs_the_stuck_request(serve):
    srv = serve("stuck:app", "--timeout", "2")
    (pid,) = harness.wait_workers(srv, 1)
    t, result = harness.in_flight(srv, "/hang/here?id=42")
    m = harness.wait_for(lambda: report(srv, pid), 30, interval=0.1, what="the timeout report")
    assert 1.0 <= float(m.group(2)) < 30, m.group(0)
    stack = m.group(3)
    assert "in wait_for_the_database" in stack and "stuck.py" in stack, stack
    text = srv.stderr()
    # Written by the worker itself, so before it died; after the master's WORKER TIMEOUT line.
    assert text.index("WORKER TIMEOUT (pid:%d)" % pid) < text.index("timed out in GET /hang")
    harness.wait_workers(srv, 1, exclude=[pid], timeout=30)
    t.join(30)
    assert harness.get(srv.addr).status == 200


def test_gthread_abort_reports_each_busy_lane(serve, tmp_path):
    """gthread's app threads cannot be interrupted; SIGABRT (the master's, or an operator's)
    still gets the stacks of the lanes inside the app logged before the worker exits."""
    srv = serve("stuck:app", "-k", "gthread", "--threads", "3", extra_env=harness.marker_env(tmp_path))
    (pid,) = harness.wait_workers(srv, 1)
    t, result = harness.in_flight(srv, "/hang/here?id=42")
    harness.wait_marker(tmp_path, "hanging")
    os.kill(pid, signal.SIGABRT)
    m = harness.wait_for(lambda: report(srv, pid), 30, interval=0.1, what="the abort report")
    assert "in wait_for_the_database" in m.group(3), m.group(0)
    # Only the busy lane is reported, not the idle pool threads.
    assert srv.stderr().count("Worker (pid:%d) timed out in" % pid) == 1
    harness.wait_workers(srv, 1, exclude=[pid], timeout=30)
    t.join(30)


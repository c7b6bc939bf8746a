"""Recycling workers by memory (`max_worker_rss`) and by age (`max_worker_lifetime`): the
replacement boots before the old worker is stopped, so a steady load sees no failure."""

import re
import time

import pytest

import harness

pytestmark = pytest.mark.beyond_gunicorn


def recycled(srv):
    return re.findall(r"Worker \(pid:(\d+)\) replaced; stopping it gracefully", srv.stderr())


def test_a_leaking_worker_is_replaced_with_no_failed_request(serve):
    srv = serve("leak:app", "-w", "2", "--max-worker-rss", "60", "--graceful-timeout", "10",
                extra_env={"FC_LEAK_MIB": "4"})
    first = set(harness.wait_workers(srv, 2))
    with harness.Load(srv.addr, threads=2, pause=0.05, max_seconds=40) as load:
        harness.wait_for(lambda: len(recycled(srv)) >= 2, 35, interval=0.2,
                         what="two workers recycled\n" + srv.logs())
        load.wait_count(load.count() + 10)
    assert load.failures() == [], load.failures()[:3]
    log = srv.stderr()
    old = [int(p) for p in recycled(srv)]
    assert set(old) <= first | set(int(p) for p in re.findall(r"Booting worker with pid: (\d+)", log))
    # Each replacement started (its own boot line) before the old worker was told to stop.
    for pid in old:
        started = log.index("Worker (pid:%d) uses " % pid)
        stopped = log.index("Worker (pid:%d) replaced" % pid)
        assert "Booting worker with pid" in log[started:stopped], log
    assert "over its max_worker_rss of 60 MiB" in log
    # The pool is back at two, none of them over the limit for long.
    assert len(harness.wait_workers(srv, 2)) == 2


def test_workers_are_replaced_by_age_one_at_a_time(serve):
    srv = serve("echo:app", "-w", "2", "--max-worker-lifetime", "2",
                "--max-worker-lifetime-jitter", "1")
    first = set(harness.wait_workers(srv, 2))
    with harness.Load(srv.addr, threads=2, pause=0.02, max_seconds=30) as load:
        harness.wait_for(lambda: not first & set(srv.workers()) and len(recycled(srv)) >= 2, 25,
                         interval=0.1, what="both first workers replaced\n" + srv.logs())
        n = load.count()
        load.wait_count(n + 10)
    assert load.failures() == [], load.failures()[:3]
    assert "max_worker_lifetime is " in srv.stderr()
    assert len(harness.wait_workers(srv, 2)) == 2


def test_off_by_default(serve):
    srv = serve("leak:app", "-w", "1", extra_env={"FC_LEAK_MIB": "1"})
    (pid,) = harness.wait_workers(srv, 1)
    for _ in range(5):
        assert harness.get(srv.addr).status == 200
    time.sleep(1.5)
    assert srv.workers() == [pid] and not recycled(srv)

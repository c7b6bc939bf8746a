"""A worker's life: --timeout aborts a hung worker, --max-requests recycles workers (issue 3).
Checked against Gunicorn 27.0.1."""
import collections
import time

from harness import (Load, get, in_flight, marker_env, pid_alive, wait_file, wait_for,
                     wait_marker, wait_workers)

ABORT_CONF = '''import os


def worker_abort(worker):
    with open(%r, "a") as f:
        f.write("worker_abort %%d %%d\\n" %% (os.getpid(), worker.pid))
'''


def test_timeout_replaces_a_hung_worker_and_runs_worker_abort(serve, tmp_path):
    conf = tmp_path / "gunicorn.conf.py"
    abort_log = tmp_path / "abort.log"
    conf.write_text(ABORT_CONF % str(abort_log))
    srv = serve("lifecycle:app", "-c", str(conf), "-w", "2", "--timeout", "2",
                extra_env=marker_env(tmp_path))
    workers = wait_workers(srv, 2)
    t, result = in_flight(srv, "/hang", timeout=20)
    hung = wait_marker(tmp_path, "hanging")
    hung_at = time.monotonic()
    [other] = [w for w in workers if w != hung]

    # while it hangs, the other worker keeps answering (bounded: until the hung one is gone)
    answers = []
    while pid_alive(hung) and time.monotonic() - hung_at < 10:
        r = get(srv.addr, timeout=5)
        answers.append((r.status, r.body))
        time.sleep(0.1)
    gone_after = time.monotonic() - hung_at
    assert not pid_alive(hung), "the hung worker is still there 10 s later (timeout 2)"
    assert 1.5 <= gone_after <= 5.0, "hung worker removed after %.1f s (timeout 2)" % gone_after
    assert answers and all(a == (200, b"pid %d" % other) for a in answers), answers

    new = wait_workers(srv, 2, exclude=[hung], timeout=5)
    assert other in new
    text = wait_file(str(abort_log), what="the worker_abort hook's file")
    assert text.split() == ["worker_abort", str(hung), str(hung)]
    t.join(10)
    r = result.get("r")
    assert r is None or r.status >= 500, "the hung request was answered: %r" % r
    assert get(srv.addr).status == 200


def test_max_requests_with_jitter_recycles_workers_without_losing_a_request(serve):
    srv = serve("lifecycle:app", "-w", "2", "--max-requests", "50",
                "--max-requests-jitter", "10")
    first = wait_workers(srv, 2)
    with Load(srv.addr, threads=2, max_requests=300, max_seconds=60, pause=0) as load:
        wait_for(lambda: load.count() >= 300, 60, what="300 requests")
    assert len(load.results) >= 300
    assert load.failures() == []
    served = collections.Counter(int(r[4].split()[1]) for r in load.results)
    # each worker serves at most max_requests + jitter (the readiness probe counts too)
    assert max(served.values()) <= 60, served
    assert len(served) >= 5, "workers were not recycled: %s" % served
    assert not set(first) & set(wait_workers(srv, 2)), "the first workers are still there"

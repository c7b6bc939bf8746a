"""The shared HTTP conformance kit, run against the real server.

The kit lives in ``<repo>/../shared/conformance`` (CI clones the repo with ``shared/`` beside it)
or under ``$FERROCORN_SHARED``. It is read-only in CI: the server runs with bytecode writing off
and every generated file (configs, logs) goes to a temp dir.
"""
import os
import shlex
import subprocess
import sys

import pytest

from harness import REPO, server_cmd


def shared_dir():
    return os.environ.get("FERROCORN_SHARED") or os.path.join(os.path.dirname(REPO), "shared")


WORKERS = [
    # Gunicorn's sync worker answers one request per connection, so its pipelined cases fail;
    # ferrocorn's sync worker keeps connections alive.
    pytest.param([], id="sync", marks=pytest.mark.beyond_gunicorn),
    pytest.param(["-k", "gthread", "--threads", "4"], id="gthread"),
    # Gunicorn's own gevent/eventlet/tornado workers differ from its gthread corpus results
    # (tornado parses with Tornado); ferrocorn's engine parses for every class.
    pytest.param(["-k", "gevent"], id="gevent", marks=pytest.mark.beyond_gunicorn),
    pytest.param(["-k", "eventlet"], id="eventlet", marks=pytest.mark.beyond_gunicorn),
    pytest.param(["-k", "tornado"], id="tornado", marks=pytest.mark.beyond_gunicorn),
]


@pytest.mark.parametrize("worker", WORKERS)
def test_conformance(serve, tmp_path, worker):
    if "-k" in worker and worker[1] in ("gevent", "eventlet", "tornado"):
        pytest.importorskip(worker[1])
    kit = os.path.join(shared_dir(), "conformance")
    if not os.path.exists(os.path.join(kit, "check.py")):
        if os.environ.get("CI"):
            pytest.fail("conformance kit not found at %s" % kit)
        pytest.skip("conformance kit not found at %s (set FERROCORN_SHARED)" % kit)
    srv = serve("echo_app:app", "--chdir", kit, *worker, cwd=str(tmp_path))
    host, port = srv.addr
    cmd = " ".join(shlex.quote(w) for w in server_cmd() + worker) + " -c {config} echo_app:app"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", TMPDIR=str(tmp_path))
    r = subprocess.run([sys.executable, os.path.join(kit, "check.py"), "--host", host,
                        "--port", str(port), "--timeout", "10", "--server-cmd", cmd],
                       cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=420)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("conformance:") and " 0 failed" in last, out

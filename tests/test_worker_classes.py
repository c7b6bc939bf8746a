"""Worker classes (-k): sync, gthread, gevent, eventlet, tornado, and the names that select them.

Concurrency is measured by counting: the app records how many requests are inside it at once
(tests/apps/classes.py), never by timing.
"""
import os
import shutil
import socket
import threading

import pytest

from harness import REPO, connect, get, is_gunicorn, run_cmd, wait_for

GREEN = ["gevent", "eventlet"]


def needs(module):
    pytest.importorskip(module)


def concurrent_gets(addr, path, count, timeout=30):
    """``count`` requests at once, each on its own connection; returns their statuses."""
    statuses = [None] * count
    errors = []

    def one(i):
        try:
            statuses[i] = get(addr, path, timeout=timeout).status
        except Exception as exc:  # reported below with the others
            errors.append(repr(exc))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    assert not errors, errors[:5]
    return statuses


def max_inside(addr):
    return get(addr, "/stats").json()["max"]


# -- how many requests one worker runs at once ------------------------------------------------

def test_sync_serves_one_at_a_time(serve):
    srv = serve("classes:app", "-w", "1", "-k", "sync")
    assert concurrent_gets(srv.addr, "/hold?n=1", 4) == [200] * 4
    assert max_inside(srv.addr) == 1


def test_gthread_serves_threads_at_once(serve):
    srv = serve("classes:app", "-w", "1", "-k", "gthread", "--threads", "4")
    assert concurrent_gets(srv.addr, "/hold?n=4", 8) == [200] * 8
    assert max_inside(srv.addr) == 4


@pytest.mark.parametrize("klass", GREEN)
def test_green_serves_worker_connections_at_once(serve, klass):
    needs(klass)
    # --threads is ignored by the green classes, as in Gunicorn.
    srv = serve("classes:app", "-w", "1", "-k", klass, "--worker-connections", "100",
                "--threads", "3")
    assert concurrent_gets(srv.addr, "/hold?n=100", 100) == [200] * 100
    stats = get(srv.addr, "/stats").json()
    assert stats["max"] == 100
    assert stats["multithread"] is True  # Gunicorn's async workers say so too


def test_tornado_native_app_runs_handlers_concurrently(serve):
    needs("tornado")
    srv = serve("tornado_app:app", "-w", "1", "-k", "tornado")
    assert concurrent_gets(srv.addr, "/hold?n=50", 50) == [200] * 50
    assert max_inside(srv.addr) == 50


def test_tornado_wsgi_app_runs_one_at_a_time(serve):
    needs("tornado")
    # Like Tornado's WSGIContainer: a WSGI app runs to completion on the loop.
    srv = serve("classes:app", "-w", "1", "-k", "tornado")
    assert concurrent_gets(srv.addr, "/hold?n=1", 3) == [200] * 3
    stats = get(srv.addr, "/stats").json()
    assert stats["max"] == 1 and stats["multithread"] is False


# -- behaviour specific to the event-loop classes -------------------------------------------

@pytest.mark.parametrize("klass", GREEN)
def test_request_keeps_its_greenlet_for_every_pull(serve, klass):
    needs(klass)
    srv = serve("classes:pinned_app", "-w", "1", "-k", klass)
    results = []
    threads = [threading.Thread(target=lambda: results.append(get(srv.addr, "/").body))
               for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(results) == 5
    owners = [set(body.split()) for body in results]
    assert all(len(o) == 1 for o in owners), owners  # one greenlet per request, all pulls
    assert len(set.union(*owners)) == 5  # and concurrent requests had different ones


@pytest.mark.parametrize("klass", GREEN)
def test_blocked_hub_trips_the_timeout(serve, klass):
    """A greenlet that never yields stops the hub; the master kills the worker after
    --timeout, as Gunicorn's gevent worker's heartbeat would stop too."""
    needs(klass)
    srv = serve("classes:app", "-w", "1", "-k", klass, "--timeout", "2")
    first = srv.workers()
    with connect(srv.addr, timeout=20) as c:
        c.sendall(b"GET /spin?60 HTTP/1.0\r\n\r\n")
        assert c.closed_by_peer(timeout=15)
    wait_for(lambda: "WORKER TIMEOUT" in srv.stderr(), 15, what="the timeout log line")
    wait_for(lambda: srv.workers() and srv.workers() != first, 15, what="a new worker")
    srv.wait_ready()


def test_tornado_native_handlers(serve):
    needs("tornado")
    srv = serve("tornado_app:app", "-w", "1", "-k", "tornado")
    r = get(srv.addr, "/?name=ferro")
    assert r.status == 200 and r.body == b"hello ferro"
    assert r.header("Server").startswith("TornadoServer/")
    assert get(srv.addr, "/missing").status == 404

    with connect(srv.addr) as c:
        # keep-alive: the engine, not Tornado, owns the connection
        c.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response()
        assert r.header("Transfer-Encoding") == "chunked" and r.body == b"part0\npart1\npart2\n"
        c.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        r = c.read_response()
        assert r.body == b"hello" and r.header("X-Remote-Ip") == "127.0.0.1"
        c.sendall(b"PUT /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 3000\r\n\r\n" + b"x" * 3000)
        assert c.read_response().body == b"got 3000"
        c.sendall(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response(method="HEAD")
        assert r.status == 405 and r.body == b""


@pytest.mark.parametrize("klass", ["sync", "gthread", "gevent", "eventlet", "tornado"])
def test_flask_app(serve, tmp_path, klass):
    needs("flask")
    if klass in ("gevent", "eventlet", "tornado"):
        needs(klass)
    shutil.copy(os.path.join(REPO, "examples", "manage.py"), tmp_path)
    srv = serve("manage:app", "-w", "1", "-k", klass, cwd=str(tmp_path))
    r = get(srv.addr)
    assert r.status == 200 and r.body == b"Hello from Flask\n"
    assert get(srv.addr, "/missing").status == 404


# -- choosing a class ---------------------------------------------------------------------------

@pytest.mark.parametrize("spec, name", [
    ("gunicorn.workers.ggevent.GeventWorker", "gevent"),
    ("ferrocorn.workers.geventlet.EventletWorker", "eventlet"),
    ("egg:gunicorn#tornado", "tornado"),
    ("gunicorn.workers.sync.SyncWorker", "sync"),
])
def test_class_paths_select_the_class(serve, spec, name):
    if name in ("gevent", "eventlet", "tornado"):
        needs(name)
    srv = serve("classes:app", "-w", "1", "-k", spec)
    assert get(srv.addr).status == 200
    assert "Using worker: %s" % name in srv.stderr()


@pytest.mark.skipif(is_gunicorn(), reason="ferrocorn's own messages")
def test_unknown_class_lists_the_valid_ones():
    r = run_cmd(["-k", "myapp.workers.Fast", "--check-config", "classes:app"],
                cwd=os.path.join(REPO, "tests", "apps"))
    assert r.returncode == 1
    assert "myapp.workers.Fast" in r.stderr
    assert "sync, gthread, gevent, eventlet, tornado" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.skipif(is_gunicorn(), reason="ferrocorn's own messages")
@pytest.mark.parametrize("klass", ["gevent", "eventlet", "tornado"])
def test_missing_library_is_a_clear_error(tmp_path, klass):
    # A package of that name that fails to import stands in for "not installed".
    fake = tmp_path / "fake" / klass
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ImportError("No module named %s")\n' % klass)
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "fake"))
    r = run_cmd(["-k", klass, "-b", "127.0.0.1:0", "classes:app"],
                cwd=os.path.join(REPO, "tests", "apps"), env=env)
    assert r.returncode == 1, r.stderr
    assert "pip install %s" % klass in r.stderr
    assert "Traceback" not in r.stderr


# -- the engine keeps slow and idle clients away from the app ---------------------------------

def test_idle_and_slow_clients_do_not_starve_gthread(serve):
    """200 idle keep-alive connections and 50 clients stuck mid-head, on one worker with two
    app threads: a fresh client is still answered."""
    srv = serve("classes:app", "-w", "1", "-k", "gthread", "--threads", "2",
                "--keep-alive", "60", "--worker-connections", "1000")
    held = []
    try:
        for _ in range(200):
            c = connect(srv.addr, timeout=20)
            c.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert c.read_response().status == 200  # now idle, kept alive
            held.append(c)
        for _ in range(50):
            s = socket.create_connection(srv.addr, timeout=20)
            s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")  # and never more
            held.append(s)
        r = get(srv.addr, timeout=10)
        assert r.status == 200 and r.body == b"ok\n"
        # the idle connections are still usable
        held[0].sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert held[0].read_response().status == 200
    finally:
        for c in held:
            c.close()

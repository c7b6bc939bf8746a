"""--reload: workers restart on code changes (issue 3). Checked against Gunicorn 27.0.1, except
where marked ``beyond_gunicorn``."""
import os
import time

import pytest

from harness import APPS, get, run_cmd, wait_for, wait_workers

MODULE = '''VERSION = %r


def app(environ, start_response):
    body = ("version " + VERSION).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
'''


def write_module(path, text):
    path.write_text(text)


def body(srv):
    try:
        r = get(srv.addr, timeout=5)
    except OSError:
        return None
    return (r.status, r.body.decode("latin-1"))


def until_served(srv, watched, want, timeout=10):
    """Poll until a request answers ``want``. A reloader records the files' mtimes on its first
    scan, which a test cannot see, so each poll moves the watched file's mtime forward again:
    whichever scan is the first after the baseline sees a change."""
    step = [0]

    def check():
        step[0] += 1
        later = time.time() + step[0]
        os.utime(watched, (later, later))
        got = body(srv)
        return got == want or None
    try:
        wait_for(check, timeout, interval=0.5, what="%r to be served" % (want,))
    except AssertionError:
        raise AssertionError("still %r, wanted %r\n%s" % (body(srv), want, srv.logs()))


@pytest.fixture
def reloading(serve, tmp_path):
    """A server with --reload on ``reloadme:app``, a module in tmp_path."""
    mod = tmp_path / "reloadme.py"
    write_module(mod, MODULE % "one")

    def start(*args):
        srv = serve("reloadme:app", "--reload", "-w", "1", *args, cwd=str(tmp_path))
        assert body(srv) == (200, "version one")
        return srv, mod
    return start


def test_edit_is_served_without_restarting_the_master(reloading):
    srv, mod = reloading()
    master = srv.pid
    [worker] = wait_workers(srv, 1)
    write_module(mod, MODULE % "two")
    until_served(srv, mod, (200, "version two"))
    assert srv.pid == master and srv.alive()
    assert wait_workers(srv, 1, exclude=[worker])


def test_syntax_error_is_logged_and_the_fix_is_loaded(reloading):
    srv, mod = reloading()
    write_module(mod, MODULE % "two" + "\ndef broken(:\n")
    # bump the mtime until a worker has reported the syntax error
    step = [0]

    def logged():
        step[0] += 1
        later = time.time() + step[0]
        os.utime(mod, (later, later))
        return "SyntaxError" in srv.stderr()
    wait_for(logged, 10, interval=0.5, what="the syntax error in the log")
    assert srv.alive()
    write_module(mod, MODULE % "three")
    until_served(srv, mod, (200, "version three"))
    assert srv.alive()


@pytest.mark.beyond_gunicorn
def test_syntax_error_keeps_the_old_code_serving(reloading):
    """Gunicorn's reloading worker serves a 500 page with the traceback until the file is
    fixed; ferrocorn keeps the workers that run the old code."""
    srv, mod = reloading()
    write_module(mod, MODULE % "two" + "\ndef broken(:\n")
    step = [0]

    def logged():
        step[0] += 1
        later = time.time() + step[0]
        os.utime(mod, (later, later))
        return "SyntaxError" in srv.stderr()
    wait_for(logged, 10, interval=0.5, what="the syntax error in the log")
    for _ in range(5):
        assert body(srv) == (200, "version one")
        time.sleep(0.1)
    write_module(mod, MODULE % "three")
    until_served(srv, mod, (200, "version three"))


def test_reload_extra_files_glob_restarts_workers(reloading, tmp_path):
    extra = tmp_path / "templates"
    extra.mkdir()
    watched = extra / "page.txt"
    watched.write_text("v1")
    (extra / "other.bin").write_text("not matched")
    srv, mod = reloading("--reload-extra-file", str(extra / "*.txt"))
    master = srv.pid
    [worker] = wait_workers(srv, 1)

    step = [0]

    def restarted():
        step[0] += 1
        later = time.time() + step[0]
        os.utime(watched, (later, later))
        kids = srv.workers()
        return len(kids) == 1 and kids[0] != worker
    wait_for(restarted, 10, interval=0.5, what="a new worker after touching page.txt")
    assert srv.pid == master
    assert body(srv) == (200, "version one")


@pytest.mark.beyond_gunicorn
def test_reload_with_preload_is_refused(tmp_path):
    """Gunicorn 27 starts with both (its docs call them incompatible; it does not even warn) and
    the preloaded code then never reloads. Ferrocorn refuses: exit 1, saying why."""
    r = run_cmd(["--reload", "--preload", "-b", "127.0.0.1:0", "hello_module"], cwd=APPS,
                timeout=15)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "preload" in r.stderr and "reload" in r.stderr

"""Numeric settings: bounds from the settings table, "infinite" durations, fd exhaustion.

Issue 10, items 1, 2, 16 (http_parser) and 18.
"""
import os
import resource
import signal
import socket
import subprocess
import time

import pytest

from harness import (APPS, get, in_flight, listening_socket, marker_env, run_cmd,
                     server_cmd, wait_for, wait_marker, wait_workers)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("GUNICORN_CMD_ARGS", "WEB_CONCURRENCY", "PORT")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def refused(r, setting):
    assert r.returncode == 1, "accepted (exit %s):\n%s%s" % (r.returncode, r.stdout, r.stderr)
    assert "invalid value for %s" % setting in r.stderr, r.stderr


# Values that reach a syscall, a size or a duration, outside what the setting can mean. Several
# came out as uid 0 (root workers) or wrapped before; Gunicorn refuses some only when it uses
# them (a crash in chown, listen or umask), hence beyond_gunicorn.
FILE_CASES = [
    ("user", "-1"), ("user", "2**32"), ("group", "-1"), ("group", "4294967295"),
    ("umask", "-1"), ("umask", "0o10000"), ("umask", "2**70"),
    ("backlog", "2**31"), ("workers", "10**30"), ("threads", "10**6"),
    ("worker_connections", "-1"), ("max_requests", "-1"), ("max_requests_jitter", "-3"),
    ("limit_request_line", "-1"), ("limit_request_fields", "-1"),
    ("limit_request_field_size", "-1"), ("timeout", "-1"), ("graceful_timeout", "-10**30"),
    ("keepalive", "-2"), ("cert_reqs", "3"),
]


@pytest.mark.beyond_gunicorn
@pytest.mark.parametrize("setting,value", FILE_CASES, ids=["%s=%s" % c for c in FILE_CASES])
def test_out_of_range_in_config_file_is_refused(tmp_path, setting, value):
    (tmp_path / "app.py").write_text("def app(e, s):\n    s('200 OK', [])\n    return [b'']\n")
    (tmp_path / "bad.conf.py").write_text("%s = %s\n" % (setting, value))
    r = run_cmd(["-c", "bad.conf.py", "--check-config", "app:app"], cwd=tmp_path, env=clean_env())
    refused(r, setting)
    assert "range" in r.stderr or "negative" in r.stderr, r.stderr


CLI_CASES = [
    (["-u", "4294967296"], "user"), (["-g", "4294967295"], "group"),
    (["-m", "0o10000"], "umask"), (["--backlog", "2147483648"], "backlog"),
    (["-w", "4097"], "workers"), (["--threads", "4097"], "threads"),
]


@pytest.mark.beyond_gunicorn
@pytest.mark.parametrize("args,setting", CLI_CASES, ids=[" ".join(a) for a, _ in CLI_CASES])
@pytest.mark.parametrize("where", ["argv", "GUNICORN_CMD_ARGS"])
def test_out_of_range_on_command_line_is_refused(tmp_path, args, setting, where):
    if where == "argv":
        r = run_cmd(args + ["--check-config", "app:app"], cwd=tmp_path, env=clean_env())
    else:
        r = run_cmd(["--check-config", "app:app"], cwd=tmp_path,
                    env=clean_env(GUNICORN_CMD_ARGS=" ".join(args)))
    refused(r, setting)
    assert "out of range; expected" in r.stderr, r.stderr


def test_negative_user_name_is_refused(tmp_path):
    """``-u -1`` is neither a uid nor a user name (Gunicorn: "No such user: '-1'")."""
    r = run_cmd(["-u", "-1", "--check-config", "app:app"], cwd=tmp_path, env=clean_env())
    assert r.returncode == 1
    assert "-1" in r.stderr and "user" in r.stderr.lower(), r.stderr


@pytest.mark.parametrize("value", ["fast", "python", "AUTO"])
def test_http_parser_values_are_accepted(value):
    r = run_cmd(["--http-parser", value, "--check-config", "misc:sleep"], cwd=APPS,
                env=clean_env())
    assert r.returncode == 0, r.stdout + r.stderr


def test_http_parser_unknown_value_is_refused():
    r = run_cmd(["--http-parser", "turbo", "--check-config", "misc:sleep"], cwd=APPS,
                env=clean_env())
    assert r.returncode == 1
    assert "http_parser" in r.stderr, r.stderr


@pytest.mark.beyond_gunicorn
def test_http_parser_is_noted_at_debug_level(serve):
    srv = serve("misc:sleep", "--http-parser", "fast", "--log-level", "debug")
    assert get(srv.addr, "/").status == 200
    wait_for(lambda: "http_parser = fast" in srv.stderr(), 5, what="the http_parser debug line")


# sys.maxsize, a value whose milliseconds overflow 64 bits, and one beyond 64 bits altogether.
HUGE = ["__import__('sys').maxsize", "2**62", "10**30"]


@pytest.mark.beyond_gunicorn
@pytest.mark.parametrize("huge", HUGE, ids=["maxsize", "2**62", "10**30"])
def test_huge_durations_mean_no_limit(serve, tmp_path, huge):
    """Gunicorn 27 accepts these values, but its workers then fail with "OverflowError:
    timestamp out of range for platform time_t"."""
    conf = tmp_path / "huge.conf.py"
    conf.write_text("timeout = %s\ngraceful_timeout = %s\nkeepalive = %s\n" % (huge, huge, huge))
    srv = serve("lifecycle:app", "-c", str(conf), "-w", "1", extra_env=marker_env(tmp_path))
    # Served: timeout = sys.maxsize used to panic on every connection.
    for _ in range(3):
        assert get(srv.addr, "/").status == 200
    worker = wait_workers(srv, 1)[0]
    # Not killed by the master's timeout check (2**62 wrapped into a limit of under a second).
    time.sleep(2.5)
    assert wait_workers(srv, 1) == [worker], srv.logs()
    assert "WORKER TIMEOUT" not in srv.stderr()
    # TERM is graceful: the in-flight request finishes (sys.maxsize wrapped into "kill now").
    t, result = in_flight(srv, "/sleep/1.5")
    wait_marker(tmp_path, "sleeping")
    srv.signal(signal.SIGTERM)
    t.join(20)
    assert "e" not in result, result.get("e")
    assert result["r"].status == 200, srv.logs()
    assert srv.wait_exit(20) == 0, srv.logs()


@pytest.mark.beyond_gunicorn
def test_fd_exhaustion_warnings_are_rate_limited(tmp_path):
    """Out of file descriptors, accept() fails on every retry: one warning per period (with a
    count of the others), not ten a second; and a warning at start that worker_connections
    exceeds the open files limit."""
    limit = 64
    lsock = listening_socket()
    errpath = tmp_path / "stderr"
    argv = server_cmd() + ["--bind", "fd://%d" % lsock.fileno(), "-w", "1", "--timeout", "60",
                           "misc:sleep"]

    def low_nofile():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    clients = []
    with open(errpath, "wb") as err:
        proc = subprocess.Popen(argv, cwd=APPS, env=clean_env(), stdout=subprocess.DEVNULL,
                                stderr=err, stdin=subprocess.DEVNULL, pass_fds=(lsock.fileno(),),
                                preexec_fn=low_nofile, start_new_session=True)
    try:
        addr = lsock.getsockname()[:2]
        wait_for(lambda: "Booting worker" in errpath.read_text(), 20, what="a worker")
        # Idle connections that never send a request: each holds a descriptor in the worker
        # until it has none left; the rest wait in the backlog, accept() failing on each retry.
        for _ in range(2 * limit):
            c = socket.create_connection(addr, timeout=5)
            clients.append(c)
        wait_for(lambda: "accept() failed" in errpath.read_text(), 10, what="fd exhaustion")
        time.sleep(3)
        text = errpath.read_text()
        failures = [ln for ln in text.splitlines() if "accept() failed" in ln]
        # 3 s of retries every 100 ms: about 30 lines before; one per 10 s now.
        assert 1 <= len(failures) <= 2, "\n".join(failures)
        assert "Too many open files" in failures[0], failures[0]
        assert "worker_connections (1000) is more than the open files limit (%d" % limit in text, text
    finally:
        for c in clients:
            c.close()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=15)
        lsock.close()


def test_in_range_values_still_work(tmp_path):
    """Bounds refuse nothing Gunicorn's own range admits: the edges load."""
    (tmp_path / "ok.conf.py").write_text(
        "user = 0\ngroup = 0\numask = 0o777\nbacklog = 2**31 - 1\nworkers = 0\nthreads = 0\n"
        "limit_request_line = 0\nlimit_request_fields = 0\nlimit_request_field_size = 0\n"
        "max_requests = 2**62\nmax_requests_jitter = 2**62\ntimeout = 0\n")
    r = run_cmd(["-c", str(tmp_path / "ok.conf.py"), "--check-config", "misc:sleep"], cwd=APPS,
                env=clean_env())
    assert r.returncode == 0, r.stdout + r.stderr

"""Logging and metrics as Gunicorn deployments see them: error-log lines, access lines
(compared with real Gunicorn atom by atom), Python logging integration, syslog, capture of
stdout/stderr, SIGUSR1 reopen under load, and statsd."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

import harness
from harness import APPS, connect, get, request, wait_for

LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[(\d+)\] \[([A-Z]+)\] (.*)$")


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def error_lines(text):
    """(pid, level, message) for every formatted line (continuation lines skipped)."""
    out = []
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            out.append((int(m.group(1)), m.group(2), m.group(3)))
    return out


def wait_text(path, needle, timeout=harness.IO_TIMEOUT):
    return wait_for(lambda: needle in read(path), timeout, what="%r in %s" % (needle, path))


UdpListener = harness.UdpListener


# ---------------------------------------------------------------------------------------------
# error log


def test_error_log_lines_match_gunicorn_messages(serve, tmp_path):
    errlog = tmp_path / "error.log"
    srv = serve("logapp:app", "-w", "2", "--error-logfile", str(errlog))
    wait_for(lambda: len([m for _, _, m in error_lines(read(errlog)) if m.startswith("Booting worker")]) == 2,
             harness.BOOT_TIMEOUT, what="two workers booted")
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit() == 0
    lines = error_lines(read(errlog))
    master = srv.pid
    by_msg = {m: (pid, lvl) for pid, lvl, m in lines}
    listening = [m for m in by_msg if m.startswith("Listening at: ")]
    assert len(listening) == 1 and listening[0].endswith("(%d)" % master), lines
    assert by_msg["Using worker: sync"] == (master, "INFO")
    booted = [(pid, m) for pid, lvl, m in lines if m.startswith("Booting worker with pid: ")]
    # Written by the worker itself, as Gunicorn does: the [pid] field is the worker's.
    assert sorted(pid for pid, _ in booted) == sorted(int(m.rsplit(" ", 1)[1]) for _, m in booted)
    assert master not in [pid for pid, _ in booted]
    assert by_msg["Handling signal: term"] == (master, "INFO")
    for pid, _ in booted:
        # A worker still loading the app when TERM arrives dies of it (as in Gunicorn), which
        # the master reports at info.
        assert (by_msg.get("Worker exiting (pid: %d)" % pid) == (pid, "INFO")
                or by_msg.get("Worker (pid:%d) was sent SIGTERM!" % pid) == (master, "INFO")), lines
    assert by_msg["Shutting down: Master"] == (master, "INFO")
    assert lines[-1][2] == "Shutting down: Master"


def test_log_level_filters(serve, tmp_path):
    errlog = tmp_path / "error.log"
    srv = serve("logapp:app", "--log-level", "warning", "--error-logfile", str(errlog))
    get(srv.addr, "/log")
    wait_text(errlog, "app error via ferrocorn.error")
    text = read(errlog)
    assert "Booting worker" not in text and "app info via" not in text
    assert "[WARNING] app warning via gunicorn.error" in text


def test_app_load_failure_is_logged_at_error(tmp_path):
    # The module imports but has no such object: Gunicorn's "App failed to load." (exit 4). A
    # module that fails to import is a boot error (exit 3), covered in test_hooks.py.
    r = harness.run_cmd(["--bind", "127.0.0.1:%d" % harness.free_port(), "logapp:no_such_object"],
                        cwd=APPS, timeout=harness.BOOT_TIMEOUT + 10)
    assert r.returncode == 4, r.stderr
    msgs = [(lvl, m) for _, lvl, m in error_lines(r.stderr)]
    assert ("ERROR", "Shutting down: Master") in msgs, r.stderr
    assert ("ERROR", "Reason: App failed to load.") in msgs, r.stderr
    assert any(lvl == "ERROR" and m.endswith("exited with code 4.") for lvl, m in msgs), r.stderr


# ---------------------------------------------------------------------------------------------
# access log


def test_no_access_log_unless_configured(serve):
    srv = serve("logapp:app")
    get(srv.addr, "/")
    get(srv.addr, "/status/404")
    srv.stop()
    assert "GET /" not in srv.stdout() and "GET /" not in srv.stderr()


# Every atom except the ones that differ by nature between two runs: t (time), p (pid),
# T/D/M/L (durations). h is included: both servers see 127.0.0.1.
COMPARE_FORMAT = ("%(h)s|%(l)s|%(u)s|%(r)s|%(m)s|%(U)s|%(q)s|%(H)s|%(s)s|%(B)s|%(b)s|%(f)s|%(a)s|"
                  "%({x-req}i)s|%({content-type}o)s|%({x-resp}o)s|%({REQUEST_METHOD}e)s|"
                  "%({x.custom}e)s|%({missing}i)s|%(zz)s")

REQUESTS = [
    b"GET / HTTP/1.0\r\nHost: t\r\n\r\n",
    b"GET /path%20with%20space?a=1&b=%22x%22 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
    b"User-Agent: curl/8.0 \"quoted\"\r\nReferer: http://ref.example/x\r\nX-Req: one\r\n\r\n",
    b"HEAD /head HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    b"POST /post?x=y HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 5\r\n"
    b"Authorization: Basic dXNlcjpwYXNz\r\n\r\nhello",
    b"GET /status/404 HTTP/1.0\r\nAuthorization: Bearer abc\r\n\r\n",
    b"GET /status/201 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    b"GET /env HTTP/1.0\r\nX-REQ: upper\r\n\r\n",
    b"GET /big HTTP/1.0\r\n\r\n",
    b"GET /raise HTTP/1.0\r\n\r\n",
]


# (request, atom) -> (ferrocorn, gunicorn) where Gunicorn's value is wrong (docs/logging.md):
# when the app raises, Gunicorn logs the 500 with an environ that has no PATH_INFO.
GUNICORN_WRONG = {
    (b"GET /raise HTTP/1.0\r\n\r\n", "U"): ("/raise", "None"),
}


def _access_lines(serve, tmp_path, monkeypatch, cmd, name):
    if cmd is not None:
        monkeypatch.setenv("FERROCORN_CMD", cmd)
    log = tmp_path / (name + ".access")
    srv = serve("logapp:app", "--access-logfile", str(log), "--access-logformat", COMPARE_FORMAT,
                name=name, probe="/ready")
    for raw in REQUESTS:
        request(srv.addr, raw)
    # the probe request is the first line; the rest arrive in order (one worker, one at a time)
    wait_for(lambda: len(read(log).splitlines()) >= len(REQUESTS) + 1, harness.IO_TIMEOUT,
             what="access lines from " + name)
    srv.stop()
    monkeypatch.delenv("FERROCORN_CMD", raising=False)
    return read(log).splitlines()[1:]


@pytest.mark.skipif(harness.is_gunicorn(), reason="compares ferrocorn with Gunicorn")
def test_access_lines_match_gunicorn_atom_by_atom(serve, tmp_path, monkeypatch):
    pytest.importorskip("gunicorn")
    ours = _access_lines(serve, tmp_path, monkeypatch, None, "ferrocorn")
    theirs = _access_lines(serve, tmp_path, monkeypatch, "%s -m gunicorn" % sys.executable, "gunicorn")
    assert len(ours) == len(theirs) == len(REQUESTS)
    atoms = re.findall(r"%\((.*?)\)s", COMPARE_FORMAT)
    for raw, a, b in zip(REQUESTS, ours, theirs):
        for atom, x, y in zip(atoms, a.split("|"), b.split("|")):
            if (raw, atom) in GUNICORN_WRONG:
                assert (x, y) == GUNICORN_WRONG[raw, atom]
                continue
            assert x == y, "atom %s for %r: ferrocorn %r, gunicorn %r" % (atom, raw[:40], x, y)


def test_access_log_default_format_and_escaping(serve, tmp_path):
    log = tmp_path / "access.log"
    srv = serve("logapp:app", "--access-logfile", str(log), probe="/ready")
    request(srv.addr, b"GET /x?q=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                      b"User-Agent: evil\"agent\xe9\r\nReferer: r\r\n\r\n")
    wait_for(lambda: len(read(log).splitlines()) >= 2, harness.IO_TIMEOUT, what="access line")
    line = read(log).splitlines()[1]
    m = re.match(r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] '
                 r'"GET /x\?q=1 HTTP/1\.1" 200 6 "r" "(.*)"$', line)
    assert m, line
    # Gunicorn escapes the quote; ferrocorn also escapes bytes outside printable ASCII.
    assert m.group(1) == 'evil\\"agent\\xe9'


# ---------------------------------------------------------------------------------------------
# Python logging integration

FLASK_APP = '''
import logging
from flask import Flask

app = Flask(__name__)
gunicorn_logger = logging.getLogger("gunicorn.error")
app.logger.handlers = gunicorn_logger.handlers
app.logger.setLevel(gunicorn_logger.level)


@app.route("/")
def index():
    app.logger.info("flask says %s", "hello")
    app.logger.debug("flask debug hidden")
    return "ok"
'''


def test_flask_logger_wired_to_gunicorn_error(serve, tmp_path):
    pytest.importorskip("flask")
    (tmp_path / "flaskapp.py").write_text(FLASK_APP)
    errlog = tmp_path / "error.log"
    srv = serve("flaskapp:app", "--error-logfile", str(errlog), cwd=str(tmp_path), probe="/404")
    assert get(srv.addr, "/").body == b"ok"
    wait_text(errlog, "flask says hello")
    worker_lines = [(pid, lvl, m) for pid, lvl, m in error_lines(read(errlog)) if m == "flask says hello"]
    assert len(worker_lines) == 1 and worker_lines[0][1] == "INFO"
    assert worker_lines[0][0] in srv.workers()
    assert "flask debug hidden" not in read(errlog)


JSON_FORMATTER = '''
import json
import logging


class JsonFormatter(logging.Formatter):
    def format(self, record):
        atoms = record.args if isinstance(record.args, dict) else {}
        return json.dumps({"logger": record.name, "msg": record.getMessage(),
                           "status": atoms.get("s"), "path": atoms.get("U"),
                           "ua": atoms.get("a")})
'''

LOGCONFIG_DICT = '''
logconfig_dict = {
    "formatters": {
        "json": {"()": "jsonfmt.JsonFormatter"},
        "generic": {"format": "%%(asctime)s [%%(process)d] [%%(levelname)s] %%(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "generic"},
        "access_json": {"class": "logging.FileHandler", "formatter": "json",
                        "filename": %(access)r},
        "errors": {"class": "logging.FileHandler", "formatter": "generic", "filename": %(error)r},
    },
    "loggers": {
        "gunicorn.access": {"level": "INFO", "handlers": ["access_json"], "propagate": False},
        "gunicorn.error": {"level": "INFO", "handlers": ["errors"], "propagate": False},
    },
}
'''


def test_logconfig_dict_routes_access_to_json(serve, tmp_path):
    (tmp_path / "jsonfmt.py").write_text(JSON_FORMATTER)
    access, error = tmp_path / "access.json", tmp_path / "error.log"
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text(LOGCONFIG_DICT % {"access": str(access), "error": str(error)})
    srv = serve("logapp:app", "-c", str(conf), "--pythonpath", str(tmp_path), probe="/ready")
    get(srv.addr, "/status/404", headers=[("User-Agent", "tester")])
    wait_for(lambda: len(read(access).splitlines()) >= 2, harness.IO_TIMEOUT, what="json lines")
    records = [json.loads(l) for l in read(access).splitlines()]
    last = records[-1]
    assert last["logger"] == "gunicorn.access"
    assert last["status"] == "404" and last["path"] == "/status/404" and last["ua"] == "tester"
    assert '"GET /status/404 HTTP/1.0" 404' in last["msg"]
    # Server messages go through the configured gunicorn.error handlers too.
    wait_text(error, "Booting worker with pid")
    assert "Listening at: " in read(error)


LOGGER_CLASS = '''
import os


class RecordingLogger:
    """Gunicorn's logger interface, writing one line per call."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.path = os.environ["FC_LOGGER_OUT"]

    def _w(self, kind, msg):
        with open(self.path, "a") as f:
            f.write("%s %d %s\\n" % (kind, os.getpid(), msg.splitlines()[0] if msg else msg))

    def critical(self, msg, *a, **k): self._w("critical", msg % a if a else msg)
    def error(self, msg, *a, **k): self._w("error", msg % a if a else msg)
    def warning(self, msg, *a, **k): self._w("warning", msg % a if a else msg)
    def info(self, msg, *a, **k): self._w("info", msg % a if a else msg)
    def debug(self, msg, *a, **k): self._w("debug", msg % a if a else msg)
    def exception(self, msg, *a, **k): self._w("exception", msg % a if a else msg)
    def log(self, lvl, msg, *a, **k): self._w("log", msg % a if a else msg)

    def access(self, resp, req, environ, request_time):
        self._w("access", "%s %s %s %s %s" % (environ["REQUEST_METHOD"], environ["PATH_INFO"],
                                              resp.status, resp.sent, dict(req.headers).get("X-REQ")))

    def reopen_files(self): self._w("reopen", "")
    def close_on_exec(self): pass
'''


def test_logger_class_gets_every_message_and_access(serve, tmp_path):
    (tmp_path / "mylogger.py").write_text(LOGGER_CLASS)
    out = tmp_path / "calls.txt"
    srv = serve("logapp:app", "--logger-class", "mylogger.RecordingLogger", "--pythonpath",
                str(tmp_path), extra_env={"FC_LOGGER_OUT": str(out)}, probe="/ready")
    get(srv.addr, "/status/201", headers=[("X-Req", "v")])
    wait_text(out, "GET /status/201")
    text = read(out)
    assert re.search(r"^info %d Listening at: " % srv.pid, text, re.M), text
    assert re.search(r"^access \d+ GET /status/201 201 Created 0 v$", text, re.M), text
    srv.signal(signal.SIGUSR1)
    wait_for(lambda: read(out).count("reopen") >= 2, harness.IO_TIMEOUT, what="reopen_files calls")


# ---------------------------------------------------------------------------------------------
# syslog


def test_syslog_udp(serve, tmp_path):
    lst = UdpListener()
    try:
        srv = serve("logapp:app", "--log-syslog", "--log-syslog-to", "udp://127.0.0.1:%d" % lst.port,
                    "--log-syslog-prefix", "myapp", "--log-syslog-facility", "local0",
                    probe="/ready")
        get(srv.addr, "/status/404")
        # local0 (16) * 8 + info (6) = 134
        boot = lst.wait(lambda i: "Booting worker" in i, "syslog error line")[0]
        assert re.match(r"^<134>gunicorn\.myapp\.error: \[\d+\] Booting worker with pid: \d+\x00?$", boot), boot
        acc = lst.wait(lambda i: "/status/404" in i, "syslog access line")[0]
        assert re.match(r'^<134>gunicorn\.myapp\.access: \[\d+\] 127\.0\.0\.1 - - \[.*\] '
                        r'"GET /status/404 HTTP/1\.0" 404 0 "-" "-"\x00?$', acc), acc
        # The error log on stderr keeps working alongside syslog.
        wait_for(lambda: "Booting worker" in srv.stderr(), harness.IO_TIMEOUT, what="stderr log")
    finally:
        lst.close()


def test_syslog_without_access_redirect(serve, tmp_path):
    lst = UdpListener()
    try:
        srv = serve("logapp:app", "--log-syslog", "--log-syslog-to", "udp://127.0.0.1:%d" % lst.port,
                    "--disable-redirect-access-to-syslog", probe="/ready")
        get(srv.addr, "/status/404")
        get(srv.addr, "/log")
        lst.wait(lambda i: "app error via ferrocorn.error" in i, "app line via syslog")
        assert not [i for i in lst.items if "/status/404" in i]
        assert all(i.startswith("<") and ".error: [" in i for i in lst.items), lst.items
    finally:
        lst.close()


# ---------------------------------------------------------------------------------------------
# capture_output


def test_capture_output_sends_stdio_to_error_log(serve, tmp_path):
    errlog = tmp_path / "error.log"
    srv = serve("logapp:app", "--capture-output", "--error-logfile", str(errlog))
    get(srv.addr, "/print")
    wait_text(errlog, "written to wsgi.errors")
    text = read(errlog)
    assert "printed to stdout" in text and "written to stderr" in text
    assert "printed to stdout" not in srv.stdout()


# ---------------------------------------------------------------------------------------------
# SIGUSR1 reopen (logrotate)


def test_usr1_reopen_loses_no_access_line(serve, tmp_path):
    log = tmp_path / "access.log"
    errlog = tmp_path / "error.log"
    srv = serve("logapp:app", "-w", "2", "--threads", "2", "--access-logfile", str(log),
                "--error-logfile", str(errlog), "--access-logformat", "%(U)s %(q)s",
                probe="/ready")
    total = 600
    done = []
    errors = []
    # The second half of the load waits for the reopen: on a quiet machine all 600 requests
    # can finish before the signal is even handled, leaving the new file empty.
    half = total // 2
    reopened = threading.Event()

    def client(k):
        try:
            for i in range(k, total, 3):
                if i >= half and not reopened.wait(harness.IO_TIMEOUT * 3):
                    raise AssertionError("the reopen was never seen")
                r = request(srv.addr, b"GET /n?i=%d HTTP/1.0\r\n\r\n" % i)
                assert r.status == 200
                done.append(i)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    wait_for(lambda: len(done) > total // 3, harness.IO_TIMEOUT * 3, what="first third of load")
    rotated = tmp_path / "access.log.1"
    os.rename(log, rotated)
    os.rename(errlog, tmp_path / "error.log.1")
    srv.signal(signal.SIGUSR1)
    wait_for(log.exists, harness.IO_TIMEOUT, what="a worker to reopen the access log")
    reopened.set()
    for t in threads:
        t.join(harness.IO_TIMEOUT * 6)
    assert not errors, errors
    assert len(done) == total
    wait_for(lambda: len(read(rotated).splitlines()) + len(read(log).splitlines()) == total + 1,
             harness.IO_TIMEOUT, what="every access line in one of the two files")
    seen = sorted(int(l.split("i=")[1]) for l in (read(rotated) + read(log)).splitlines() if "i=" in l)
    assert seen == list(range(total))
    # Both workers and the master reopened: new lines land in the new files.
    assert read(log).strip(), "nothing written to the reopened access log"
    # The master logs the signal before it reopens, so that line is in the rotated file.
    wait_text(tmp_path / "error.log.1", "Handling signal: usr1")


# ---------------------------------------------------------------------------------------------
# statsd


def test_statsd_metrics(serve, tmp_path):
    lst = UdpListener()
    try:
        srv = serve("logapp:app", "-w", "2", "--statsd-host", "127.0.0.1:%d" % lst.port,
                    "--statsd-prefix", "web", "--dogstatsd-tags", "env:test", probe="/ready")
        get(srv.addr, "/status/404")
        get(srv.addr, "/raise")
        tag = "|#env:test"
        lst.wait(lambda i: i == "web.gunicorn.workers:2|g" + tag, "workers gauge")
        lst.wait(lambda i: i == "web.gunicorn.request.status.404:1|c|@1.0" + tag, "404 counter")
        lst.wait(lambda i: i == "web.gunicorn.request.status.500:1|c|@1.0" + tag, "500 counter")
        lst.wait(lambda i: i == "web.gunicorn.log.exception:1|c|@1.0" + tag, "exception counter")
        reqs = lst.wait(lambda i: i.startswith("web.gunicorn.requests:"), "requests counter")
        assert set(reqs) == {"web.gunicorn.requests:1|c|@1.0" + tag}
        durations = lst.wait(lambda i: i.startswith("web.gunicorn.request.duration:"), "duration")
        assert all(re.match(r"^web\.gunicorn\.request\.duration:\d+\.\d+\|ms\|#env:test$", d)
                   for d in durations), durations
    finally:
        lst.close()

"""`--log-format json`: both logs as one JSON object per line that a client cannot forge."""

import json

import pytest

import harness
from harness import request, wait_for

pytestmark = pytest.mark.beyond_gunicorn


def lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8").splitlines()
    except OSError:
        return []


def test_access_and_error_logs_are_json_lines_clients_cannot_forge(serve, tmp_path):
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    fmt = '%(h)s %(t)s "%(r)s" %(s)s %(b)s "%(a)s" %({x-evil}i)s %(U)s %(h)s'
    srv = serve("logapp:app", "--log-format", "json", "--access-logfile", str(access),
                "--error-logfile", str(errors), "--access-logformat", fmt, probe="/ready")
    # Quotes, a backslash, a fake field and bytes that are not UTF-8 (control bytes in a header are
    # refused with 400; a newline comes through the percent-decoded path instead).
    evil = b'x", "s": "500", "level": "CRITICAL\\\xff\xfe\xe9'
    assert request(srv.addr, b"GET /p%0Ath%22?q=%22 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                             b'User-Agent: a"b\\c\r\nX-Evil: ' + evil + b"\r\n\r\n").status == 200
    request(srv.addr, b"GET /raise HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    request(srv.addr, b"GET /print HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    request(srv.addr, b"GET /log HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    wait_for(lambda: len(lines(access)) >= 5, harness.IO_TIMEOUT, what="access lines")
    records = [json.loads(line) for line in lines(access)]
    rec = next(r for r in records if r["r"].startswith("GET /p"))
    # One key per atom, as written, the first occurrence only.
    assert list(rec) == ["h", "t", "r", "s", "b", "a", "{x-evil}i", "U"]
    assert rec["h"] == "127.0.0.1" and rec["s"] == "200"
    assert rec["r"] == "GET /p%0Ath%22?q=%22 HTTP/1.1"
    assert rec["U"] == '/p\nth"', "PATH_INFO is decoded, and its newline stays inside the value"
    assert rec["a"] == 'a"b\\c'
    assert rec["{x-evil}i"] == 'x", "s": "500", "level": "CRITICAL\\\\xff\\xfe\\xe9'
    assert rec["t"].startswith("[") and rec["b"].isdigit()
    assert [r["s"] for r in records if r["r"].startswith("GET /raise")] == ["500"]

    wait_for(lambda: any("boom from the app" in line for line in lines(errors)), harness.IO_TIMEOUT,
             what="the traceback in the error log")
    errs = [json.loads(line) for line in lines(errors)]
    assert all(set(e) >= {"time", "pid", "level", "message"} for e in errs)
    assert any(e["message"].startswith("Starting ferrocorn") and e["level"] == "INFO" for e in errs)
    tb = [e for e in errs if "boom from the app" in e["message"]]
    assert tb and tb[0]["level"] == "ERROR" and "Traceback" in tb[0]["message"]
    assert "\n" in tb[0]["message"], "the traceback stays in one record"
    wait_for(lambda: any("written to wsgi.errors" in line for line in lines(errors)),
             harness.IO_TIMEOUT, what="the wsgi.errors record")
    errs = [json.loads(line) for line in lines(errors)]
    assert [e["message"] for e in errs if e.get("source") == "wsgi.errors"] == ["written to wsgi.errors"]
    # The app's own logging through the `gunicorn.error` logger lands as records too.
    wait_for(lambda: any("app warning via gunicorn.error" in line for line in lines(errors)),
             harness.IO_TIMEOUT, what="the app's log record")
    errs = [json.loads(line) for line in lines(errors)]
    assert {"level": "WARNING", "message": "app warning via gunicorn.error"}.items() <= next(
        e for e in errs if "app warning" in e["message"]).items()


def test_text_is_still_the_default(serve, tmp_path):
    access = tmp_path / "access.log"
    srv = serve("logapp:app", "--access-logfile", str(access), probe="/ready")
    wait_for(lambda: lines(access), harness.IO_TIMEOUT, what="access line")
    assert lines(access)[0].startswith("127.0.0.1 - - [")
    assert srv.stderr().startswith("[")


def test_bad_log_format_is_refused():
    p = harness.run_cmd(["--log-format", "yaml", "--check-config", "logapp:app"], cwd=harness.APPS)
    assert p.returncode == 1
    assert "log-format" in p.stderr or "log_format" in p.stderr, p.stderr

"""The control socket (`control_socket`): Gunicorn 27's `gunicornc` protocol, and `ferrocorn ctl`.

The tests that use only `gunicornc` and Gunicorn's documented behaviour run against Gunicorn
too (FERROCORN_CMD=gunicorn); the rest are marked beyond_gunicorn.
"""

import json
import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import time

import pytest

import harness

BIN = os.path.dirname(sys.executable)


def gunicornc():
    path = os.path.join(BIN, "gunicornc")
    if not os.path.exists(path):
        path = shutil.which("gunicornc")
    if not path:
        pytest.skip("gunicornc (from the gunicorn package) is not installed")
    return path


def gctl(sock, command, expect_ok=True):
    """`gunicornc -s SOCK -c COMMAND -j`: the parsed JSON answer."""
    p = subprocess.run([gunicornc(), "-s", str(sock), "-c", command, "-j"], capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL)
    if expect_ok:
        assert p.returncode == 0, (command, p.stdout, p.stderr)
        return json.loads(p.stdout)
    return p


def fctl(*args, timeout=30):
    """`ferrocorn ctl ARGS...` (through the console script's entry point)."""
    return subprocess.run([os.path.join(BIN, "ferrocorn"), "ctl"] + list(args), capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


class Raw:
    """A raw client: frames JSON (or arbitrary bytes) by hand."""

    def __init__(self, path, timeout=5.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(str(path))

    def send_bytes(self, data):
        self.s.sendall(data)

    def send(self, obj):
        payload = json.dumps(obj).encode()
        self.s.sendall(struct.pack(">I", len(payload)) + payload)

    def recv(self):
        head = self._exactly(4)
        if head is None:
            return None
        (n,) = struct.unpack(">I", head)
        return json.loads(self._exactly(n))

    def _exactly(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def close(self):
        self.s.close()


def wait_socket(path, timeout=15):
    harness.wait_for(lambda: os.path.exists(path), timeout, what="control socket %s" % path)


def start(serve, tmp_path, *args, **kw):
    sock = tmp_path / "ctl.sock"
    srv = serve("echo:app", "--control-socket", str(sock), *args, **kw)
    wait_socket(sock)
    return srv, sock


def test_gunicornc_drives_the_server(serve, tmp_path):
    """show workers, worker add 1, show stats and reload, as an operator runs them."""
    srv, sock = start(serve, tmp_path, "-w", "1")
    first = harness.wait_workers(srv, 1)
    shown = gctl(sock, "show workers")
    assert shown["count"] == 1
    (w,) = shown["workers"]
    assert w["pid"] == first[0] and w["age"] == 1
    # Gunicorn 27 sets `booted` in the worker process only, so its master always says false;
    # ferrocorn reports whether the worker has loaded the app.
    assert w["booted"] is (not harness.is_gunicorn())
    assert isinstance(w["last_heartbeat"], (int, float)) and w["last_heartbeat"] < 60

    assert gctl(sock, "worker add 1") == {"added": 1, "previous": 1, "total": 2}
    both = harness.wait_workers(srv, 2)
    harness.wait_for(lambda: gctl(sock, "show workers")["count"] == 2, 15, what="two workers shown")
    assert sorted(w["pid"] for w in gctl(sock, "show workers")["workers"]) == sorted(both)

    stats = gctl(sock, "show stats")
    assert stats["pid"] == srv.pid
    assert stats["workers_current"] == 2 and stats["workers_target"] == 2
    assert stats["workers_spawned"] == 2 and stats["reloads"] == 0
    assert isinstance(stats["uptime"], (int, float)) and stats["uptime"] >= 0

    # Text output, as gunicornc prints it for a person.
    p = subprocess.run([gunicornc(), "-s", str(sock), "-c", "show workers"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0 and "Total: 2 workers" in p.stdout, p.stdout

    assert gctl(sock, "reload") == {"status": "reloading"}
    # HUP re-reads the configuration: back to -w 1, with a new worker.
    fresh = harness.wait_workers(srv, 1, exclude=both, timeout=30)
    harness.wait_for(lambda: gctl(sock, "show stats")["reloads"] == 1, 15, what="reload counted")
    assert [w["pid"] for w in gctl(sock, "show workers")["workers"]] == fresh
    assert harness.get(srv.addr).status == 200


def test_show_listeners_config_all_and_help(serve, tmp_path):
    srv, sock = start(serve, tmp_path, "-w", "1", "--timeout", "17")
    lst = gctl(sock, "show listeners")
    assert lst["count"] == 1
    assert lst["listeners"][0]["type"] == "tcp"
    assert lst["listeners"][0]["address"] == "http://%s:%d" % srv.addr
    cfg = gctl(sock, "show config")
    assert cfg["timeout"] == 17 and cfg["control_socket"] == str(sock)
    assert cfg["control_socket_disable"] is False
    everything = gctl(sock, "show all")
    assert everything["arbiter"]["pid"] == srv.pid
    assert everything["web_worker_count"] == 1
    assert "worker add [N]" in gctl(sock, "help")["commands"]


def test_worker_remove_and_kill(serve, tmp_path):
    srv, sock = start(serve, tmp_path, "-w", "2")
    two = harness.wait_workers(srv, 2)
    assert gctl(sock, "worker remove 5") == {"removed": 1, "previous": 2, "total": 1}
    one = harness.wait_workers(srv, 1)
    assert gctl(sock, "worker kill 1") == {"success": False, "error": "Worker 1 not found"}
    assert gctl(sock, "worker kill %d" % one[0]) == {"success": True, "killed": one[0]}
    harness.wait_workers(srv, 1, exclude=two)
    assert harness.get(srv.addr).status == 200


def test_shutdown_graceful(serve, tmp_path):
    srv, sock = start(serve, tmp_path)
    assert gctl(sock, "shutdown") == {"status": "shutting_down", "mode": "graceful"}
    assert srv.wait_exit() == 0
    assert not os.path.exists(sock), "the socket file is removed at exit"


def test_socket_mode_default_and_configured(serve, tmp_path):
    srv, sock = start(serve, tmp_path)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    other = tmp_path / "grp.sock"
    serve("echo:app", "--control-socket", str(other), "--control-socket-mode", "0660")
    wait_socket(other)
    assert stat.S_IMODE(os.stat(other).st_mode) == 0o660


def test_disabled(serve, tmp_path):
    sock = tmp_path / "ctl.sock"
    serve("echo:app", "--control-socket", str(sock), "--no-control-socket")
    time.sleep(0.5)
    assert not os.path.exists(sock)


def test_default_path_under_xdg_runtime_dir(serve, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    serve("echo:app", extra_env={"XDG_RUNTIME_DIR": str(run)})
    wait_socket(run / "gunicorn.ctl")
    assert gctl(run / "gunicorn.ctl", "show stats")["workers_current"] == 1


# -- beyond Gunicorn -------------------------------------------------------------------------

@pytest.mark.beyond_gunicorn
def test_other_users_are_refused_even_if_the_file_is_opened_up(serve, tmp_path):
    """SO_PEERCRED: a client of another uid is refused although it could open the file."""
    if os.geteuid() != 0:
        pytest.skip("needs root to connect as another user")
    # A directory other users can reach (the pytest tmp tree is private to root).
    import tempfile
    pub = tempfile.mkdtemp(prefix="fc-ctl-")
    os.chmod(pub, 0o755)
    sock = os.path.join(pub, "ctl.sock")
    srv = serve("echo:app", "--control-socket", sock)
    wait_socket(sock)
    os.chmod(sock, 0o666)  # someone loosened the file's permissions
    code = (
        "import os, socket, struct, json, sys\n"
        "os.setgid(65534); os.setuid(65534)\n"
        "s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])\n"
        "p = json.dumps({'id': 1, 'command': 'shutdown quick'}).encode()\n"
        "s.sendall(struct.pack('>I', len(p)) + p)\n"
        "buf = b''\n"
        "while True:\n"
        "    c = s.recv(65536)\n"
        "    if not c: break\n"
        "    buf += c\n"
        "print(buf[4:].decode())\n")
    p = subprocess.run([sys.executable, "-c", code, str(sock)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    answer = json.loads(p.stdout)
    assert answer["status"] == "error" and "Permission denied: uid 65534" in answer["error"]
    time.sleep(0.5)
    assert srv.alive(), "the refused command was not run"
    assert "refused a connection" in srv.stderr()
    # The owner is still served.
    assert gctl(sock, "show stats")["pid"] == srv.pid
    srv.stop()
    shutil.rmtree(pub, ignore_errors=True)


@pytest.mark.beyond_gunicorn
def test_bad_input_gets_an_error_and_the_master_keeps_serving(serve, tmp_path):
    srv, sock = start(serve, tmp_path)
    c = Raw(sock)
    for command, expect in [("frobnicate", "Unknown command: frobnicate"),
                            ("worker add lots", "invalid literal"),
                            ("worker add 100000", "more workers can be added"),
                            ("worker kill", "Missing PID"),
                            ("shutdown quik", "Unknown shutdown mode"),
                            ("show 'workers", "No closing quotation"),
                            ("", "Empty command")]:
        c.send({"id": command, "command": command})
        answer = c.recv()
        assert answer["id"] == command and answer["status"] == "error", answer
        assert expect in answer["error"], answer
    c.send({"id": 9, "command": 12})
    assert c.recv()["status"] == "error"
    c.close()
    # Not JSON, not an object, an absurd length: the connection is dropped, nothing else.
    for junk in [b"\x00\x00\x00\x05hello", b"\x00\x00\x00\x02[]", b"\xff\xff\xff\xff" + b"x" * 100]:
        c = Raw(sock)
        c.send_bytes(junk)
        assert c.recv() is None
        c.close()
    assert srv.alive()
    assert harness.get(srv.addr).status == 200
    assert gctl(sock, "show stats")["workers_current"] == 1


@pytest.mark.beyond_gunicorn
def test_a_stalled_client_does_not_hold_the_master(serve, tmp_path):
    srv, sock = start(serve, tmp_path)
    stalled = [Raw(sock) for _ in range(3)]
    stalled[0].send_bytes(b"\x00\x00\x01\x00{\"id\"")  # half a message, then silence
    stalled[1].send_bytes(b"\x00\x00")  # half a length prefix
    t0 = time.monotonic()
    assert gctl(sock, "show stats")["pid"] == srv.pid
    assert time.monotonic() - t0 < 5
    # The pool is still managed meanwhile.
    assert gctl(sock, "worker add 1")["total"] == 2
    harness.wait_workers(srv, 2)
    for s in stalled:
        s.close()


@pytest.mark.beyond_gunicorn
def test_a_live_socket_of_another_server_is_not_taken(serve, tmp_path):
    first, sock = start(serve, tmp_path)
    second = serve("echo:app", "--control-socket", str(sock))
    harness.wait_file(second.stderr_path, lambda t: "Failed to start control socket" in t)
    assert "in use by another running server" in second.stderr()
    assert gctl(sock, "show stats")["pid"] == first.pid
    second.stop()
    # The second server did not remove the first one's socket.
    assert gctl(sock, "show stats")["pid"] == first.pid


@pytest.mark.beyond_gunicorn
def test_a_stale_socket_file_is_replaced(serve, tmp_path):
    sock = tmp_path / "ctl.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(sock))
    dead.close()  # the file stays, nobody listens
    srv = serve("echo:app", "--control-socket", str(sock))
    harness.wait_for(lambda: "Control socket listening" in srv.stderr(), 15, what="socket opened")
    assert gctl(sock, "show stats")["pid"] == srv.pid


@pytest.mark.beyond_gunicorn
def test_bad_control_socket_mode_is_refused():
    p = harness.run_cmd(["--control-socket-mode", "01777", "-b", "127.0.0.1:%d" % harness.free_port(),
                         "echo:app"], cwd=harness.APPS, timeout=30)
    assert p.returncode == 1
    assert "control_socket_mode" in p.stderr


@pytest.mark.beyond_gunicorn
def test_ferrocorn_ctl_commands(serve, tmp_path):
    srv, sock = start(serve, tmp_path, "-w", "1")
    p = fctl("-s", str(sock), "show", "workers")
    assert p.returncode == 0, p.stderr
    assert "1 workers" in p.stdout and str(harness.wait_workers(srv, 1)[0]) in p.stdout
    p = fctl("-s", str(sock), "-j", "worker", "add", "2")
    assert p.returncode == 0 and json.loads(p.stdout) == {"added": 2, "previous": 1, "total": 3}
    harness.wait_workers(srv, 3)
    p = fctl("-s", str(sock), "frobnicate")
    assert p.returncode == 1 and "Unknown command: frobnicate" in p.stderr
    p = fctl("-s", str(tmp_path / "nothing.sock"), "show", "stats")
    assert p.returncode == 1 and "cannot connect" in p.stderr


@pytest.mark.beyond_gunicorn
def test_ferrocorn_ctl_top(serve, tmp_path):
    srv, sock = start(serve, tmp_path, "-w", "2")
    harness.wait_workers(srv, 2)
    before = json.loads(fctl("-s", str(sock), "-j", "show", "top").stdout)
    served = sum(w["requests"] for w in before["workers"])  # the readiness probe
    for _ in range(5):
        assert harness.get(srv.addr).status == 200
    p = fctl("-s", str(sock), "-n", "2", "-d", "0.2", "top")
    assert p.returncode == 0, p.stderr
    screens = p.stdout.split("ferrocorn master %d" % srv.pid)
    assert len(screens) == 3, p.stdout
    last = screens[-1].splitlines()
    assert "workers 2/2" in last[0]
    rows = [line.split() for line in last if line[:1].isdigit()]
    assert len(rows) == 2 and {int(r[0]) for r in rows} == set(srv.workers())
    assert sum(int(r[3]) for r in rows) == served + 5  # REQUESTS
    assert all(float(r[5]) > 1 for r in rows)  # RSS MiB
    assert all(r[6] != "-" for r in rows), "CPU% from the second screen on"


@pytest.mark.beyond_gunicorn
def test_ferrocorn_ctl_reads_commands_from_stdin(serve, tmp_path):
    srv, sock = start(serve, tmp_path, "-w", "1")
    p = subprocess.run([os.path.join(BIN, "ferrocorn"), "ctl", "-s", str(sock), "-j"],
                       input="show stats\nfrobnicate\n\nworker add 1\nquit\nshow stats\n",
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert "Unknown command: frobnicate" in p.stderr
    dec = json.JSONDecoder()
    out, answers = p.stdout.strip(), []
    while out:
        obj, end = dec.raw_decode(out)
        answers.append(obj)
        out = out[end:].strip()
    assert [a.get("pid") for a in answers[:1]] == [srv.pid]
    assert answers[1] == {"added": 1, "previous": 1, "total": 2}
    assert len(answers) == 2, "nothing after quit"


@pytest.mark.beyond_gunicorn
def test_busy_lanes_show_their_request_until_it_ends(serve, tmp_path):
    sock = tmp_path / "ctl.sock"
    srv = serve("misc:sleep", "-k", "gthread", "--threads", "2", "--control-socket", str(sock),
                extra_env=harness.marker_env(tmp_path))
    wait_socket(sock)
    (pid,) = harness.wait_workers(srv, 1)
    long_tail = "x" * 100
    # The path as the app sees it (percent-decoded): an escape sequence must not reach a terminal.
    t, result = harness.in_flight(srv, "/sleep/3/%%1b[31m%s?token=secret" % long_tail)
    long_tail = "\x1b[31m" + long_tail
    harness.wait_marker(tmp_path, "sleeping")
    c = Raw(sock)

    def current(command):
        c.send({"id": command, "command": command})
        answer = c.recv()
        assert answer["status"] == "ok", answer
        (w,) = [w for w in answer["data"]["workers"] if w["pid"] == pid]
        return w

    w = current("show workers")
    # Gunicorn's fields are all still there.
    assert {"pid", "age", "booted", "aborted", "last_heartbeat"} <= set(w)
    (r,) = w["current"]
    assert r["method"] == "GET" and w["current_unlisted"] == 0
    # The path only (no query string), cut to 64 bytes.
    assert r["path"] == ("/sleep/3/" + long_tail)[:64] and r["path_cut"] is True
    first = r["running"]
    time.sleep(0.6)
    (r,) = current("show top")["current"]
    assert r["running"] >= first + 0.4, (first, r)
    p = fctl("-s", str(sock), "-n", "1", "top")
    assert p.returncode == 0, p.stderr
    line = [ln for ln in p.stdout.splitlines() if "GET" in ln]
    shown = ("/sleep/3/" + long_tail)[:64].replace("\x1b", "\\x1b") + "..."
    assert len(line) == 1 and shown in line[0] and "\x1b" not in p.stdout, p.stdout
    t.join(15)
    assert result["r"].status == 200
    harness.wait_for(lambda: current("show workers")["current"] == [], 5, what="the lane to clear")
    assert "GET" not in fctl("-s", str(sock), "-n", "1", "top").stdout
    c.close()


@pytest.mark.beyond_gunicorn
def test_greenlet_lanes_are_capped_and_the_rest_counted(serve, tmp_path):
    sock = tmp_path / "ctl.sock"
    srv = serve("misc:sleep", "-k", "gevent", "--worker-connections", "50", "--control-socket", str(sock))
    wait_socket(sock)
    (pid,) = harness.wait_workers(srv, 1)
    flights = [harness.in_flight(srv, "/sleep/3/n%d" % i) for i in range(11)]

    def row():
        (w,) = [w for w in gctl(sock, "show workers")["workers"] if w["pid"] == pid]
        return w
    w = harness.wait_for(lambda: (lambda w: w if len(w["current"]) + w["current_unlisted"] == 11 else None)(row()),
                         10, what="11 requests in the app")
    assert len(w["current"]) == 8 and w["current_unlisted"] == 3
    assert {r["path"] for r in w["current"]} < {"/sleep/3/n%d" % i for i in range(11)}
    assert "(+3 more requests in the app)" in fctl("-s", str(sock), "-n", "1", "top").stdout
    for t, result in flights:
        t.join(15)
        assert result["r"].status == 200

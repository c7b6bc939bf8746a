"""Test harness: start the real server command, talk raw HTTP/1.x bytes to it.

The command comes from ``FERROCORN_CMD`` (default ``ferrocorn``), so the shared-behaviour tests
can be run against Gunicorn itself: ``FERROCORN_CMD=gunicorn pytest tests``.
"""

import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, "apps")
REPO = os.path.dirname(HERE)

# Every wait in the suite is bounded by one of these.
BOOT_TIMEOUT = float(os.environ.get("FERROCORN_BOOT_TIMEOUT", "20"))
IO_TIMEOUT = 10.0
STOP_TIMEOUT = 15.0
# How long a process of a server's group may outlive a master that exited on its own.
ORPHAN_GRACE = float(os.environ.get("FERROCORN_ORPHAN_GRACE", "10"))


def server_cmd():
    """The server command as an argv prefix."""
    return shlex.split(os.environ.get("FERROCORN_CMD", "ferrocorn"))


def is_gunicorn():
    return os.path.basename(server_cmd()[-1]).startswith("gunicorn")


def free_port(host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def listening_socket(host="127.0.0.1"):
    """A bound, listening TCP socket whose fd the server inherits (``--bind fd://N``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, 0))
    s.listen(128)
    s.set_inheritable(True)
    return s


def run_cmd(args, cwd=None, env=None, timeout=30, extra_env=None):
    """Run the server command to completion (for --version, --check-config, failures ...)."""
    e = dict(os.environ if env is None else env)
    if extra_env:
        e.update(extra_env)
    return subprocess.run(server_cmd() + list(args), cwd=cwd, env=e, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _live_procs():
    """(pid, ppid, pgid) of every live (non-zombie) process, read from /proc."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        # the command name is in parentheses and may contain spaces
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            yield int(name), int(fields[1]), int(fields[2])


def proc_children(pid):
    """Pids whose parent is ``pid``."""
    return sorted(p for p, ppid, _ in _live_procs() if ppid == pid)


def proc_tree(pid):
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(proc_children(p))
    return tree


def group_members(pgid):
    """Live pids whose process group is ``pgid``."""
    return sorted(p for p, _, group in _live_procs() if group == pgid)


class UdpListener:
    """A loopback UDP socket collecting datagrams (statsd, syslog) on a thread."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.items = []
        self._stop = False
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            self.items.append(data.decode("utf-8", "replace"))

    def wait(self, pred, what, timeout=IO_TIMEOUT):
        return wait_for(lambda: [i for i in list(self.items) if pred(i)], timeout, what=what)

    def close(self):
        self._stop = True
        self._t.join(2)
        self.sock.close()


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return "?"


def rss_bytes(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def wait_for(pred, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


class Server:
    """One running server process (a session leader, so its whole group can be killed)."""

    def __init__(self, args, cwd, logdir, env=None, extra_env=None, pass_fds=(), addr=None,
                 name="server"):
        self.args = list(args)
        self.cwd = cwd
        self.addr = addr
        e = dict(os.environ if env is None else env)
        e.setdefault("PYTHONDONTWRITEBYTECODE", "1")
        e.setdefault("PYTHONUNBUFFERED", "1")
        if extra_env:
            e.update(extra_env)
        self.stdout_path = os.path.join(logdir, name + ".stdout")
        self.stderr_path = os.path.join(logdir, name + ".stderr")
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.argv = server_cmd() + self.args
        self.proc = subprocess.Popen(self.argv, cwd=cwd, env=e, stdout=self._out,
                                     stderr=self._err, stdin=subprocess.DEVNULL,
                                     pass_fds=tuple(pass_fds), start_new_session=True)
        self.pid = self.proc.pid
        # Set by tests that start a --daemon master: it leaves this group on purpose.
        self.daemonized = "--daemon" in self.args or "-D" in self.args
        self.leftovers = []

    # -- logs --
    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stdout(self):
        with open(self.stdout_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def logs(self):
        return "argv: %r\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
            self.argv, self.stdout()[-4000:], self.stderr()[-8000:])

    # -- life --
    def alive(self):
        return self.proc.poll() is None

    def wait_ready(self, path="/", timeout=BOOT_TIMEOUT, addr=None):
        """Poll until the server answers a request on ``addr`` with any HTTP response."""
        addr = addr or self.addr
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError("server exited with %s before it was ready\n%s"
                                     % (self.proc.returncode, self.logs()))
            try:
                with connect(addr, timeout=min(2.0, max(0.1, deadline - time.monotonic()))) as c:
                    c.sendall(b"GET " + path.encode() + b" HTTP/1.0\r\nHost: t\r\n\r\n")
                    if c.read_response() is not None:
                        return self
            except (OSError, HTTPError) as exc:
                last = exc
            time.sleep(0.05)
        raise AssertionError("server not ready after %.0fs (%r)\n%s" % (timeout, last, self.logs()))

    def wait_exit(self, timeout=STOP_TIMEOUT):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, sig):
        os.kill(self.pid, sig)

    def workers(self):
        return proc_children(self.pid)

    def stop(self):
        """SIGTERM, wait with a deadline, then SIGKILL the whole process group.

        A master that stopped on its own (by this TERM or earlier in the test) must leave no
        process of its group behind: one still there after ``ORPHAN_GRACE`` is killed and
        reported as ``self.leftovers``, which the ``serve`` fixture turns into a test error.
        """
        killed = False
        if self.alive():
            try:
                self.signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            if self.wait_exit(STOP_TIMEOUT) is None:
                killed = True
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=STOP_TIMEOUT)
        if not killed and not self.daemonized:
            self.leftovers = self._group_leftovers()
        # workers left behind by a master that died: kill the group either way
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._out.close()
        self._err.close()
        return self.proc.returncode

    def _group_leftovers(self):
        """Processes of this server's group still alive ``ORPHAN_GRACE`` seconds after the
        master exited, as ``(pid, cmdline)`` pairs."""
        deadline = time.monotonic() + ORPHAN_GRACE
        while True:
            left = group_members(self.pid)
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return [(pid, cmdline(pid)) for pid in left]


# ---------------------------------------------------------------------------------------------
# raw HTTP client


class HTTPError(Exception):
    """The peer sent something that is not an HTTP/1.x response, or closed early."""


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) as sent
        self.body = body
        self.raw_head = raw_head

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        import json
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %s %d %r %d bytes>" % (self.version, self.status, self.headers,
                                                 len(self.body))


class Conn:
    """A client connection that sends raw bytes and parses responses with a deadline."""

    def __init__(self, sock, timeout):
        self.sock = sock
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        sock.settimeout(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.sock.close()

    def sendall(self, data):
        self.sock.sendall(data)

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("response deadline passed")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
        self.buf += data
        return data

    def _read_until(self, marker, deadline, limit=1 << 20):
        while marker not in self.buf:
            if len(self.buf) > limit:
                raise HTTPError("no %r within %d bytes" % (marker, limit))
            if not self._fill(deadline):
                raise HTTPError("connection closed while waiting for %r; got %r"
                                % (marker, self.buf[:200]))
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _read_exact(self, n, deadline):
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise HTTPError("connection closed after %d of %d body bytes" % (len(self.buf), n))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self, timeout=None):
        """Read one status line and header block; None if the peer closed without a byte."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.buf:
            if self.eof or not self._fill(deadline):
                return None
        head = self._read_until(b"\r\n\r\n", deadline)
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HTTPError("bad status line %r" % lines[0])
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            headers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
        reason = parts[2].decode("latin-1") if len(parts) > 2 else ""
        return Response(parts[0].decode(), int(parts[1]), reason, headers, b"", head)

    def read_response(self, method="GET", timeout=None, skip_1xx=True):
        """Read one full response (head and body, chunked or not) within the deadline."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            r = self.read_head(timeout=max(0.01, deadline - time.monotonic()))
            if r is None:
                return None
            if skip_1xx and 100 <= r.status < 200:
                continue
            break
        if method == "HEAD" or 100 <= r.status < 200 or r.status in (204, 304):
            return r
        te = (r.header("transfer-encoding") or "").lower()
        cl = r.header("content-length")
        if "chunked" in te:
            chunks = []
            while True:
                size_line = self._read_until(b"\r\n", deadline)
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    # trailers, then the blank line
                    while self._read_until(b"\r\n", deadline) != b"\r\n":
                        pass
                    break
                chunks.append(self._read_exact(size, deadline))
                if self._read_exact(2, deadline) != b"\r\n":
                    raise HTTPError("chunk not followed by CRLF")
            r.body = b"".join(chunks)
        elif cl is not None:
            r.body = self._read_exact(int(cl), deadline)
        else:
            while not self.eof:
                self._fill(deadline)
            r.body, self.buf = self.buf, b""
        return r

    def closed_by_peer(self, timeout=None):
        """True when the peer closes (EOF or reset) within the deadline, with no more data."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while not self.eof:
                if self._fill(deadline) and self.buf:
                    return False
            return not self.buf
        except socket.timeout:
            return False


def connect(addr, timeout=IO_TIMEOUT):
    if isinstance(addr, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        s = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET,
                          socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(addr)
    except OSError:
        s.close()
        raise
    return Conn(s, timeout)


def request(addr, data, method=None, timeout=IO_TIMEOUT):
    """Send raw request bytes on a fresh connection and return the first full response."""
    if method is None:
        method = data.split(b" ", 1)[0].decode("latin-1")
    with connect(addr, timeout) as c:
        c.sendall(data)
        r = c.read_response(method=method, timeout=timeout)
        if r is None:
            raise HTTPError("connection closed without a response")
        return r


def get(addr, path="/", headers=(), version="HTTP/1.0", timeout=IO_TIMEOUT):
    lines = ["GET %s %s" % (path, version), "Host: 127.0.0.1"]
    lines += ["%s: %s" % h for h in headers]
    return request(addr, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), timeout=timeout)


# ---------------------------------------------------------------------------------------------
# process-tree and load helpers for the master life-cycle tests (signals, hooks, reload)


def pid_alive(pid):
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def proc_ppid(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def proc_status(pid):
    """/proc/PID/status as a dict of its ``Name: value`` lines."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def proc_args(pid):
    """The process title as ``ps -o args`` shows it (``setproctitle`` rewrites this)."""
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        raw = f.read()
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def wait_workers(srv, n, timeout=15, exclude=(), pid=None):
    """Wait until the master (``srv`` or ``pid``) has exactly ``n`` live children, none of them
    in ``exclude``; returns their pids."""
    master = srv.pid if pid is None else pid
    exclude = set(exclude)

    def ok():
        kids = [p for p in proc_children(master) if pid_alive(p)]
        return len(kids) == n and not exclude & set(kids) and kids
    try:
        return wait_for(ok, timeout, what="%d workers of %d (not %s)" % (n, master,
                                                                       sorted(exclude)))
    except AssertionError as exc:
        raise AssertionError("%s; children now %s\n%s" % (
            exc, proc_children(master), srv.logs() if srv is not None else ""))


def wait_gone(pids, timeout=15):
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout,
             what="pids %s to exit" % sorted(pids))


def wait_file(path, pred=lambda text: bool(text), timeout=15, what=None):
    """Poll a file until ``pred(text)`` holds; returns the text."""
    def check():
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            return None
        return text if pred(text) else None
    return wait_for(check, timeout, what=what or "file %s" % path)


class Load:
    """A small, bounded request load on loopback: ``threads`` clients, each doing one request
    per fresh connection (keep-alive off), pausing ``pause`` seconds between requests, until
    stopped or ``max_seconds``/``max_requests``.

    Every request is recorded with its start time and outcome, so a test can count only the
    requests that started before some moment (e.g. a stop signal).
    """

    def __init__(self, addr, threads=2, path="/", max_seconds=15.0, max_requests=3000,
                 pause=0.01, timeout=IO_TIMEOUT):
        self.addr = addr
        self.path = path
        self.timeout = timeout
        self.max_requests = max_requests
        self.pause = pause
        self.deadline = time.monotonic() + max_seconds
        self.results = []  # (start, end, status or None, error or None, body)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)

    def count(self):
        with self._lock:
            return len(self.results)

    def wait_count(self, n, timeout=15):
        wait_for(lambda: self.count() >= n, timeout, what="%d requests of the load" % n)

    def _run(self):
        while not self._stop.is_set() and time.monotonic() < self.deadline:
            with self._lock:
                if len(self.results) >= self.max_requests:
                    return
            start = time.monotonic()
            status = error = body = None
            try:
                r = get(self.addr, self.path, timeout=self.timeout)
                status, body = r.status, r.body
            except Exception as exc:  # recorded, judged by the test
                error = exc
            with self._lock:
                self.results.append((start, time.monotonic(), status, error, body))
            self._stop.wait(self.pause)

    def failures(self, started_before=None):
        with self._lock:
            return [r for r in self.results
                    if (started_before is None or r[0] < started_before)
                    and (r[2] != 200 or r[3] is not None)]


def in_flight(srv, path, timeout=30):
    """Start ``GET path`` on its own connection; returns (thread, result dict)."""
    conn = connect(srv.addr, timeout=timeout)
    conn.sendall(b"GET " + path.encode() + b" HTTP/1.0\r\nHost: t\r\n\r\n")
    result = {}

    def read():
        try:
            result["r"] = conn.read_response(timeout=timeout)
        except Exception as exc:  # judged by the test
            result["e"] = exc
        finally:
            conn.close()
    t = threading.Thread(target=read, daemon=True)
    t.start()
    return t, result


def wait_marker(tmp_path, prefix, timeout=10):
    """The app drops ``PREFIX-PID`` in FC_MARKER_DIR once a request is inside it: its pid."""
    found = wait_for(lambda: [p for p in tmp_path.iterdir() if p.name.startswith(prefix + "-")],
                     timeout, what="a request to reach the app (%s marker)" % prefix)
    return int(found[0].name.rsplit("-", 1)[1])


def marker_env(tmp_path):
    return {"FC_MARKER_DIR": str(tmp_path)}

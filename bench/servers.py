"""The servers under test: how each is started with equivalent settings, and how it is stopped.

Every WSGI server gets the same app module, 127.0.0.1 and a fresh port, 2 worker processes where
it has workers, no access log, and its own defaults otherwise. The thread-pool classes (ferrocorn
gthread, Gunicorn gthread) get 32 threads per worker so that 2 x 32 covers c=50 for the sleep app.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, "apps")
VENV_BIN = os.path.dirname(sys.executable)
WORKERS = "2"
THREADS = "32"


@dataclass
class Server:
    name: str
    argv: object              # (module, port, scratch_dir) -> list of str
    package: str = ""         # the pip package; rows are skipped when it did not install
    note: str = ""
    static: bool = False      # serves files (nginx), not the WSGI app
    stop_signal: int = signal.SIGTERM
    family: str = field(init=False, default="")

    def __post_init__(self):
        self.family = self.name.split("-")[0]


def _bin(name):
    return os.path.join(VENV_BIN, name)


def _bind(port):
    return f"127.0.0.1:{port}"


def _nginx(module, port, scratch):
    # Serves the same bytes as the hello and 64 KiB apps from files: the ceiling for a server
    # that only has to answer. Keep-alive limits raised so that wrk's connections are not recycled.
    files = {"hello": b"Hello, World!", "body64k": b"x" * 65536}
    os.chmod(scratch, 0o755)
    with open(os.path.join(scratch, "index"), "wb") as f:
        f.write(files.get(module, b""))
    conf = os.path.join(scratch, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
worker_processes {WORKERS};
daemon off;
master_process on;
pid {scratch}/nginx.pid;
error_log {scratch}/error.log warn;
events {{ worker_connections 2048; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    client_body_temp_path {scratch}/body;
    proxy_temp_path {scratch}/proxy;
    fastcgi_temp_path {scratch}/fastcgi;
    uwsgi_temp_path {scratch}/uwsgi;
    scgi_temp_path {scratch}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {scratch};
        location / {{ try_files /index =404; default_type text/plain; }}
    }}
}}
""")
    return ["nginx", "-c", conf, "-e", f"{scratch}/error.log"]


SERVERS = [
    Server("ferrocorn-sync", lambda m, p, s: [
        _bin("ferrocorn"), "-w", WORKERS, "-b", _bind(p), f"{m}:app"], "ferrocorn"),
    Server("ferrocorn-gthread", lambda m, p, s: [
        _bin("ferrocorn"), "-w", WORKERS, "-k", "gthread", "--threads", THREADS, "-b", _bind(p),
        f"{m}:app"], "ferrocorn", note="32 threads/worker"),
    Server("ferrocorn-gevent", lambda m, p, s: [
        _bin("ferrocorn"), "-w", WORKERS, "-k", "gevent", "-b", _bind(p), f"{m}:app"], "gevent"),
    Server("ferrocorn-eventlet", lambda m, p, s: [
        _bin("ferrocorn"), "-w", WORKERS, "-k", "eventlet", "-b", _bind(p), f"{m}:app"], "eventlet"),
    Server("ferrocorn-tornado", lambda m, p, s: [
        _bin("ferrocorn"), "-w", WORKERS, "-k", "tornado", "-b", _bind(p), f"{m}:app"], "tornado",
        note="WSGI app on the Tornado loop"),
    Server("gunicorn-tornado", lambda m, p, s: [
        _bin("gunicorn"), "-w", WORKERS, "-k", "tornado", "-b", _bind(p), f"{m}:app"], "tornado",
        note="WSGI app on the Tornado loop"),
    # The access log's cost (issue 5): the default format, written to a file.
    Server("ferrocorn-sync+accesslog", lambda m, p, s: [
        _bin("ferrocorn"), "-w", WORKERS, "--access-logfile", os.path.join(s, "access.log"),
        "-b", _bind(p), f"{m}:app"], "ferrocorn", note="access log to a file"),
    Server("gunicorn-sync", lambda m, p, s: [
        _bin("gunicorn"), "-w", WORKERS, "-b", _bind(p), f"{m}:app"], "gunicorn"),
    Server("gunicorn-gthread", lambda m, p, s: [
        _bin("gunicorn"), "-w", WORKERS, "-k", "gthread", "--threads", THREADS, "-b", _bind(p),
        f"{m}:app"], "gunicorn", note="32 threads/worker"),
    Server("gunicorn-gevent", lambda m, p, s: [
        _bin("gunicorn"), "-w", WORKERS, "-k", "gevent", "-b", _bind(p), f"{m}:app"], "gevent"),
    Server("granian", lambda m, p, s: [
        _bin("granian"), "--interface", "wsgi", "--workers", WORKERS, "--host", "127.0.0.1",
        "--port", str(p), "--no-ws", f"{m}:app"], "granian"),
    # --http11-socket neither chunks nor closes after a body without a length (the client
    # waits forever), so the streaming app alone gets --http-socket, which closes after each.
    Server("uwsgi", lambda m, p, s: [
        _bin("uwsgi"), "--http-socket" if m == "stream" else "--http11-socket", _bind(p),
        "--master", "--processes", WORKERS,
        "--module", f"{m}:app", "--disable-logging", "--die-on-term", "--need-app",
        "--buffer-size", "32768"], "uwsgi"),
    Server("bjoern", lambda m, p, s: [
        sys.executable, os.path.join(HERE, "single.py"), "bjoern", m, str(p)], "bjoern",
        note="single process"),
    Server("meinheld", lambda m, p, s: [
        sys.executable, os.path.join(HERE, "single.py"), "meinheld", m, str(p)], "meinheld",
        note="single process"),
    Server("waitress", lambda m, p, s: [
        _bin("waitress-serve"), f"--listen={_bind(p)}", f"{m}:app"], "waitress",
        note="single process, 4 threads"),
    Server("nginx", _nginx, "nginx", note="static file, same bytes", static=True,
           stop_signal=signal.SIGQUIT),
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/1.")
    except OSError:
        return False


class Running:
    """One started server: its process group, port and scratch directory."""

    def __init__(self, server, module, pin, log_path, deadline=30.0):
        self.server = server
        self.port = free_port()
        self.scratch = tempfile.mkdtemp(prefix=f"bench-{server.name}-")
        argv = server.argv(module, self.port, self.scratch)
        if pin:
            argv = ["taskset", "-c", pin] + argv
        self.log = open(log_path, "ab")
        self.log.write(f"\n=== {' '.join(argv)}\n".encode())
        self.log.flush()
        # A session of its own, so the whole tree can be signalled through the group id.
        self.proc = subprocess.Popen(argv, cwd=APPS, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        end = time.monotonic() + deadline
        while not _answers(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {self.proc.returncode}; see {log_path}")
            if time.monotonic() > end:
                self.stop()
                raise RuntimeError(f"{server.name} did not answer within {deadline:.0f} s")
            time.sleep(0.1)

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        for sig, wait in ((self.server.stop_signal, 5), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Workers that outlive their master still sit in the group: make sure none is left.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.log.close()
        subprocess.run(["rm", "-rf", self.scratch], check=False)

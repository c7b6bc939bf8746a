"""Apps for the response path: write() streaming, file responses, early hints, responses that
break midway, and the worker timeout. The route is the path; parameters in the query string."""
import os
import sys
import time
from urllib.parse import parse_qs

FILE = os.environ.get("RESPOND_FILE", "")
READS = os.environ.get("RESPOND_READS", "")


class RecordingFile:
    """A file object that appends one line per read() to RESPOND_READS."""

    def __init__(self, path):
        self.f = open(path, "rb")

    def fileno(self):
        return self.f.fileno()

    def read(self, n=-1):
        with open(READS, "a") as log:
            log.write("read %d\n" % n)
        return self.f.read(n)

    def seek(self, *a):
        return self.f.seek(*a)

    def close(self):
        self.f.close()


class NoFileno:
    """A file-like object without fileno(): served by reading it."""

    def __init__(self, data):
        self.data = data

    def read(self, n=-1):
        out, self.data = self.data[:n], self.data[n:]
        return out


def app(environ, start_response):
    path = environ["PATH_INFO"]
    q = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    if path == "/":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    if path == "/write-sleep":
        # write, wait, write: the first piece must reach the client before the wait ends.
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"first\n")
        time.sleep(float(q.get("s", "1.5")))
        write(b"second\n")
        return []

    if path == "/write-many":
        # n pieces of size bytes each through write(), then nothing returned.
        n, size = int(q["n"]), int(q["size"])
        hdrs = [("Content-Type", "application/octet-stream")]
        if q.get("cl"):
            hdrs.append(("Content-Length", str(n * size)))
        write = start_response("200 OK", hdrs)
        piece = b"x" * size
        for _ in range(n):
            write(piece)
        return [b""]

    if path == "/write-then-return":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"a")
        return [b"b", b"c"]

    if path == "/write-then-raise":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"partial")
        raise RuntimeError("after write")

    if path == "/rss":
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    rss = line.split()[1]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [rss.encode()]

    if path == "/file":
        # wsgi.file_wrapper over FILE, positioned at ?offset=, with an optional Content-Length.
        f = RecordingFile(FILE) if READS else open(FILE, "rb")
        f.seek(int(q.get("offset", "0")))
        hdrs = [("Content-Type", "application/octet-stream")]
        if "cl" in q:
            hdrs.append(("Content-Length", q["cl"]))
        start_response("200 OK", hdrs)
        return environ["wsgi.file_wrapper"](f, 8192)

    if path == "/filelike":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](NoFileno(b"0123456789" * 1000), 1000)

    if path == "/hints":
        hints = environ["wsgi.early_hints"]
        hints([("Link", "</style.css>; rel=preload; as=style")])
        hints([("Link", "</app.js>; rel=preload; as=script")])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"final"]

    if path == "/bad-hint":
        try:
            environ["wsgi.early_hints"]([("Link", "a\r\nX-Injected: 1")])
        except Exception:  # ValueError here, InvalidResponseHeader in Gunicorn
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"refused"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"sent"]

    if path == "/socket":
        sock = environ["gunicorn.socket"]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [("%s %s" % (sock.getsockname()[1], sock.getpeername()[1])).encode()]

    if path == "/raise-after-first":
        def gen():
            yield b"first"
            raise RuntimeError("midway")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return gen()

    if path == "/excinfo-after":
        def gen():
            yield b"first"
            try:
                raise ValueError("late")
            except ValueError:
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")],
                               sys.exc_info())
            yield b"never"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return gen()

    if path == "/str-after-bytes":
        def gen():
            yield b"bytes"
            yield "text"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return gen()

    if path == "/slow-stream":
        # Many pieces slowly: a client that leaves midway finds the app still producing.
        def gen():
            for _ in range(200):
                yield b"y" * 65536
                time.sleep(0.01)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return gen()

    if path == "/hang":
        time.sleep(float(q.get("s", "30")))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"late"]

    if path == "/bad-header-value":
        # Built at run time, so the traceback's source line does not show it.
        secret = "tok\u20ac" + environ.get("HTTP_X_SECRET", "")
        start_response("200 OK", [("X-Token", secret)])
        return [b"never"]

    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no route"]

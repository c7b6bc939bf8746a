"""Small apps that exercise one WSGI feature each. The path selects the behaviour."""
import os
import sys
import time

PID = os.getpid()


def _text(start_response, text, status="200 OK", extra=()):
    data = text.encode() if isinstance(text, str) else text
    start_response(status, [("Content-Type", "text/plain"),
                            ("Content-Length", str(len(data)))] + list(extra))
    return [data]


def sleep(environ, start_response):
    """/ -> fast; /sleep/S -> sleeps S seconds before answering."""
    parts = environ["PATH_INFO"].split("/")
    if len(parts) > 2 and parts[1] == "sleep":
        marker_dir = os.environ.get("FC_MARKER_DIR")
        if marker_dir:  # lets a test see that the request reached the app
            open(os.path.join(marker_dir, "sleeping-%d" % os.getpid()), "w").close()
        time.sleep(float(parts[2]))
    return _text(start_response, "slept %d\n" % os.getpid())


def stream(environ, start_response):
    """A generator without Content-Length: chunked on HTTP/1.1."""
    start_response("200 OK", [("Content-Type", "text/plain")])

    def gen():
        for i in range(5):
            yield ("part%d\n" % i).encode()
        yield b""  # an empty piece must not end a chunked body early
        yield b"end\n"
    return gen()


def writer(environ, start_response):
    """Uses the write() callable returned by start_response, then returns more."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"one,")
    write(b"two,")
    return [b"three"]


def status(environ, start_response):
    """/status/CODE -> that status, with a body the server must drop for 204/304."""
    code = environ["PATH_INFO"].rsplit("/", 1)[-1]
    reasons = {"204": "No Content", "304": "Not Modified", "200": "OK", "404": "Not Found"}
    start_response("%s %s" % (code, reasons.get(code, "X")), [("Content-Type", "text/plain")])
    return [b""] if code in ("204", "304") else [b"status " + code.encode()]


def raising(environ, start_response):
    """/boom raises before start_response; anything else is a normal 200."""
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom-from-test-app")
    return _text(start_response, "fine")


def excinfo(environ, start_response):
    """exc_info rules of PEP 3333.

    /before: error before anything was sent -> replace the headers with a 500 we choose.
    /after: error after the body began -> start_response(exc_info) must re-raise.
    /nosend: start_response twice without exc_info -> must raise (AssertionError-like).
    """
    path = environ["PATH_INFO"]
    if path == "/before":
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-First", "1")])
        try:
            raise ValueError("changed my mind")
        except ValueError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain"),
                                                       ("X-Second", "1")], sys.exc_info())
        return [b"replaced"]
    if path == "/after":
        def gen():
            write = start_response("200 OK", [("Content-Type", "text/plain")])
            write(b"first-part;")
            try:
                raise ValueError("too late")
            except ValueError:
                try:
                    start_response("500 Internal Server Error", [], sys.exc_info())
                except ValueError:
                    # re-raised as PEP 3333 requires: the response can only be cut short
                    yield b"reraised"
                    return
            yield b"not-reraised"
        return gen()
    if path == "/twice":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            start_response("200 OK", [("Content-Type", "text/plain")])
        except Exception:
            return [b"second-call-refused"]
        return [b"second-call-accepted"]
    return _text(start_response, "?")


class _Closing:
    """An iterable response that records close() in a marker file."""

    def __init__(self, marker, pieces, fail_at=None):
        self.marker = marker
        self.pieces = pieces
        self.fail_at = fail_at

    def __iter__(self):
        for i, p in enumerate(self.pieces):
            if i == self.fail_at:
                raise RuntimeError("iteration failed on purpose")
            yield p

    def close(self):
        with open(self.marker, "a") as f:
            f.write("closed\n")


def closing(environ, start_response):
    """/NAME?shape -> an iterable with close() that appends to $FC_MARKER_DIR/NAME."""
    name = environ["PATH_INFO"].strip("/")
    shape = environ["QUERY_STRING"]
    marker = os.path.join(os.environ["FC_MARKER_DIR"], name)
    if shape == "list":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
        return _Closing(marker, [b"abc", b"def"])
    if shape == "nolength":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _Closing(marker, [b"abc", b"", b"def"])
    if shape == "fail":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _Closing(marker, [b"abc", b"def"], fail_at=1)
    if shape == "empty":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "0")])
        return _Closing(marker, [])
    if shape == "head":  # a HEAD request: body must not be sent, close() still called
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
        return _Closing(marker, [b"abc", b"def"])
    raise ValueError(shape)


def filewrap(environ, start_response):
    """Serves $FC_FILE through wsgi.file_wrapper (with a block size)."""
    path = os.environ["FC_FILE"]
    size = os.path.getsize(path)
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(size))])
    f = open(path, "rb")
    wrapper = environ.get("wsgi.file_wrapper")
    if wrapper is None:
        return iter(lambda: f.read(8192), b"")
    return wrapper(f, 8192)


def inputs(environ, start_response):
    """/MODE: reads wsgi.input in one of several ways and returns what it saw, as repr lines."""
    mode = environ["PATH_INFO"].strip("/")
    inp = environ["wsgi.input"]
    seen = []
    if mode == "read-n":
        while True:
            piece = inp.read(7)
            if not piece:
                break
            seen.append(piece)
    elif mode == "readline":
        while True:
            line = inp.readline()
            if not line:
                break
            seen.append(line)
    elif mode == "readline-n":
        while True:
            line = inp.readline(4)
            if not line:
                break
            seen.append(line)
    elif mode == "readlines":
        seen = inp.readlines()
    elif mode == "iter":
        seen = [line for line in inp]
    elif mode == "mixed":
        seen.append(inp.read(3))
        seen.append(inp.readline())
        seen.append(inp.readline(2))
        seen.extend(inp.readlines())
        seen.append(inp.read())
        seen.append(inp.read())
    elif mode == "read-none":
        seen.append(inp.read(None) if True else b"")
    elif mode == "read-neg":
        seen.append(inp.read(-1))
    out = b"\n".join(repr(x).encode() for x in seen)
    return _text(start_response, out)


def envvars(environ, start_response):
    """Returns the FC_* variables of os.environ, one per line."""
    lines = sorted("%s=%s" % kv for kv in os.environ.items() if kv[0].startswith("FC_"))
    return _text(start_response, "\n".join(lines))

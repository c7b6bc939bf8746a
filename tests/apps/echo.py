"""Echo apps: the environ as JSON, or the request body back."""
import json
import os
import sys


def _jsonable(environ):
    out = {}
    for k, v in environ.items():
        if isinstance(v, (str, int, bool, float)) or v is None:
            out[k] = v
        elif isinstance(v, tuple):
            out[k] = list(v)
        else:
            out[k] = "<%s>" % type(v).__name__
    out["__has_file_wrapper"] = callable(environ.get("wsgi.file_wrapper"))
    out["__errors_write"] = callable(getattr(environ.get("wsgi.errors"), "write", None))
    out["__input_read"] = callable(getattr(environ.get("wsgi.input"), "read", None))
    out["__pid"] = os.getpid()
    out["__env"] = {k: v for k, v in os.environ.items() if k.startswith("FC_")}
    out["__cwd"] = os.getcwd()
    out["__sys_path"] = list(sys.path)
    return out


def app(environ, start_response):
    """Reads the whole body, then returns the environ (and the body length) as JSON."""
    body = environ["wsgi.input"].read()
    out = _jsonable(environ)
    out["__body_len"] = len(body)
    payload = json.dumps(out, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(payload)))])
    return [payload]


application = app


def body(environ, start_response):
    """Returns the request body as it was read, byte for byte."""
    data = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(data)))])
    return [data]


def count(environ, start_response):
    """Reads the body in 64 KiB pieces and returns only how many bytes came (for big uploads)."""
    stream = environ["wsgi.input"]
    total = 0
    while True:
        piece = stream.read(65536)
        if not piece:
            break
        total += len(piece)
    payload = str(total).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(payload)))])
    return [payload]

"""Apps for the worker-class tests.

``app`` counts how many requests are inside the application at once, as seen by the app
itself. ``/hold?n=N`` sleeps in 200 ms steps (``time.sleep``: patched under gevent/eventlet)
until N requests are inside at the same time, or 10 s passed, so the count does not depend on
how fast the test's clients connect. ``/stats`` reports the maximum seen.
"""
import json
import os
import threading
import time

_lock = threading.Lock()
_state = {"inside": 0, "max": 0}
HOLD_CAP = 10.0


def _json(start_response, data, status="200 OK"):
    body = json.dumps(data).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/stats":
        return _json(start_response, dict(_state, pid=os.getpid(),
                                          multithread=environ["wsgi.multithread"],
                                          multiprocess=environ["wsgi.multiprocess"]))
    if path == "/hold":
        n = int(environ.get("QUERY_STRING", "n=1").partition("=")[2] or 1)
        with _lock:
            _state["inside"] += 1
            _state["max"] = max(_state["max"], _state["inside"])
        try:
            deadline = time.monotonic() + HOLD_CAP
            time.sleep(0.2)
            while _state["max"] < n and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            with _lock:
                _state["inside"] -= 1
        return _json(start_response, {"held": True})
    if path == "/pinned":
        return pinned_app(environ, start_response)
    if path == "/spin":
        # Blocks the whole process without yielding: no patched call inside.
        end = time.monotonic() + float(environ.get("QUERY_STRING") or 30)
        while time.monotonic() < end:
            pass
        return _json(start_response, {"spun": True})
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok\n"]


def _current():
    try:
        import greenlet

        return id(greenlet.getcurrent())
    except ImportError:
        return threading.get_ident()


def pinned_app(environ, start_response):
    """A streamed body whose every piece names the greenlet/thread that produced it."""
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        for _ in range(4):
            yield b"%d\n" % _current()
            time.sleep(0.05)

    return body()

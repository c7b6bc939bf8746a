"""write() and wsgi.early_hints under the greenlet classes (tests/test_hub_write.py)."""
import importlib
from urllib.parse import parse_qs


def app(environ, start_response):
    path = environ["PATH_INFO"]
    q = {k: v[0] for k, v in parse_qs(environ["QUERY_STRING"]).items()}
    if path == "/":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    if path == "/stream":
        # n pieces of size bytes, each through write(), every byte telling its piece apart.
        n, size = int(q["n"]), int(q["size"])
        write = start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                          ("Content-Length", str(n * size))])
        for i in range(n):
            write(bytes([i % 256]) * size)
        return []

    if path == "/hints":
        environ["wsgi.early_hints"]([("Link", "</a.css>; rel=preload")])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hinted"]

    if path == "/write-timeout":
        # The library's own timeout around write()s to a client that does not read: it must
        # reach the app as that library's exception, within its time.
        lib = importlib.import_module(q["lib"])
        write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
        piece = b"x" * 65536
        outcome = "no timeout"
        try:
            with lib.Timeout(float(q["s"])):
                for _ in range(4096):
                    write(piece)
        except lib.Timeout as exc:
            outcome = "%s.%s" % (type(exc).__module__, type(exc).__name__)
        except BaseException as exc:
            outcome = "other: %s.%s" % (type(exc).__module__, type(exc).__name__)
            raise
        finally:
            with open(q["out"], "w") as f:
                f.write(outcome)
        return []

    if path == "/abandoned-write":
        # Another greenlet's write() backs up behind a client that does not read; this one's
        # write()s queue behind it and each gives up on the library's Timeout; then the app
        # returns its last piece at once. Nothing given to write() may come after that piece.
        lib = importlib.import_module(q["lib"])
        write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
        lib.spawn(write, b"x" * int(q["big"]))
        lib.sleep(0.2)
        outcome = []
        for i in range(8):
            try:
                with lib.Timeout(0.05):
                    write(b"%d" % i)
                outcome.append("written")
            except lib.Timeout:
                outcome.append("Timeout")
        with open(q["out"], "w") as f:
            f.write(" ".join(outcome))
        return [b"TAIL"]

    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found"]

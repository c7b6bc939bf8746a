"""An app that leaks: every request keeps FC_LEAK_MIB (default 4) MiB of memory for good."""
import os

_kept = []
_MIB = int(os.environ.get("FC_LEAK_MIB", "4"))


def app(environ, start_response):
    _kept.append(bytearray(_MIB * 1024 * 1024))  # touched pages: counted in RSS
    for chunk in _kept[-1:]:
        chunk[::4096] = b"x" * len(chunk[::4096])
    body = ("%d %d\n" % (os.getpid(), len(_kept))).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

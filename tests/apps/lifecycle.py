"""An app for the master/worker life-cycle tests. The path selects the behaviour.

/            -> "pid PID" (which worker answered)
/sleep/S     -> sleeps S seconds, then answers; drops $FC_MARKER_DIR/sleeping-PID first
/hang        -> sleeps 100 s (a hung request for --timeout); drops $FC_MARKER_DIR/hanging-PID
/token       -> a random token drawn when this module was imported (which import served?)
/orphan/S    -> double-forks a grandchild that sleeps S seconds and exits; its pid is the body.
                The grandchild is orphaned at once, so it is re-parented to PID 1 (or a subreaper).
"""
import os
import time

TOKEN = os.urandom(8).hex()


def _mark(prefix):
    marker_dir = os.environ.get("FC_MARKER_DIR")
    if marker_dir:  # lets a test see that the request reached the app
        open(os.path.join(marker_dir, "%s-%d" % (prefix, os.getpid())), "w").close()


def _text(start_response, text):
    data = text.encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(data)))])
    return [data]


def _orphan(seconds):
    r, w = os.pipe()
    child = os.fork()
    if child == 0:  # the middle process: fork the grandchild, report its pid, vanish
        os.close(r)
        grandchild = os.fork()
        if grandchild == 0:
            os.close(w)
            time.sleep(seconds)
            os._exit(7)
        os.write(w, str(grandchild).encode())
        os._exit(0)
    os.close(w)
    pid = b""
    while True:
        piece = os.read(r, 32)
        if not piece:
            break
        pid += piece
    os.close(r)
    os.waitpid(child, 0)
    return int(pid)


def app(environ, start_response):
    parts = environ["PATH_INFO"].split("/")
    if len(parts) > 2 and parts[1] == "sleep":
        _mark("sleeping")
        time.sleep(float(parts[2]))
    elif parts[1:2] == ["hang"]:
        _mark("hanging")
        time.sleep(100)
    elif parts[1:2] == ["token"]:
        return _text(start_response, TOKEN)
    elif len(parts) > 2 and parts[1] == "orphan":
        return _text(start_response, "%d" % _orphan(float(parts[2])))
    return _text(start_response, "pid %d" % os.getpid())

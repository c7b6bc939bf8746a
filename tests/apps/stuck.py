"""An app whose /hang request never returns (until the worker is killed for its timeout)."""
import os
import time


def wait_for_the_database(deadline):
    marker_dir = os.environ.get("FC_MARKER_DIR")
    if marker_dir:
        # Written from inside this function, so a test that sees the marker knows a stack taken
        # from now on has this function in it.
        open(os.path.join(marker_dir, "hanging-%d" % os.getpid()), "w").close()
    while time.monotonic() < deadline:
        time.sleep(0.05)


def app(environ, start_response):
    if environ["PATH_INFO"].startswith("/hang"):
        wait_for_the_database(time.monotonic() + 120)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\n"]

"""sleep: 10 ms of waiting per request, which measures a server's concurrency model.

`time.sleep` blocks a thread; under Gunicorn's gevent worker it is monkey-patched and yields.
"""
import time

BODY = b"slept 10 ms\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    time.sleep(0.010)
    start_response("200 OK", HEADERS)
    return [BODY]

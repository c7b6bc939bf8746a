"""Apps for request_timeout tests.

/stream-then-stall: a generator whose first piece is larger than what the engine gathers
before its first write, then a long wait inside the generator: the timeout fires while the
engine pulls the body, after the head went out.
"""
import time


def app(environ, start_response):
    if environ["PATH_INFO"] != "/stream-then-stall":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok\n"]
    start_response("200 OK", [("Content-Type", "application/octet-stream")])

    def gen():
        yield b"x" * (512 * 1024)
        stall_in_the_generator(30)
        yield b"late"
    return gen()


def stall_in_the_generator(seconds):
    time.sleep(seconds)

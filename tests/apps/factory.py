"""App factories: create_app() and create_app(name, debug=...)."""
import json

CALLS = []


def create_app(*args, **kwargs):
    CALLS.append((args, kwargs))

    def app(environ, start_response):
        payload = json.dumps({"args": list(args), "kwargs": kwargs}, sort_keys=True).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(payload)))])
        return [payload]
    return app


def not_a_factory():
    return "this is not a WSGI app"


not_callable = 42


def broken_factory():
    raise RuntimeError("factory failed on purpose")

"""A module that only defines ``application`` (found by ``ferrocorn hello_module``)."""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "21")])
    return [b"hello from module app"]

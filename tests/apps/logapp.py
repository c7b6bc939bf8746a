"""Apps for the logging tests: the path picks what the request does."""
import logging
import sys

log = logging.getLogger("gunicorn.error")


def app(environ, start_response):
    path = environ["PATH_INFO"]
    status, body, headers = "200 OK", b"hello\n", [("Content-Type", "text/plain"), ("X-Resp", "r1")]
    if path.startswith("/status/"):
        code = path.split("/")[2]
        status = code + " " + {"201": "Created", "404": "Not Found", "500": "Internal Server Error",
                                "302": "Found"}.get(code, "Whatever")
        body = b""
    elif path == "/log":
        log.info("app info via gunicorn.error")
        log.warning("app warning via %s", "gunicorn.error")
        logging.getLogger("ferrocorn.error").error("app error via ferrocorn.error")
        log.debug("app debug line")
    elif path == "/print":
        print("printed to stdout")
        sys.stdout.flush()
        sys.stderr.write("written to stderr\n")
        sys.stderr.flush()
        environ["wsgi.errors"].write("written to wsgi.errors\n")
    elif path == "/raise":
        raise RuntimeError("boom from the app")
    elif path == "/env":
        environ["x.custom"] = "set-by-app"
    elif path == "/big":
        body = b"x" * 10000
    headers.append(("Content-Length", str(len(body))))
    start_response(status, headers)
    return [body]

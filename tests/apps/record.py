"""Records every request the app is called for (method, path, body length) in $FC_RECORD, so the
hostile-client tests can check that a smuggled request never reached the application."""
import os


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    line = "%s %s %d\n" % (environ["REQUEST_METHOD"], environ["PATH_INFO"], len(body))
    with open(os.environ["FC_RECORD"], "a") as f:
        f.write(line)
    if environ["PATH_INFO"] == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return (b"x" * 65536 for _ in range(800))
    payload = b"ok\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(payload)))])
    return [payload]

"""64 KiB: one prebuilt 64 KiB body, so the cost is the server's write path, not the app."""

BODY = b"x" * 65536
HEADERS = [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]

"""stream: 100 chunks of 1 KiB from a generator, with no Content-Length (chunked on HTTP/1.1)."""

CHUNK = b"y" * 1024


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return (CHUNK for _ in range(100))

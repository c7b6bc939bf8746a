"""json: renders about 4 KiB of JSON per request (the dict is rebuilt each time, like a view)."""
import json


def _payload(path):
    return {
        "path": path,
        "items": [{"id": i, "name": f"item-{i:03d}", "price": i * 1.25, "tags": ["a", "b"],
                   "in_stock": i % 3 != 0} for i in range(48)],
    }


def app(environ, start_response):
    body = json.dumps(_payload(environ.get("PATH_INFO", "/"))).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]

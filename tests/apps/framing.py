"""For the framing tests (tests/test_framing.py): records every request the app is called for
(method, RAW_URI, body) in $FC_RECORD, answers with the status named in an `X-Status` request
header (200 by default), and returns what the environ said about the path as JSON."""
import json
import os


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    with open(os.environ["FC_RECORD"], "a") as f:
        f.write("%s %s %r\n" % (environ["REQUEST_METHOD"], environ["RAW_URI"], body))
    status = environ.get("HTTP_X_STATUS", "200")
    payload = json.dumps({
        "SCRIPT_NAME": environ["SCRIPT_NAME"],
        "PATH_INFO": environ["PATH_INFO"],
        "SERVER_PROTOCOL": environ["SERVER_PROTOCOL"],
        "body": body.decode("latin-1"),
    }).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    if status.startswith("101"):
        headers = [("Upgrade", "websocket"), ("Connection", "Upgrade")]
    start_response(status + " X", headers)
    return [payload]

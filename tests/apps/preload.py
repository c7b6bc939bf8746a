"""Records the pid that imported it: with --preload that is the master, not the worker."""
import json
import os

IMPORT_PID = os.getpid()


def app(environ, start_response):
    payload = json.dumps({"import_pid": IMPORT_PID, "worker_pid": os.getpid(),
                          "worker_ppid": os.getppid()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(payload)))])
    return [payload]

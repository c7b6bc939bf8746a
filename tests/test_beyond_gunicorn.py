"""Where ferrocorn deliberately does better than Gunicorn's sync worker. Skipped when
FERROCORN_CMD is gunicorn (FERROCORN_FORCE_BEYOND=1 runs them anyway, to see Gunicorn fail)."""
import threading
import time

import pytest

from harness import connect, proc_tree, request, rss_bytes

pytestmark = pytest.mark.beyond_gunicorn


def test_slow_client_does_not_block_one_sync_worker(serve):
    srv = serve("echo:app", "-w", "1", "-k", "sync")
    slow_req = b"GET /slow HTTP/1.1\r\nHost: t\r\nX-Pad: 0123456789\r\nConnection: close\r\n\r\n"
    stop = threading.Event()
    begun = threading.Event()
    slow_result = {}

    def trickle():
        try:
            with connect(srv.addr, timeout=30) as c:
                for i in range(len(slow_req)):  # bounded: one byte per 100 ms
                    if stop.is_set():
                        return
                    c.sendall(slow_req[i:i + 1])
                    if i == 3:
                        begun.set()
                    time.sleep(0.1)
                slow_result["r"] = c.read_response(timeout=10)
        except Exception as exc:
            slow_result["e"] = exc

    t = threading.Thread(target=trickle)
    t.start()
    try:
        assert begun.wait(10), "the slow client could not start"
        started = time.monotonic()
        fast = request(srv.addr, b"GET /fast HTTP/1.0\r\n\r\n", timeout=5)
        elapsed = time.monotonic() - started
        still_trickling = t.is_alive()
    finally:
        t.join(30)
        stop.set()
    assert fast.status == 200 and fast.json()["PATH_INFO"] == "/fast"
    assert still_trickling, "the fast request only finished after the slow client did (%.1fs)" \
        % elapsed
    # and the slow client is served in the end
    assert "e" not in slow_result, slow_result.get("e")
    assert slow_result["r"].json()["PATH_INFO"] == "/slow"


def test_keepalive_on_sync_worker(serve):
    srv = serve("echo:app", "-w", "1", "-k", "sync")
    with connect(srv.addr) as c:
        c.sendall(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
        r1 = c.read_response()
        assert (r1.header("connection") or "").lower() != "close"
        c.sendall(b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n")
        r2 = c.read_response()
    assert r1.json()["PATH_INFO"] == "/a"
    assert r2 is not None and r2.json()["PATH_INFO"] == "/b"


def test_1gib_upload_bounded_memory(serve):
    size = 1 << 30
    limit = 100 * 1024 * 1024
    srv = serve("echo:count", "-w", "1")
    peak = {"rss": 0}
    done = threading.Event()

    def sample():
        while not done.is_set():  # ends when the upload does (bounded by its deadline)
            total = sum(rss_bytes(p) for p in proc_tree(srv.pid))
            peak["rss"] = max(peak["rss"], total)
            done.wait(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    piece = b"\0" * (1 << 20)  # the only buffer: the body is streamed, never held
    deadline = time.monotonic() + 180
    try:
        with connect(srv.addr, timeout=60) as c:
            c.sendall(b"PUT /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                      b"Content-Length: %d\r\n\r\n" % size)
            for _ in range(size // len(piece)):
                c.sendall(piece)
                assert time.monotonic() < deadline, "upload took over 180 s"
            r = c.read_response(timeout=60)
    finally:
        done.set()
        sampler.join(10)
    assert r.status == 200
    assert r.body == str(size).encode()
    assert 0 < peak["rss"] < limit, "server RSS peaked at %.1f MiB" % (peak["rss"] / 2**20)

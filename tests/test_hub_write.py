"""write() and wsgi.early_hints in the greenlet classes wait cooperatively: a greenlet whose
client reads slowly (or not at all) waits on its own, and the hub keeps serving every other
request of the worker, as a gevent socket's sendall does in Gunicorn's gevent worker."""
import array
import fcntl
import socket
import termios
import time

import pytest

from harness import connect, request, wait_for

GREEN = [
    "gevent",
    # Gunicorn 27 has no eventlet class.
    pytest.param("eventlet", marks=pytest.mark.beyond_gunicorn),
]


def start(serve, klass):
    pytest.importorskip(klass)
    return serve("hubwrite:app", "-w", "1", "-k", klass, "--worker-connections", "20")


def stalled_reader(addr, path):
    """A connection that asks for `path`, reads the response head, then reads nothing more.
    Its receive buffer is made small before connecting, so the server's writes back up after
    a few MiB (the loopback's send buffer) and stay backed up. Returns the socket and what
    was read past the head."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.connect(addr)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    got = b""
    while b"\r\n\r\n" not in got:
        data = s.recv(1024)
        assert data, "closed before the response head"
        got += data
    assert got.startswith(b"HTTP/1.1 200"), got[:100]
    return s, got.split(b"\r\n\r\n", 1)[1]


def backed_up(s, timeout=5):
    """Waits until the bytes queued for `s` stop growing: its buffer is full and the server's
    writes are stuck behind it."""
    def queued():
        n = array.array("i", [0])
        fcntl.ioctl(s.fileno(), termios.FIONREAD, n)
        return n[0]

    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = queued()
        if now > 0 and now == last:
            return
        last = now
    raise AssertionError("the server kept sending to a client that does not read")


@pytest.mark.parametrize("klass", GREEN)
def test_a_client_that_stops_reading_does_not_stall_the_worker(serve, klass):
    srv = start(serve, klass)
    # 16 MiB in 64 KiB pieces: far more than the socket buffers hold.
    stuck, _ = stalled_reader(srv.addr, "/stream?n=256&size=65536")
    try:
        backed_up(stuck)  # the app is parked in write()
        for _ in range(3):
            t0 = time.monotonic()
            r = request(srv.addr, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=5)
            took = time.monotonic() - t0
            assert r.status == 200 and r.body == b"ok"
            assert took < 1.0, "a plain request waited %.2fs behind a stalled write()" % took
    finally:
        stuck.close()
    # The worker is still healthy once the stalled client is gone.
    assert request(srv.addr, b"GET / HTTP/1.0\r\n\r\n").status == 200


@pytest.mark.parametrize("klass", GREEN)
def test_concurrent_writers_each_get_their_own_bytes_in_order(serve, klass):
    import threading

    srv = start(serve, klass)
    n, size = 48, 65536
    expected = b"".join(bytes([i % 256]) * size for i in range(n))
    results, errors = {}, []

    def fetch(i):
        try:
            with connect(srv.addr, timeout=20) as c:
                c.sendall(b"GET /stream?n=%d&size=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (n, size))
                r = c.read_response(timeout=20)
                results[i] = (r.status, r.body == expected, len(r.body))
        except Exception as exc:  # reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert results == {i: (200, True, n * size) for i in range(6)}


@pytest.mark.parametrize("klass", GREEN)
def test_early_hints_then_the_response(serve, klass):
    srv = start(serve, klass)
    with connect(srv.addr) as c:
        c.sendall(b"GET /hints HTTP/1.1\r\nHost: x\r\n\r\n")
        hint = c.read_head(timeout=5)
        assert hint.status == 103 and hint.header("link") == "</a.css>; rel=preload"
        r = c.read_response(timeout=5)
    assert r.status == 200 and r.body == b"hinted"


@pytest.mark.parametrize("klass", GREEN)
def test_the_librarys_timeout_interrupts_a_stalled_write(serve, klass, tmp_path):
    srv = start(serve, klass)
    out = tmp_path / "outcome"
    stuck, _ = stalled_reader(srv.addr, "/write-timeout?lib=%s&s=0.5&out=%s" % (klass, out))
    try:
        # The app's own 0.5 s timeout fires while write() waits, as that library's exception
        # (not an OSError, not after the 30 s io timeout).
        assert wait_for(lambda: out.exists() and out.read_text(), timeout=5), "the timeout never fired"
        assert out.read_text().rsplit(".", 1)[-1] == "Timeout", out.read_text()
        assert out.read_text().startswith(klass), out.read_text()
        assert request(srv.addr, b"GET / HTTP/1.0\r\n\r\n", timeout=5).status == 200
    finally:
        stuck.close()


@pytest.mark.beyond_gunicorn  # Gunicorn's greenlets write the socket themselves, interleaved
@pytest.mark.parametrize("klass", GREEN)
def test_an_abandoned_write_still_goes_out_in_order(serve, klass, tmp_path):
    srv = start(serve, klass)
    out = tmp_path / "outcome"
    big = 8 << 20
    s, body = stalled_reader(srv.addr, "/abandoned-write?lib=%s&big=%d&out=%s" % (klass, big, out))
    with s:
        wait_for(lambda: out.exists() and out.read_text(), timeout=5, what="the app's Timeouts")
        assert out.read_text() == " ".join(["Timeout"] * 8)
        time.sleep(0.2)  # the app has returned: its step is over before the client reads
        s.settimeout(10)
        while not body.endswith(b"0\r\n\r\n"):
            data = s.recv(1 << 20)
            assert data, "closed before the end of the response"
            body += data
    # Chunked: strip the framing, keep the data.
    data, rest = b"", body
    while True:
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            break
        data, rest = data + rest[:size], rest[size + 2:]
    # Each abandoned piece goes out whole, in order, before the app's last piece: none lost.
    assert data == b"x" * big + b"01234567TAIL"

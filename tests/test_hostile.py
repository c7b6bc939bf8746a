"""Hostile clients against the real server: smuggling attempts, slowloris, idle floods, oversized
input, pipelined floods, clients that never read, resets mid-body.

In every case the app records each request it is called for (tests/apps/record.py), and the test
checks that no smuggled or incomplete request reached it, that an honest client is served while
the attack is on, and that the worker's memory (RSS) and open file descriptors stay bounded."""

import os
import socket
import struct
import time

import pytest

import harness

TIMEOUT = "2"  # --timeout: bounds every client wait, so slow attacks end within seconds


@pytest.fixture
def hostile(serve, tmp_path):
    """Starts the recording app with one worker; returns (server, worker pid, record reader)."""
    record = tmp_path / "requests.log"
    record.write_text("")

    def start(*args):
        srv = serve("record:app", "-w", "1", "--timeout", TIMEOUT, *args,
                    extra_env={"FC_RECORD": str(record)})
        harness.wait_for(lambda: len(srv.workers()) == 1, harness.BOOT_TIMEOUT, what="one worker")
        def seen():
            # Everything but the readiness probe and the honest client's requests.
            return [l for l in record.read_text().splitlines()
                    if l.split(" ")[1] not in ("/", "/honest")]
        return srv, srv.workers()[0], seen
    return start


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def honest(srv):
    r = harness.get(srv.addr, "/honest")
    assert r.status == 200 and r.body == b"ok\n"


def read_all(c, timeout=5.0):
    """Reads until the server closes (or the deadline); returns the bytes."""
    data = b""
    c.sock.settimeout(0.5)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = c.sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"

# Each payload is framed ambiguously (or wrongly); a server that reads it one way would see the
# request for /smuggled, and one that refuses it sees nothing. All must be refused whole.
SMUGGLING = {
    "cl_te": b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te_cl": b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n" + SMUGGLED + b"\r\n0\r\n\r\n",
    "te_space_before_colon": b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te_xchunked": b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te_chunked_then_identity": b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te_twice": b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te_vertical_tab": b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "te_http10": b"POST /a HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "duplicate_cl": b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 38\r\n\r\n" + SMUGGLED,
    "cl_list": b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0, 38\r\n\r\n" + SMUGGLED,
    "cl_plus": b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: +0\r\n\r\n" + SMUGGLED,
    "chunk_size_overflow": b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "chunk_size_negative": b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "chunk_bare_lf": b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n" + SMUGGLED,
    "head_bare_lf": b"GET /a HTTP/1.1\nHost: h\n\n" + SMUGGLED,
    "nul_in_header": b"GET /a HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n" + SMUGGLED,
    "obs_fold_te": b"POST /a HTTP/1.1\r\nHost: h\r\nX: y\r\n Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n" + SMUGGLED,
    "space_in_target": b"GET /a HTTP/1.1 /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
    "cr_in_header": b"GET /a HTTP/1.1\r\nHost: h\r\nX: a\rGET /smuggled HTTP/1.1\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(SMUGGLING))
def test_smuggling_never_reaches_the_app(hostile, name):
    srv, _, seen = hostile()
    with harness.connect(srv.addr) as c:
        c.sendall(SMUGGLING[name])
        data = read_all(c)
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None
    assert status in (400, 501), data[:200]
    # Refused whole: exactly one response, then the connection was closed.
    assert data.count(b"HTTP/1.1 ") == 1, data
    assert seen() == [], seen()
    honest(srv)
    assert all("/smuggled" not in line for line in seen())


def test_underscore_transfer_encoding_is_never_framing(hostile):
    """`Transfer_Encoding` is dropped (header_map=drop), so the body is framed by nothing: the
    chunked bytes that follow are read as the next request, which is malformed and refused."""
    srv, _, seen = hostile()
    with harness.connect(srv.addr) as c:
        c.sendall(b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer_Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n0\r\n\r\n")
        data = read_all(c)
    assert data.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 400" in data, data
    assert seen() == ["POST /a 0"]


def test_slowloris_head_is_cut_at_the_deadline(hostile):
    srv, pid, seen = hostile()
    with harness.connect(srv.addr) as c:
        c.sendall(b"GET /slow HTTP/1.1\r\nHost: h\r\n")
        start = time.monotonic()
        closed = False
        # One header line every 0.3 s: each read is quick, but the head never ends.
        for i in range(60):
            try:
                c.sendall(b"X-%d: y\r\n" % i)
            except OSError:
                closed = True
                break
            if i % 3 == 0:
                honest(srv)
            time.sleep(0.3)
            if c.closed_by_peer(timeout=0.01):
                closed = True
                break
        elapsed = time.monotonic() - start
    assert closed, "a head dribbled for %.1fs was never cut off" % elapsed
    assert elapsed < 10
    assert all("/slow" not in line for line in seen())


def test_slow_body_and_idle_connections_are_closed(hostile):
    srv, pid, seen = hostile()
    base_fds = fd_count(pid)
    conns = []
    try:
        for i in range(150):
            c = harness.connect(srv.addr)
            if i % 2:
                # Body promised, never sent in full.
                c.sendall(b"POST /slowbody HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\nabc")
            conns.append(c)
        honest(srv)
        harness.wait_for(lambda: fd_count(pid) >= base_fds + 100, 10, what="connections accepted")
        assert fd_count(pid) <= base_fds + 150 + 10
        # --timeout 2: every one of them is closed by the server although the clients stay.
        harness.wait_for(lambda: fd_count(pid) <= base_fds + 2, 15, what="idle connections closed")
        honest(srv)
    finally:
        for c in conns:
            c.close()
    assert all("/slowbody" not in line for line in seen())


@pytest.mark.parametrize("payload,status", [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"b" * 9000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: h\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(150)) + b"\r\n", 431),
    # A line that never ends: refused once it passes the limit, not buffered forever.
    (b"GET /" + b"a" * 200000, 414),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"c" * 200000, 431),
])
def test_oversized_heads_are_refused(hostile, payload, status):
    srv, pid, seen = hostile()
    with harness.connect(srv.addr) as c:
        try:
            c.sendall(payload)
        except OSError:
            pass  # the server may close before reading it all
        data = read_all(c)
    assert data.startswith(b"HTTP/1.1 %d" % status), data[:100]
    assert seen() == []
    honest(srv)


def test_huge_bodies_do_not_grow_memory(hostile):
    srv, pid, seen = hostile()
    honest(srv)
    rss0 = harness.rss_bytes(pid)
    total = 64 * 1024 * 1024
    piece = b"z" * (1 << 20)
    with harness.connect(srv.addr, timeout=30) as c:
        # Chunked, so the server cannot know the size up front.
        c.sendall(b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(total // len(piece)):
            c.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        c.sendall(b"0\r\n\r\n")
        r = c.read_response(timeout=30)
    assert r.status == 200
    assert "POST /upload %d" % total in seen()
    # Bodies past 1 MiB spill to a temp file: the worker did not hold 64 MiB.
    assert harness.rss_bytes(pid) - rss0 < 24 * 1024 * 1024


def test_reset_mid_body_never_reaches_the_app(hostile):
    srv, pid, seen = hostile()
    honest(srv)
    base_fds = fd_count(pid)
    for _ in range(20):
        c = harness.connect(srv.addr)
        c.sendall(b"POST /reset HTTP/1.1\r\nHost: h\r\nContent-Length: 2000000\r\n\r\n" + b"r" * 300000)
        # SO_LINGER 0: close sends RST instead of FIN.
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()
    honest(srv)
    harness.wait_for(lambda: fd_count(pid) <= base_fds + 1, 10, what="reset connections released")
    assert all("/reset" not in line for line in seen())


def test_pipelined_flood_without_reading(hostile):
    srv, pid, seen = hostile()
    honest(srv)
    rss0 = harness.rss_bytes(pid)
    base_fds = fd_count(pid)
    flood = b"GET /p HTTP/1.1\r\nHost: h\r\n\r\n" * 20000
    c = harness.connect(srv.addr)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.sock.settimeout(0.2)
    sent = 0
    deadline = time.monotonic() + 10
    # Never read: the server must stop reading once its writes back up, not buffer our flood.
    while sent < len(flood) and time.monotonic() < deadline:
        try:
            sent += c.sock.send(flood[sent:sent + 65536])
        except socket.timeout:
            pass
        except OSError:
            break
    honest(srv)
    served = sum(1 for line in seen() if line.startswith("GET /p "))
    assert served < 20000
    assert harness.rss_bytes(pid) - rss0 < 16 * 1024 * 1024
    # The stalled writer is dropped at the write deadline even though the client stays.
    harness.wait_for(lambda: fd_count(pid) <= base_fds, 15, what="stalled connection closed")
    c.close()
    honest(srv)


def test_client_that_never_reads_a_big_response(hostile):
    # gthread: each stalled stream holds one app thread, the honest client gets another. (The
    # sync worker has one: a stalled reader holds it until --timeout, as in Gunicorn.)
    srv, pid, seen = hostile("--threads", "8")
    honest(srv)
    base_fds = fd_count(pid)
    rss0 = harness.rss_bytes(pid)
    conns = []
    for _ in range(5):
        c = harness.connect(srv.addr)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.sendall(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n")  # 50 MiB streamed response
        conns.append(c)
    harness.wait_for(lambda: sum(1 for l in seen() if l.startswith("GET /big")) == 5, 10,
                     what="big requests started")
    honest(srv)
    # Streamed piece by piece: the unread 250 MiB are never buffered.
    assert harness.rss_bytes(pid) - rss0 < 24 * 1024 * 1024
    harness.wait_for(lambda: fd_count(pid) <= base_fds, 15, what="stalled readers dropped")
    for c in conns:
        c.close()
    honest(srv)


def test_connection_flood_beyond_worker_connections(hostile):
    srv, pid, seen = hostile("--worker-connections", "20", "--keep-alive", "1")
    conns = []
    try:
        for _ in range(100):
            conns.append(harness.connect(srv.addr))
        # The worker holds at most 20; the rest wait in the backlog, not in the worker.
        time.sleep(0.5)
        assert fd_count(pid) <= 20 + 20
    finally:
        for c in conns:
            c.close()
    honest(srv)

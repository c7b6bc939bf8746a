"""The response path as Gunicorn 27 has it: write() data on the wire before write() returns,
file responses by sendfile (HEAD reads nothing), one access line per request however the
response ends, wsgi.early_hints and gunicorn.socket, a 500 for a request the timeout aborts,
and no response header value in the error log."""
import os
import socket
import time

import pytest

from harness import connect, is_gunicorn, request, wait_for

CLASSES = [
    ("sync",),
    ("gthread", "--threads", "2"),
    ("gevent", "--worker-connections", "10"),
]


def class_args(cls):
    return ["-w", "1", "-k", cls[0], *cls[1:]]


def keeps_alive(cls):
    """Gunicorn's sync worker closes the connection after every response."""
    return not (is_gunicorn() and cls[0] == "sync")


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\n") for line in f if line.strip()]


# --- 6. write() is transmitted before it returns ------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c[0])
def test_write_reaches_the_client_before_the_app_returns(serve, cls):
    srv = serve("respond:app", *class_args(cls))
    with connect(srv.addr) as c:
        t0 = time.monotonic()
        c.sendall(b"GET /write-sleep?s=1.5 HTTP/1.1\r\nHost: x\r\n\r\n")
        head = c.read_head(timeout=5)
        assert head is not None and head.status == 200
        while b"first\n" not in c.buf:
            assert c._fill(t0 + 5), "closed before the first piece"
        first_at = time.monotonic() - t0
        assert first_at < 1.0, "the first write() was held for %.2fs" % first_at
        assert b"second" not in c.buf
        c.buf = head.raw_head + c.buf
        r = c.read_response(timeout=5)
    assert r.body == b"first\nsecond\n"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c[0])
def test_write_streams_in_bounded_memory(serve, cls):
    srv = serve("respond:app", *class_args(cls))
    before = int(request(srv.addr, b"GET /rss HTTP/1.0\r\n\r\n").body)
    size, n = 65536, 640  # 40 MiB through write()
    with connect(srv.addr, timeout=60) as c:
        c.sendall(b"GET /write-many?n=%d&size=%d&cl=1 HTTP/1.0\r\n\r\n" % (n, size))
        head = c.read_head(timeout=30)
        assert head.status == 200
        got = len(c.buf)
        deadline = time.monotonic() + 60
        while got < n * size:
            c.buf = b""
            data = c._fill(deadline)
            assert data, "closed after %d bytes" % got
            got += len(data)
    assert got == n * size
    peak = int(request(srv.addr, b"GET /rss HTTP/1.0\r\n\r\n").body)
    grew_mib = (peak - before) / 1024
    assert grew_mib < 16, "peak RSS grew by %.1f MiB for a 40 MiB written body" % grew_mib


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c[0])
def test_write_then_return_keeps_order_and_framing(serve, cls):
    srv = serve("respond:app", *class_args(cls))
    with connect(srv.addr) as c:
        for _ in range(2 if keeps_alive(cls) else 1):  # keep-alive: the chunked framing must end cleanly
            c.sendall(b"GET /write-then-return HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and r.body == b"abc"


# --- 7. wsgi.file_wrapper: sendfile, offsets, lengths, HEAD --------------------------------


@pytest.fixture
def data_file(tmp_path):
    path = tmp_path / "data.bin"
    data = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4
    path.write_bytes(data)
    return str(path), data


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c[0])
@pytest.mark.parametrize("sendfile", [True, False], ids=["sendfile", "no-sendfile"])
def test_file_wrapper_sends_the_right_bytes(serve, data_file, cls, sendfile):
    path, data = data_file
    args = class_args(cls) + ([] if sendfile else ["--no-sendfile"])
    srv = serve("respond:app", *args, extra_env={"RESPOND_FILE": path})
    c = connect(srv.addr)
    for target, want in [
        ("/file", data),
        ("/file?offset=1000", data[1000:]),            # from where the file object stands
        ("/file?offset=10&cl=500", data[10:510]),      # Content-Length shorter than the file
        ("/filelike", b"0123456789" * 1000),           # no fileno(): read through Python
    ]:
        if not keeps_alive(cls):
            c.close()
            c = connect(srv.addr)
        c.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target.encode())
        r = c.read_response(timeout=10)
        assert r.status == 200, target
        assert len(r.body) == len(want) and r.body == want, target
    c.close()


def test_file_wrapper_http10_without_length(serve, data_file):
    path, data = data_file
    srv = serve("respond:app", extra_env={"RESPOND_FILE": path})
    r = request(srv.addr, b"GET /file?offset=7 HTTP/1.0\r\n\r\n")
    assert r.body == data[7:]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c[0])
def test_head_on_a_file_response_reads_nothing(serve, data_file, tmp_path, cls):
    path, _ = data_file
    reads = str(tmp_path / "reads.log")
    srv = serve("respond:app", *class_args(cls), extra_env={"RESPOND_FILE": path, "RESPOND_READS": reads})
    with connect(srv.addr) as c:
        c.sendall(b"HEAD /file HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response(method="HEAD")
        assert r.status == 200
        if keeps_alive(cls):
            # the connection stays usable: no body bytes were left behind
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.read_response().body == b"ok"
    assert read_lines(reads) == []


@pytest.mark.beyond_gunicorn  # Gunicorn's gevent worker reads the file through Python
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c[0])
def test_a_file_response_is_sent_without_reading_it_in_python(serve, data_file, tmp_path, cls):
    path, data = data_file
    reads = str(tmp_path / "reads.log")
    srv = serve("respond:app", *class_args(cls), extra_env={"RESPOND_FILE": path, "RESPOND_READS": reads})
    r = request(srv.addr, b"GET /file?offset=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert r.body == data[3:]
    # sendfile(2) from the fd: the file object's read() is never called
    assert read_lines(reads) == []


# --- 8. one access line (and one post_request) per request, however it ends ---------------


def hook_config(tmp_path):
    posts = tmp_path / "posts.log"
    conf = tmp_path / "conf.py"
    conf.write_text(
        "def post_request(worker, req, environ, resp):\n"
        "    with open(%r, 'a') as f:\n"
        "        f.write(req.path + '\\n')\n" % str(posts))
    return str(conf), str(posts)


BROKEN = ["/raise-after-first", "/excinfo-after", "/str-after-bytes", "/write-then-raise"]


@pytest.mark.beyond_gunicorn  # Gunicorn loses some of these lines
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c[0])
def test_a_response_that_breaks_midway_is_logged_once(serve, tmp_path, cls):
    log = str(tmp_path / "access.log")
    conf, posts = hook_config(tmp_path)
    srv = serve("respond:app", *class_args(cls), "-c", conf, "--access-logfile", log,
                "--access-logformat", "%(U)s %(s)s")
    wait_for(lambda: len(read_lines(log)) >= 1, 5, what="the probe's access line")
    base = len(read_lines(log))
    for path in BROKEN:
        with connect(srv.addr) as c:
            c.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
            head = c.read_head()
            assert head is not None and head.status == 200, path
            # the body breaks off: the connection closes, without the last chunk
            deadline = time.monotonic() + 5
            while not c.eof:
                c._fill(deadline)
            assert not c.buf.endswith(b"0\r\n\r\n"), path
    wait_for(lambda: len(read_lines(log)) >= base + len(BROKEN), 5, what="access lines")
    time.sleep(0.2)  # a duplicate would come right after
    lines = read_lines(log)[base:]
    assert sorted(lines) == sorted("%s 200" % p for p in BROKEN)
    wait_for(lambda: len(read_lines(posts)) >= base + len(BROKEN), 5, what="post_request")
    assert sorted(read_lines(posts)[base:]) == sorted(BROKEN)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c[0])
def test_a_client_that_leaves_midway_is_logged_once(serve, tmp_path, cls):
    log = str(tmp_path / "access.log")
    srv = serve("respond:app", *class_args(cls), "--access-logfile", log,
                "--access-logformat", "%(U)s %(s)s")
    wait_for(lambda: len(read_lines(log)) >= 1, 5, what="the probe's access line")
    base = len(read_lines(log))
    s = socket.create_connection(srv.addr)
    s.sendall(b"GET /slow-stream HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(1024)
    # a reset, not a polite close: the next write fails at once
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()
    wait_for(lambda: len(read_lines(log)) > base, 10, what="the access line")
    time.sleep(0.3)
    assert read_lines(log)[base:] == ["/slow-stream 200"]
    # and the worker keeps serving
    assert request(srv.addr, b"GET / HTTP/1.0\r\n\r\n").body == b"ok"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c[0])
def test_an_app_error_before_the_response_is_logged_once_with_500(serve, tmp_path, cls):
    log = str(tmp_path / "access.log")
    conf, posts = hook_config(tmp_path)
    srv = serve("respond:app", *class_args(cls), "-c", conf, "--access-logfile", log,
                "--access-logformat", "%(U)s %(s)s")
    wait_for(lambda: len(read_lines(log)) >= 1, 5, what="the probe's access line")
    base = len(read_lines(log))
    r = request(srv.addr, b"GET /bad-header-value HTTP/1.0\r\n\r\n")
    assert r.status == 500
    wait_for(lambda: len(read_lines(log)) > base, 5, what="the access line")
    time.sleep(0.2)
    lines = read_lines(log)[base:]
    # Gunicorn logs the path of such a request as None
    assert len(lines) == 1 and lines[0].endswith(" 500"), lines
    assert read_lines(posts)[base:] == ["/bad-header-value"]


# --- 9. wsgi.early_hints and gunicorn.socket ---------------------------------------------


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c[0])
def test_early_hints_go_to_http11_clients_only(serve, cls):
    srv = serve("respond:app", *class_args(cls))
    with connect(srv.addr) as c:
        c.sendall(b"GET /hints HTTP/1.1\r\nHost: x\r\n\r\n")
        first = c.read_head()
        assert first.status == 103
        assert first.header("link") == "</style.css>; rel=preload; as=style"
        second = c.read_head()
        assert second.status == 103
        assert second.header("link") == "</app.js>; rel=preload; as=script"
        r = c.read_response()
        assert r.status == 200 and r.body == b"final"
    with connect(srv.addr) as c:
        c.sendall(b"GET /hints HTTP/1.0\r\n\r\n")
        r = c.read_response(skip_1xx=False)
        assert r.status == 200 and r.body == b"final"


def test_early_hints_refuse_header_injection(serve):
    srv = serve("respond:app")
    with connect(srv.addr) as c:
        c.sendall(b"GET /bad-hint HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response(skip_1xx=False)
        assert r.status == 200 and r.body == b"refused"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c[0])
def test_gunicorn_socket_is_the_client_connection(serve, cls):
    srv = serve("respond:app", *class_args(cls))
    with connect(srv.addr) as c:
        c.sendall(b"GET /socket HTTP/1.0\r\n\r\n")
        r = c.read_response()
        local = c.sock.getsockname()[1]
    assert r.body.decode() == "%d %d" % (srv.addr[1], local)


# --- 11. a request aborted by the worker timeout gets a 500 ------------------------------


def test_a_request_killed_by_the_timeout_gets_500(serve, tmp_path):
    log = str(tmp_path / "access.log")
    srv = serve("respond:app", "-w", "1", "--timeout", "1", "--access-logfile", log,
                "--access-logformat", "%(U)s %(s)s")
    t0 = time.monotonic()
    r = request(srv.addr, b"GET /hang?s=30 HTTP/1.0\r\n\r\n", timeout=20)
    assert r.status == 500
    assert time.monotonic() - t0 < 15
    wait_for(lambda: any(line.endswith(" 500") for line in read_lines(log)), 5, what="the access line")
    wait_for(lambda: "WORKER TIMEOUT" in srv.logs(), 5, what="the timeout in the error log")
    wait_for(lambda: "Error handling request" in srv.logs() and "/hang" in srv.logs(), 5,
             what="the aborted request in the error log")
    srv.wait_ready(timeout=20)  # a new worker serves
    assert request(srv.addr, b"GET / HTTP/1.0\r\n\r\n").body == b"ok"


# --- 5. a bad header value does not reach the error log ----------------------------------


def test_a_non_latin1_header_value_is_not_logged(serve):
    srv = serve("respond:app")
    r = request(srv.addr, b"GET /bad-header-value HTTP/1.0\r\nX-Secret: SECRETZ\r\n\r\n")
    assert r.status == 500
    wait_for(lambda: "X-Token" in srv.logs(), 5, what="the error naming the header")
    assert "SECRETZ" not in srv.logs()


# --- the same over TLS: write() through the session, files read (no sendfile) -------------


@pytest.mark.parametrize("cls", CLASSES[:2], ids=lambda c: c[0])
def test_write_and_files_over_tls(serve, data_file, tmp_path, cls):
    import ssl

    certs = pytest.importorskip("certs", reason="the TLS tests need the cryptography package")
    pki = certs.make_pki(str(tmp_path / "pki"))
    path, data = data_file
    srv = serve("respond:app", *class_args(cls), "--certfile", pki["server_cert"],
                "--keyfile", pki["server_key"], ready=False, extra_env={"RESPOND_FILE": path})
    ctx = ssl.create_default_context(cafile=pki["ca"])

    def fetch(target, on_first=None):
        with socket.create_connection(srv.addr, timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                t0 = time.monotonic()
                s.sendall(b"GET %s HTTP/1.0\r\n\r\n" % target.encode())
                got, first_at = b"", None
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got += chunk
                    if first_at is None and on_first and on_first in got:
                        first_at = time.monotonic() - t0
        return got.partition(b"\r\n\r\n")[2], first_at

    def ready():
        try:
            return fetch("/")[0] == b"ok"
        except (OSError, ssl.SSLError):
            return False
    wait_for(ready, 60, what="HTTPS readiness")
    body, first_at = fetch("/write-sleep?s=1.5", on_first=b"first\n")
    assert body == b"first\nsecond\n"
    assert first_at < 1.0, "the first write() was held for %.2fs" % first_at
    body, _ = fetch("/write-many?n=64&size=65536&cl=1")
    assert body == b"x" * (64 * 65536)
    body, _ = fetch("/file?offset=5")
    assert body == data[5:]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c[0])
def test_gunicorn_socket_does_not_keep_a_closed_connection_open(serve, cls):
    # The socket object holds a duplicate fd: when the server drops an idle keep-alive
    # connection, the client must still see it closed.
    if not keeps_alive(cls):
        pytest.skip("Gunicorn's sync worker closes after every response")
    srv = serve("respond:app", *class_args(cls), "--keep-alive", "1")
    with connect(srv.addr) as c:
        c.sendall(b"GET /socket HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 200
        assert c.closed_by_peer(timeout=6), "the idle connection was never closed"

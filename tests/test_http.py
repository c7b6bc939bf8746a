"""HTTP/1.x on the wire: keep-alive, pipelining, chunked both ways, 100-continue, bodiless
responses, required headers, and errors that must not take the worker down."""
import pytest

from harness import connect, request

# Gunicorn's sync worker closes every connection; keep-alive is tested on gthread, which both
# servers support (ferrocorn's sync keep-alive is in test_beyond_gunicorn.py).
GTHREAD = ("-k", "gthread", "--threads", "2")


def test_keepalive_two_requests_one_connection(serve):
    srv = serve("echo:app", *GTHREAD)
    with connect(srv.addr) as c:
        c.sendall(b"GET /one HTTP/1.1\r\nHost: t\r\n\r\n")
        r1 = c.read_response()
        c.sendall(b"GET /two HTTP/1.1\r\nHost: t\r\n\r\n")
        r2 = c.read_response()
    assert r1.status == r2.status == 200
    assert r1.json()["PATH_INFO"] == "/one" and r2.json()["PATH_INFO"] == "/two"
    assert (r1.header("connection") or "").lower() != "close"


def test_pipelining_three_in_one_send(serve):
    srv = serve("echo:app", *GTHREAD)
    with connect(srv.addr) as c:
        c.sendall(b"".join(b"GET /p%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(3)))
        paths = [c.read_response().json()["PATH_INFO"] for _ in range(3)]
    assert paths == ["/p0", "/p1", "/p2"]


def test_chunked_request_body(serve):
    srv = serve("echo:body")
    r = request(srv.addr, b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                          b"Connection: close\r\n\r\n"
                          b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n")
    assert r.status == 200
    assert r.body == b"hello world"


def test_chunked_response_from_generator(serve):
    srv = serve("misc:stream")
    with connect(srv.addr) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        r = c.read_response()
    assert r.status == 200
    assert r.header("content-length") is None
    assert "chunked" in (r.header("transfer-encoding") or "").lower()
    assert r.body == b"part0\npart1\npart2\npart3\npart4\nend\n"


def test_http10_response_closes(serve):
    srv = serve("echo:app", *GTHREAD)
    with connect(srv.addr) as c:
        c.sendall(b"GET / HTTP/1.0\r\nHost: t\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert c.closed_by_peer(timeout=5)


def test_expect_100_continue(serve):
    srv = serve("echo:body")
    with connect(srv.addr) as c:
        c.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
                  b"Connection: close\r\n\r\n")
        interim = c.read_head(timeout=5)
        assert interim is not None, "closed instead of 100 Continue"
        assert interim.raw_head.startswith(b"HTTP/1.1 100 Continue\r\n"), interim.raw_head
        c.sendall(b"hello")
        r = c.read_response()
    assert r.status == 200 and r.body == b"hello"


def test_head_has_no_body(serve):
    srv = serve("echo:app", *GTHREAD)
    with connect(srv.addr) as c:
        c.sendall(b"HEAD /h HTTP/1.1\r\nHost: t\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        head = c.read_response(method="HEAD")
        # if HEAD had leaked a body, the next "response" would start with JSON, not HTTP/1.1
        nxt = c.read_response()
    assert head.status == 200
    assert int(head.header("content-length")) > 0
    assert nxt.status == 200 and nxt.json()["PATH_INFO"] == "/after"


@pytest.mark.parametrize("code", ["204", "304"])
def test_no_body_statuses(serve, code):
    srv = serve("misc:status", *GTHREAD, probe="/status/200")
    with connect(srv.addr) as c:
        c.sendall(b"GET /status/%s HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /status/200 HTTP/1.1\r\nHost: t\r\n\r\n" % code.encode())
        r = c.read_response()
        nxt = c.read_response()
    assert r.status == int(code)
    assert r.header("transfer-encoding") is None
    assert nxt.status == 200 and nxt.body == b"status 200"


def test_date_and_server_headers(serve):
    srv = serve("echo:app")
    r = request(srv.addr, b"GET / HTTP/1.0\r\n\r\n")
    assert r.header("date", "").endswith(" GMT")
    assert r.header("server")


def test_malformed_request_then_next_client_served(serve):
    srv = serve("echo:app", "-w", "1")
    r = request(srv.addr, b"THIS IS NOT HTTP\r\n\r\n")
    assert r.status == 400
    r = request(srv.addr, b"GET /still-here HTTP/1.0\r\n\r\n")
    assert r.status == 200 and r.json()["PATH_INFO"] == "/still-here"


def test_oversized_request_line(serve):
    srv = serve("echo:app", "-w", "1")
    r = request(srv.addr, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
    assert 400 <= r.status < 500
    assert request(srv.addr, b"GET / HTTP/1.0\r\n\r\n").status == 200


def test_too_many_headers(serve):
    srv = serve("echo:app", "-w", "1", "--limit-request-fields", "10")
    head = b"".join(b"X-H%d: v\r\n" % i for i in range(20))
    r = request(srv.addr, b"GET / HTTP/1.1\r\nHost: t\r\n" + head + b"\r\n")
    assert 400 <= r.status < 500

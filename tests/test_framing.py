"""Where one request ends and the next begins, over raw sockets against the real command:
nothing is read after a CONNECT or a final 1xx, Transfer-Encoding lists and chunk extensions
outside their grammar are refused whole, SCRIPT_NAME mounts on a path-segment boundary, and
permit_unconventional_http_version.

The app (tests/apps/framing.py) records every request it is called for, so each test can check
that a smuggled request never reached it."""

import json
import re
import socket
import time

import pytest

import harness

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n"


@pytest.fixture
def framing(serve, tmp_path):
    """Starts tests/apps/framing.py; returns (server, reader of the recorded request lines)."""
    record = tmp_path / "requests.log"
    record.write_text("")

    def start(*args, extra_env=None):
        env = {"FC_RECORD": str(record)}
        env.update(extra_env or {})
        srv = serve("framing:app", *args, extra_env=env)

        def seen():
            return [l for l in record.read_text().splitlines() if not l.startswith("GET / ")]
        return srv, seen
    return start


def exchange(addr, data, timeout=5.0):
    """Sends `data` at once, then reads until the server closes (or the deadline): everything
    the server answered, and whether it closed."""
    with harness.connect(addr) as c:
        c.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            c.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                piece = c.sock.recv(65536)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                return out, True
            if not piece:
                return out, True
            out += piece
        return out, False


def statuses(data):
    """Status codes of the responses in `data`, in order (the app's bodies are JSON, so a
    status line cannot appear inside one)."""
    return [int(code) for code in re.findall(rb"HTTP/1\.[0-9] ([0-9]{3})", data)]


# --- CONNECT and switching protocols: nothing after them is HTTP/1 -------------------------

CONNECTS = {
    "answered_200": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    "answered_407": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nX-Status: 407\r\n\r\n",
    "answered_500": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nX-Status: 500\r\n\r\n",
    "keep_alive_asked": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: keep-alive\r\n\r\n",
    "http10_keep_alive": b"CONNECT example.com:443 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "origin_form": b"CONNECT /x HTTP/1.1\r\nHost: h\r\n\r\n",
}


@pytest.mark.parametrize("worker", [["-k", "sync"], ["-k", "gthread", "--threads", "2"]], ids=["sync", "gthread"])
def test_connect_is_the_last_request_on_its_connection(framing, worker):
    """RFC 9110 9.3.6 / RFC 9112 6.3: after a CONNECT the bytes are tunnel data, whatever the
    answer; Gunicorn answers and closes. A request pipelined behind it must never be served."""
    srv, seen = framing(*worker)
    for name, connect in CONNECTS.items():
        data, closed = exchange(srv.addr, connect + SMUGGLED)
        want = int(connect.split(b"X-Status: ")[1][:3]) if b"X-Status" in connect else 200
        assert statuses(data) == [want], (name, data)
        assert closed, (name, data)
    # The CONNECTs reached the app; the smuggled GETs never did.
    lines = seen()
    assert len(lines) == len(CONNECTS) and all(l.startswith("CONNECT ") for l in lines), lines


def test_connect_with_bytes_arriving_later(framing):
    """The tunnel bytes need not be in the same packet: the connection is over either way."""
    srv, seen = framing("-k", "gthread", "--threads", "2")
    with harness.connect(srv.addr) as c:
        c.sendall(CONNECTS["answered_200"])
        r = c.read_response(method="CONNECT")
        assert r.status == 200 and r.header("connection", "").lower() == "close", r
        try:
            c.sendall(SMUGGLED)
        except OSError:
            pass  # already closed: fine
        assert c.read_head(timeout=3) is None
    assert [l.split(" ")[0] for l in seen()] == ["CONNECT"]


@pytest.mark.beyond_gunicorn
def test_connect_on_tornado_is_the_last_request(serve):
    """The same rule for the Tornado class (whose handler answers CONNECT with 405)."""
    pytest.importorskip("tornado")
    srv = serve("tornado_app:app", "-k", "tornado")
    data, closed = exchange(srv.addr, CONNECTS["answered_200"] + SMUGGLED)
    assert len(statuses(data)) == 1 and closed, data


@pytest.mark.beyond_gunicorn
@pytest.mark.parametrize("status", [b"101", b"100", b"103"])
def test_final_1xx_is_the_last_response_on_its_connection(framing, status):
    """After the app's own `101 Switching Protocols` the bytes belong to another protocol, and a
    final 100 or 103 would make the client take the next response for this request's. Gunicorn
    keeps the connection after a final 1xx and serves what follows."""
    srv, seen = framing("-k", "gthread", "--threads", "2")
    req = (b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
           b"X-Status: " + status + b"\r\n\r\n")
    data, closed = exchange(srv.addr, req + SMUGGLED)
    assert statuses(data) == [int(status)] and closed, data
    assert [l.split(" ")[1] for l in seen()] == ["/ws"]


def test_upgrade_refused_keeps_the_connection(framing):
    """An Upgrade the app does not take (a normal 200) leaves HTTP/1.1 in place: the next
    request is served."""
    srv, seen = framing("-k", "gthread", "--threads", "2")
    req = b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    data, _ = exchange(srv.addr, req + b"GET /next HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert statuses(data) == [200, 200], data
    assert [l.split(" ")[1] for l in seen()] == ["/ws", "/next"]


# --- Transfer-Encoding lists and chunk extensions -----------------------------------------

def te_request(*fields, body=b"0\r\n\r\n", then=SMUGGLED):
    head = b"POST /te HTTP/1.1\r\nHost: h\r\n" + b"".join(b"Transfer-Encoding:" + f + b"\r\n" for f in fields)
    return head + b"\r\n" + body + then


TE_REFUSED = {
    "leading_comma": [b" ,chunked"],
    "leading_comma_no_space": [b",chunked"],
    "trailing_comma": [b" chunked,"],
    "trailing_comma_space": [b" chunked, "],
    "empty_member_inside": [b" gzip,,chunked"],
    "whitespace_member": [b" gzip, \t ,chunked"],
    "only_commas": [b" , ,"],
    "empty_field_then_chunked": [b"", b" chunked"],
    "whitespace_field_then_chunked": [b" \t", b" chunked"],
    "chunked_then_empty_field": [b" chunked", b""],
    "comma_field_beside_chunked": [b" chunked", b" ,"],
    "identity_after_chunked": [b" chunked, identity"],
    "identity_alone": [b" identity"],
}


def test_transfer_encoding_with_empty_members_is_refused(framing):
    """Empty list members are read as `chunked` by some and as an unknown coding or as no
    Transfer-Encoding by others (a desync): refused whole. Gunicorn answers 501 (unknown
    coding "") where ferrocorn answers 400 (a malformed list)."""
    srv, seen = framing()
    allowed = (400, 501) if harness.is_gunicorn() else (400,)
    for name, fields in TE_REFUSED.items():
        data, closed = exchange(srv.addr, te_request(*fields))
        assert len(statuses(data)) == 1 and statuses(data)[0] in allowed and closed, (name, data)
    assert seen() == [], seen()


def test_transfer_encoding_lists_gunicorn_accepts(framing):
    """Whitespace around members, case and `identity` before `chunked` stay accepted, and the
    body ends where the request after it begins."""
    srv, seen = framing("-k", "gthread", "--threads", "2")
    accepted = ([b" chunked"], [b"chunked"], [b" \tCHUNKED \t"], [b" identity, chunked"], [b" identity", b" chunked"])
    for fields in accepted:
        with harness.connect(srv.addr) as c:
            c.sendall(te_request(*fields, body=b"3\r\nabc\r\n0\r\n\r\n", then=b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n"))
            first, second = c.read_response(method="POST"), c.read_response()
        assert first.status == 200 and json.loads(first.body)["body"] == "abc", (fields, first)
        assert second.status == 200 and json.loads(second.body)["PATH_INFO"] == "/next", (fields, second)
    assert seen() == ["POST /te b'abc'", "GET /next b''"] * len(accepted), seen()


CHUNK_EXT_REFUSED = [
    b";", b" ;", b";=x", b";a b", b";a==b", b';"a"', b";a=b;", b";a=", b";a ", b";a=b ",
    b';a="b', b';a="b"c', b';a="\\\x01"', b";a\x01", b";a\x7f", b";a,b", b";a=\xff",
]
CHUNK_EXT_ACCEPTED = [b";a", b";a=b", b" ;a", b"\t;a", b' ; a = "q\\"x"', b';a="";b=c', b";a;b=1;c"]


def test_chunk_extensions_outside_the_grammar_are_refused(framing):
    """RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS token/quoted-string ] ).
    Anything else is 400 (as in Gunicorn), on a data chunk and on the last chunk alike."""
    srv, seen = framing()
    for ext in CHUNK_EXT_REFUSED:
        for body in (b"3" + ext + b"\r\nabc\r\n0\r\n\r\n", b"3\r\nabc\r\n0" + ext + b"\r\n\r\n"):
            data, closed = exchange(srv.addr, te_request(b" chunked", body=body))
            assert statuses(data) == [400] and closed, (body, data)
    assert seen() == [], seen()


def test_chunk_extensions_in_the_grammar_are_accepted(framing):
    srv, seen = framing()
    for ext in CHUNK_EXT_ACCEPTED:
        body = b"3" + ext + b"\r\nabc\r\n0" + ext + b"\r\n\r\n"
        with harness.connect(srv.addr) as c:
            c.sendall(te_request(b" chunked", body=body, then=b""))
            r = c.read_response(method="POST")
        assert r.status == 200 and json.loads(r.body)["body"] == "abc", (ext, r)
    assert seen() == ["POST /te b'abc'"] * len(CHUNK_EXT_ACCEPTED), seen()


# --- SCRIPT_NAME ----------------------------------------------------------------------------

def env_of(srv, path, headers=b""):
    r = harness.request(srv.addr, b"GET " + path + b" HTTP/1.1\r\nHost: h\r\n" + headers + b"Connection: close\r\n\r\n")
    return r.status, (json.loads(r.body) if r.status == 200 else None)


def test_script_name_mounts_whole_segments(framing):
    """Inside the mount point SCRIPT_NAME + PATH_INFO is the path, PATH_INFO empty or from `/`
    (PEP 3333); the same as Gunicorn."""
    srv, _ = framing(extra_env={"SCRIPT_NAME": "/prefix"})
    for path, info in [(b"/prefix/x", "/x"), (b"/prefix", ""), (b"/prefix/", "/"), (b"/prefix/a/b?q=1", "/a/b")]:
        status, env = env_of(srv, path)
        assert status == 200 and (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/prefix", info), (path, env)


@pytest.mark.beyond_gunicorn
def test_script_name_prefix_of_a_segment_is_outside(framing):
    """`/prefixfoo/x` is not under `/prefix`: Gunicorn hands it over with PATH_INFO `foo/x`
    (not a PEP 3333 PATH_INFO); ferrocorn answers 404 as for any path outside SCRIPT_NAME."""
    srv, seen = framing(extra_env={"SCRIPT_NAME": "/prefix"})
    for path in (b"/prefixfoo/x", b"/prefixfoo", b"/prefix.json", b"/prefi", b"/other/x", b"/"):
        status, _ = env_of(srv, path)
        assert status == 404, path
    assert not [l for l in seen() if "prefix" in l or "other" in l], seen()


@pytest.mark.beyond_gunicorn
def test_script_name_with_trailing_slash(framing):
    """SCRIPT_NAME=/prefix/ mounts like /prefix (Gunicorn gives PATH_INFO `x` for /prefix/x)."""
    srv, _ = framing(extra_env={"SCRIPT_NAME": "/prefix/"})
    status, env = env_of(srv, b"/prefix/x")
    assert status == 200 and (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/prefix", "/x"), env
    assert env_of(srv, b"/prefixx")[0] == 404


@pytest.mark.beyond_gunicorn
def test_forwarded_script_name_mounts_whole_segments(framing):
    """The same rule for the SCRIPT_NAME header of a trusted forwarder."""
    srv, _ = framing("--forwarder-headers", "SCRIPT_NAME", "--forwarded-allow-ips", "127.0.0.1")
    status, env = env_of(srv, b"/app/rest", b"SCRIPT_NAME: /app\r\n")
    assert status == 200 and (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/app", "/rest"), env
    assert env_of(srv, b"/apprest", b"SCRIPT_NAME: /app\r\n")[0] == 404


# --- permit_unconventional_http_version ----------------------------------------------------

UNCONVENTIONAL = [b"HTTP/0.9", b"HTTP/2.0", b"HTTP/3.1", b"HTTP/9.9"]


def test_unconventional_http_versions_are_refused_by_default(framing):
    srv, seen = framing()
    allowed = (400, 505) if harness.is_gunicorn() else (505,)
    for v in UNCONVENTIONAL:
        data, closed = exchange(srv.addr, b"GET /v HTTP/1.1\r\n".replace(b"HTTP/1.1", v) + b"Host: h\r\n\r\n")
        assert len(statuses(data)) <= 1 and closed, (v, data)
        first = data.split(b"\r\n", 1)[0].split(b" ")
        assert int(first[1]) in allowed, (v, data)
    assert seen() == []


@pytest.mark.beyond_gunicorn
def test_permit_unconventional_http_version(framing):
    """With the setting, HTTP/0.x is served as HTTP/1.0 (closed after the response) and
    HTTP/2.0 and later as HTTP/1.1 (kept alive). Gunicorn echoes the client's version in the
    status line and SERVER_PROTOCOL (`HTTP/2.0 200 OK` on an HTTP/1 connection); ferrocorn
    answers in the HTTP/1 version it speaks (RFC 9110 section 2.5)."""
    srv, seen = framing("-k", "gthread", "--threads", "2", "--permit-unconventional-http-version")
    with harness.connect(srv.addr) as c:
        c.sendall(b"GET /two HTTP/2.0\r\nHost: h\r\n\r\nGET /after HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        first, second = c.read_response(), c.read_response()
    assert first.version == "HTTP/1.1" and first.status == 200, first
    assert json.loads(first.body)["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert second.status == 200, second
    data, closed = exchange(srv.addr, b"GET /zero HTTP/0.9\r\nHost: h\r\n\r\n" + SMUGGLED)
    assert statuses(data) == [200] and data.startswith(b"HTTP/1.0 200") and closed, data
    # Other spellings stay refused with the setting on.
    for bad in (b"HTTP/1.10", b"HTTP/2", b"http/1.1"):
        data, closed = exchange(srv.addr, b"GET /bad " + bad + b"\r\nHost: h\r\n\r\n")
        assert statuses(data) == [400] and closed, (bad, data)
    assert [l.split(" ")[1] for l in seen()] == ["/two", "/after", "/zero"]

"""PEP 3333 as Gunicorn implements it: the environ, wsgi.input, write(), exc_info, iterables and
close(), errors in the app, wsgi.file_wrapper."""
import io
import os
import sys

import pytest

from harness import APPS, connect, get, request, wait_for

sys.path.insert(0, APPS)
import misc  # noqa: E402  (the same reading code, run over io.BytesIO as the oracle)


def environ_for(srv, raw):
    r = request(srv.addr, raw)
    assert r.status == 200, r
    return r.json()


def test_environ_keys(serve):
    srv = serve("echo:app", "-w", "2")
    port = srv.addr[1]
    env = environ_for(srv, (
        b"POST /caf%C3%A9/a%2Fb?x=1&y=%20#frag HTTP/1.1\r\n"
        b"Host: example.test:8080\r\n"
        b"Content-Type: text/plain\r\n"
        b"Content-Length: 3\r\n"
        b"X-Dup: one\r\n"
        b"X-Dup: two\r\n"
        b"X-Under_Score: dropped\r\n"
        b"X-Custom: v\r\n"
        b"Connection: close\r\n\r\nabc"))
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == ""
    # percent-decoded raw bytes, as latin-1 code points
    assert env["PATH_INFO"] == b"/caf\xc3\xa9/a/b".decode("latin-1")
    assert env["QUERY_STRING"] == "x=1&y=%20"
    assert env["RAW_URI"] == "/caf%C3%A9/a%2Fb?x=1&y=%20#frag"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    # Gunicorn takes these from the listening socket, not from the Host header
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(port)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert int(env["REMOTE_PORT"]) > 0
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "3"
    assert "HTTP_CONTENT_TYPE" not in env and "HTTP_CONTENT_LENGTH" not in env
    assert env["HTTP_HOST"] == "example.test:8080"
    assert env["HTTP_X_DUP"] == "one,two"
    assert env["HTTP_X_CUSTOM"] == "v"
    assert not any("UNDER" in k for k in env), "header with '_' must be dropped"
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.input"] != "" and env["__input_read"]
    assert env["__errors_write"]
    assert env["wsgi.multithread"] is False
    assert env["wsgi.multiprocess"] is True
    assert env["wsgi.run_once"] is False
    assert env["__has_file_wrapper"]
    assert env["wsgi.input_terminated"] is True
    assert env["__body_len"] == 3
    assert env["SERVER_SOFTWARE"].startswith(("ferrocorn/", "gunicorn/"))


def test_environ_without_host(serve):
    srv = serve("echo:app")
    env = environ_for(srv, b"GET / HTTP/1.0\r\n\r\n")
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(srv.addr[1])
    assert "CONTENT_LENGTH" not in env or env["CONTENT_LENGTH"] in ("", "0")


def test_multithread_flag_on_gthread(serve):
    srv = serve("echo:app", "-w", "1", "-k", "gthread", "--threads", "2")
    env = environ_for(srv, b"GET / HTTP/1.0\r\n\r\n")
    assert env["wsgi.multithread"] is True
    assert env["wsgi.multiprocess"] is False


BODY = b"line one\nline two\n\na much longer third line\nno newline at the end"


def oracle(mode, body):
    """What misc.inputs answers when wsgi.input is a plain io.BytesIO."""
    environ = {"PATH_INFO": "/" + mode, "wsgi.input": io.BytesIO(body)}
    out = misc.inputs(environ, lambda s, h: None)
    return b"".join(out)


@pytest.mark.parametrize("mode", ["read-n", "readline", "readline-n", "readlines", "iter",
                                  "mixed", "read-none", "read-neg"])
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_wsgi_input_reading(serve, mode, framing):
    srv = serve("misc:inputs", probe="/read-n")
    if framing == "length":
        raw = b"POST /%s HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" \
              % (mode.encode(), len(BODY)) + BODY
    else:
        raw = (b"POST /%s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" % mode.encode())
        for i in range(0, len(BODY), 10):
            piece = BODY[i:i + 10]
            raw += b"%x\r\n%s\r\n" % (len(piece), piece)
        raw += b"0\r\n\r\n"
    r = request(srv.addr, raw)
    assert r.status == 200
    assert r.body == oracle(mode, BODY)


def test_write_callable(serve):
    srv = serve("misc:writer")
    r = request(srv.addr, b"GET / HTTP/1.0\r\n\r\n")
    assert r.status == 200 and r.body == b"one,two,three"


def test_exc_info_before_headers_sent_replaces_them(serve):
    srv = serve("misc:excinfo", probe="/twice")
    r = request(srv.addr, b"GET /before HTTP/1.0\r\n\r\n")
    assert r.status == 503
    assert r.header("x-second") == "1"
    assert r.body == b"replaced"


@pytest.mark.beyond_gunicorn
def test_exc_info_before_headers_sent_drops_first_headers(serve):
    """PEP 3333: the second start_response *replaces* the headers; Gunicorn 27 appends them."""
    srv = serve("misc:excinfo", probe="/twice")
    r = request(srv.addr, b"GET /before HTTP/1.0\r\n\r\n")
    assert r.status == 503
    assert r.header("x-first") is None, r.headers
    assert r.header_all("content-type") == ["text/plain"]


def test_exc_info_after_headers_sent_reraises(serve):
    srv = serve("misc:excinfo", probe="/twice")
    r = request(srv.addr, b"GET /after HTTP/1.0\r\n\r\n")
    assert r.status == 200
    assert r.body == b"first-part;reraised"


def test_start_response_twice_without_exc_info_refused(serve):
    srv = serve("misc:excinfo", probe="/twice")
    r = request(srv.addr, b"GET /twice HTTP/1.0\r\n\r\n")
    assert r.body == b"second-call-refused"


@pytest.mark.parametrize("shape,version", [("list", "1.1"), ("nolength", "1.1"),
                                           ("nolength", "1.0"), ("empty", "1.1"),
                                           ("fail", "1.1"), ("head", "1.1")])
def test_close_always_called(serve, tmp_path, shape, version):
    markers = tmp_path / "markers"
    markers.mkdir()
    srv = serve("misc:closing", "-w", "1", extra_env={"FC_MARKER_DIR": str(markers)},
                probe="/probe?list")
    method = "HEAD" if shape == "head" else "GET"
    name = "%s-%s" % (shape, version)
    with connect(srv.addr) as c:
        c.sendall(("%s /%s?%s HTTP/%s\r\nHost: t\r\nConnection: close\r\n\r\n"
                   % (method, name, shape, version)).encode())
        try:
            r = c.read_response(method=method)
        except Exception:  # "fail" may cut the response short; close() matters here
            r = None
    if shape in ("list", "head"):
        assert r.status == 200 and r.body == (b"" if shape == "head" else b"abcdef")
    if shape == "nolength":
        assert r.body == b"abcdef"
    wait_for(lambda: (markers / name).exists(), 10, what="close() marker")
    assert (markers / name).read_text() == "closed\n"  # exactly once


def test_app_exception_is_500_logged_and_server_keeps_serving(serve):
    srv = serve("misc:raising", "-w", "1")
    r = request(srv.addr, b"GET /boom HTTP/1.0\r\n\r\n")
    assert r.status == 500
    assert b"boom-from-test-app" not in r.body  # no traceback leaks to the client
    wait_for(lambda: "boom-from-test-app" in srv.stderr(), 10, what="traceback in the error log")
    assert "Traceback" in srv.stderr()
    assert request(srv.addr, b"GET /ok HTTP/1.0\r\n\r\n").body == b"fine"


def test_file_wrapper(serve, tmp_path):
    data = os.urandom(300_000) + b"tail"
    f = tmp_path / "blob.bin"
    f.write_bytes(data)
    srv = serve("misc:filewrap", extra_env={"FC_FILE": str(f)})
    r = request(srv.addr, b"GET / HTTP/1.0\r\n\r\n")
    assert r.status == 200
    assert r.header("content-length") == str(len(data))
    assert r.body == data


def test_environ_vars_app_sees_env_option(serve):
    srv = serve("misc:envvars", "-e", "FC_FROM_E=yes")
    assert b"FC_FROM_E=yes" in get(srv.addr).body

"""`protocol = "uwsgi"`: raw uwsgi packets over real sockets, and behind a real nginx
(`uwsgi_pass` over TCP and over a unix socket). Responses come back as HTTP/1 without chunking.

Linux routes all of 127.0.0.0/8 to loopback, so a client bound to 127.0.0.5 is a peer outside
the default `uwsgi_allow_ips` (127.0.0.1, ::1)."""

import os
import shutil
import signal
import socket
import struct
import subprocess

import pytest

import harness

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


def packet(vars_, modifier1=0, modifier2=0):
    block = b""
    for k, v in vars_:
        k = k.encode("latin-1") if isinstance(k, str) else k
        v = v.encode("latin-1") if isinstance(v, str) else v
        block += struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
    return bytes([modifier1]) + struct.pack("<H", len(block)) + bytes([modifier2]) + block


def uwsgi(addr, vars_, body=b"", source=None, method="GET"):
    """Sends one packet (and its body) on a fresh connection; returns the HTTP response."""
    s = socket.socket(socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET)
    s.settimeout(harness.IO_TIMEOUT)
    if source:
        s.bind((source, 0))
    s.connect(addr)
    with harness.Conn(s, harness.IO_TIMEOUT) as c:
        c.sendall(packet(vars_) + body)
        r = c.read_response(method=method)
    assert r is not None, "connection closed without a response"
    return r


NGINX_VARS = [
    ("QUERY_STRING", "x=1&y=%20"),
    ("REQUEST_METHOD", "POST"),
    ("CONTENT_TYPE", "text/plain"),
    ("CONTENT_LENGTH", "5"),
    ("REQUEST_URI", "/a%20b/c?x=1&y=%20"),
    ("PATH_INFO", "/a b/c"),
    ("DOCUMENT_ROOT", "/usr/share/nginx/html"),
    ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("REQUEST_SCHEME", "https"),
    ("HTTPS", "on"),
    ("REMOTE_ADDR", "203.0.113.9"),
    ("REMOTE_PORT", "40123"),
    ("SERVER_PORT", "443"),
    ("SERVER_NAME", "example.test"),
    ("HTTP_HOST", "example.test"),
    ("HTTP_X_CUSTOM_THING", "yes"),
    ("HTTP_USER_AGENT", "raw/1"),
]


def test_uwsgi_packet_maps_vars_into_environ(serve):
    srv = serve("echo:app", "--protocol", "uwsgi")
    r = uwsgi(srv.addr, NGINX_VARS, body=b"hello")
    assert r.status == 200, r.body[:300]
    assert r.header("transfer-encoding") is None
    env = r.json()
    assert env["REQUEST_METHOD"] == "POST"
    assert env["PATH_INFO"] == "/a b/c"
    assert env["QUERY_STRING"] == "x=1&y=%20"
    assert env["HTTP_HOST"] == "example.test"
    assert env["HTTP_X_CUSTOM_THING"] == "yes"
    assert env["HTTP_USER_AGENT"] == "raw/1"
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "5"
    assert env["__body_len"] == 5
    assert env["wsgi.url_scheme"] == "https"
    assert srv.alive()


@pytest.mark.beyond_gunicorn
def test_uwsgi_remote_addr_and_raw_uri_from_trusted_front_end(serve):
    # Gunicorn keeps the front end's own address as REMOTE_ADDR; ferrocorn takes the client's
    # from the vars, the peer having passed uwsgi_allow_ips (docs/differences.md).
    srv = serve("echo:app", "--protocol", "uwsgi")
    env = uwsgi(srv.addr, NGINX_VARS, body=b"hello").json()
    assert env["REMOTE_ADDR"] == "203.0.113.9"
    assert env["REMOTE_PORT"] == "40123"
    assert env["RAW_URI"] == "/a%20b/c?x=1&y=%20"
    # Without REMOTE_ADDR in the vars, the socket's peer is used.
    env = uwsgi(srv.addr, [("PATH_INFO", "/")]).json()
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["wsgi.url_scheme"] == "http"
    env = uwsgi(srv.addr, [("PATH_INFO", "/"), ("UWSGI_SCHEME", "https")]).json()
    assert env["wsgi.url_scheme"] == "https"


def test_uwsgi_streamed_response_is_not_chunked(serve):
    # nginx's uwsgi module passes the body bytes through as they are: chunk markers would end
    # up in the client's body. Without a length the body ends when the connection closes.
    srv = serve("misc:stream", "--protocol", "uwsgi")
    r = uwsgi(srv.addr, [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/")])
    assert r.status == 200
    assert r.header("transfer-encoding") is None
    assert r.body == b"part0\npart1\npart2\npart3\npart4\nend\n"


@pytest.mark.beyond_gunicorn
def test_uwsgi_keep_alive_serves_several_packets(serve):
    srv = serve("echo:app", "--protocol", "uwsgi")
    with harness.connect(srv.addr) as c:
        for i in range(3):
            c.sendall(packet([("PATH_INFO", "/n%d" % i), ("REMOTE_ADDR", "10.0.0.%d" % (i + 1))]))
            env = c.read_response().json()
            assert env["PATH_INFO"] == "/n%d" % i
            # Each packet's own client, not the first one's.
            assert env["REMOTE_ADDR"] == "10.0.0.%d" % (i + 1)
        c.sendall(packet([("PATH_INFO", "/last"), ("HTTP_CONNECTION", "close")]))
        r = c.read_response()
        assert r.json()["PATH_INFO"] == "/last"
        assert c.closed_by_peer()


@pytest.mark.beyond_gunicorn
@pytest.mark.parametrize("data,status", [
    # modifier1 other than 0: Gunicorn's UnsupportedModifier (501); HTTP sent to a uwsgi port
    # is the same case ('G' is modifier 71).
    (packet([("PATH_INFO", "/")], modifier1=5), 501),
    (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 501),
    # Vars block shorter than its sizes say.
    (b"\x00\x06\x00\x00\x01\x00k\x09\x00v", 400),
    (packet([("PATH_INFO", "/a\r\nX-Injected: 1")]), 400),
    (packet([("HTTP_X_A", "v\r\nX-Injected: 1")]), 400),
    (packet([("HTTP_X:A", "v")]), 400),
    (packet([("REQUEST_METHOD", "G T")]), 400),
    (packet([("CONTENT_LENGTH", "-1")]), 400),
    (packet([("CONTENT_LENGTH", "4, 4")]), 400),
    (packet([("CONTENT_LENGTH", "1"), ("CONTENT_LENGTH", "1")]), 400),
    (packet([("REQUEST_METHOD", "GET"), ("REQUEST_METHOD", "DELETE")]), 400),
    (packet([("HTTP_HOST", "a"), ("HTTP_HOST", "b")]), 400),
])
def test_uwsgi_malformed_packets_refused_worker_keeps_serving(serve, data, status):
    # Gunicorn's sync worker answers these with 500 (its error handler does not know the uwsgi
    # exceptions); ferrocorn sends the status each error declares.
    srv = serve("echo:app", "--protocol", "uwsgi", "-w", "1")
    r = harness.request(srv.addr, data, method="GET")
    assert r.status == status
    assert uwsgi(srv.addr, [("PATH_INFO", "/ok")]).json()["PATH_INFO"] == "/ok"
    assert srv.alive()


@pytest.mark.beyond_gunicorn
def test_uwsgi_limits_apply_to_vars(serve):
    srv = serve("echo:app", "--protocol", "uwsgi", "--limit-request-fields", "3",
                "--limit-request-field_size", "100", "--limit-request-line", "60")
    ok = [("PATH_INFO", "/p"), ("HTTP_A", "1"), ("HTTP_B", "2"), ("SERVER_NAME", "s"),
          ("DOCUMENT_ROOT", "/srv"), ("REQUEST_SCHEME", "http")]
    assert uwsgi(srv.addr, ok).status == 200
    assert uwsgi(srv.addr, ok + [("HTTP_C", "3"), ("HTTP_D", "4")]).status == 431
    assert uwsgi(srv.addr, [("HTTP_BIG", "x" * 200)]).status == 431
    assert uwsgi(srv.addr, [("PATH_INFO", "/" + "p" * 100)]).status == 414


@pytest.mark.beyond_gunicorn
def test_uwsgi_untrusted_peer_gets_403(serve):
    port = harness.free_port()
    srv = serve("echo:app", "--protocol", "uwsgi", bind=["127.0.0.1:%d" % port],
                addr=("127.0.0.1", port))
    # 127.0.0.5 is not in the default 127.0.0.1,::1: refused before anything is read.
    r = uwsgi(srv.addr, [("PATH_INFO", "/")], source="127.0.0.5")
    assert r.status == 403
    assert uwsgi(srv.addr, [("PATH_INFO", "/")]).status == 200


@pytest.mark.beyond_gunicorn
def test_uwsgi_allow_from_list_and_star(serve):
    port = harness.free_port()
    srv = serve("echo:app", "--protocol", "uwsgi", "--uwsgi-allow-from", "127.0.0.4/30",
                bind=["127.0.0.1:%d" % port], addr=("127.0.0.1", port))
    assert uwsgi(srv.addr, [("PATH_INFO", "/")], source="127.0.0.5").status == 200
    # 127.0.0.1 itself is not in the list any more.
    assert uwsgi(srv.addr, [("PATH_INFO", "/")]).status == 403
    port2 = harness.free_port()
    srv2 = serve("echo:app", "--protocol", "uwsgi", "--uwsgi-allow-from", "*",
                 bind=["127.0.0.1:%d" % port2], addr=("127.0.0.1", port2))
    assert uwsgi(srv2.addr, [("PATH_INFO", "/")], source="127.0.0.9").status == 200


def test_uwsgi_bad_allow_list_names_the_setting(tmp_path):
    r = harness.run_cmd(["--protocol", "uwsgi", "--uwsgi-allow-from", "not-an-ip", "--check-config",
                         "echo:app"], cwd=harness.APPS)
    assert r.returncode == 1
    assert "not-an-ip" in r.stderr
    if not harness.is_gunicorn():
        assert "uwsgi_allow_ips" in r.stderr


def test_uwsgi_over_unix_socket_any_peer_allowed(serve, tmp_path):
    sock = str(tmp_path / "u.sock")
    srv = serve("echo:app", "--protocol", "uwsgi", "--uwsgi-allow-from", "10.9.9.9",
                bind=["unix:" + sock], addr=sock)
    r = uwsgi(sock, [("PATH_INFO", "/via-unix"), ("HTTP_HOST", "h.test")])
    assert r.status == 200
    assert r.json()["PATH_INFO"] == "/via-unix"
    assert srv.alive()


# --- behind nginx ---------------------------------------------------------------------------

NGINX_CONF = """
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{tcp_port};
        location / {{
            include {params};
            uwsgi_pass 127.0.0.1:{app_port};
        }}
    }}
    server {{
        listen 127.0.0.1:{unix_port};
        location / {{
            include {params};
            uwsgi_param HTTPS on;
            uwsgi_pass unix:{sock};
        }}
    }}
}}
"""


@pytest.fixture
def nginx_uwsgi(tmp_path):
    if NGINX is None:
        pytest.skip("nginx not installed (.ci/run installs nginx-light)")
    procs = []

    def start(app_port, sock):
        ports = {"tcp_port": harness.free_port(), "unix_port": harness.free_port()}
        params = "/etc/nginx/uwsgi_params"
        if not os.path.exists(params):
            pytest.skip("nginx's uwsgi_params not installed")
        path = tmp_path / "nginx.conf"
        path.write_text(NGINX_CONF.format(tmp=tmp_path, app_port=app_port, sock=sock, params=params,
                                          **ports))
        log = open(tmp_path / "nginx.stderr", "wb")
        proc = subprocess.Popen([NGINX, "-p", str(tmp_path), "-e", str(tmp_path / "nginx-error.log"),
                                 "-c", str(path)], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        procs.append(proc)

        def up():
            if proc.poll() is not None:
                raise AssertionError("nginx exited: %s" % (tmp_path / "nginx-error.log").read_text())
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", ports["tcp_port"])) == 0
        harness.wait_for(up, harness.BOOT_TIMEOUT, what="nginx")
        return ports

    yield start
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGQUIT)
            try:
                p.wait(timeout=harness.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=harness.STOP_TIMEOUT)


def _http(port, data, source=None):
    s = socket.socket()
    s.settimeout(harness.IO_TIMEOUT)
    if source:
        s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    with harness.Conn(s, harness.IO_TIMEOUT) as c:
        c.sendall(data)
        return c.read_response()


def test_behind_nginx_uwsgi_pass_tcp_and_unix(serve, nginx_uwsgi, tmp_path):
    sock = str(tmp_path / "app.sock")
    app_port = harness.free_port()
    srv = serve("echo:app", "--protocol", "uwsgi", "-w", "1",
                bind=["127.0.0.1:%d" % app_port, "unix:" + sock], addr=("127.0.0.1", app_port))
    ports = nginx_uwsgi(app_port, sock)

    # TCP: a POST with a body and a query, a custom header, keep-alive on the client side.
    r = _http(ports["tcp_port"], b"POST /a%20b/c?x=1 HTTP/1.1\r\nHost: example.test\r\n"
              b"X-Custom-Thing: yes\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
              source="127.0.0.7")
    assert r.status == 200, r.body[:300]
    env = r.json()
    assert env["REQUEST_METHOD"] == "POST"
    assert env["PATH_INFO"] == "/a b/c" and env["QUERY_STRING"] == "x=1"
    assert env["HTTP_X_CUSTOM_THING"] == "yes" and env["HTTP_HOST"] == "example.test"
    assert env["CONTENT_TYPE"] == "text/plain" and env["__body_len"] == 5
    assert env["wsgi.url_scheme"] == "http"
    if not harness.is_gunicorn():
        # Beyond Gunicorn (which gives nginx's own address and the decoded path): the client's
        # address from REMOTE_ADDR, and RAW_URI as the client sent it (REQUEST_URI).
        assert env["REMOTE_ADDR"] == "127.0.0.7"
        assert env["RAW_URI"] == "/a%20b/c?x=1"

    # A chunked upload: nginx buffers it and sends its length; the app gets the plain body.
    r = _http(ports["tcp_port"], b"POST /up HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
    assert r.status == 200, r.body[:300]
    env = r.json()
    assert env["__body_len"] == 7 and env["CONTENT_LENGTH"] == "7"
    if not harness.is_gunicorn():
        # Gunicorn passes nginx's HTTP_TRANSFER_ENCODING on though the body is no longer chunked.
        assert "HTTP_TRANSFER_ENCODING" not in env

    # A GET without a body: nginx sends CONTENT_LENGTH and CONTENT_TYPE empty.
    r = _http(ports["tcp_port"], b"GET /plain HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
    env = r.json()
    assert env["PATH_INFO"] == "/plain" and env["__body_len"] == 0
    assert "CONTENT_LENGTH" not in env or env["CONTENT_LENGTH"] in ("", "0")

    # Unix socket, with HTTPS set by the nginx config (as for a TLS listener).
    r = _http(ports["unix_port"], b"GET /u?k=v HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
    assert r.status == 200
    env = r.json()
    assert env["PATH_INFO"] == "/u" and env["QUERY_STRING"] == "k=v"
    assert env["wsgi.url_scheme"] == "https"
    assert srv.alive()


def test_behind_nginx_uwsgi_streamed_body_arrives_clean(serve, nginx_uwsgi, tmp_path):
    sock = str(tmp_path / "app.sock")
    app_port = harness.free_port()
    serve("misc:stream", "--protocol", "uwsgi", "-w", "1",
          bind=["127.0.0.1:%d" % app_port, "unix:" + sock], addr=("127.0.0.1", app_port))
    ports = nginx_uwsgi(app_port, sock)
    for port in (ports["tcp_port"], ports["unix_port"]):
        r = _http(port, b"GET / HTTP/1.1\r\nHost: example.test\r\nConnection: close\r\n\r\n")
        assert r.status == 200
        # nginx re-chunks for its client; what reaches the client is exactly the app's bytes.
        assert r.body == b"part0\npart1\npart2\npart3\npart4\nend\n"



@pytest.mark.parametrize("worker_class", ["sync", "gthread", "gevent", "eventlet", "tornado"])
def test_uwsgi_every_worker_class(serve, worker_class):
    lib = {"gevent": "gevent", "eventlet": "eventlet", "tornado": "tornado"}.get(worker_class)
    if lib:
        pytest.importorskip(lib)
    if worker_class == "eventlet" and harness.is_gunicorn():
        pytest.skip("Gunicorn 27 no longer ships the eventlet worker")
    if worker_class == "tornado" and harness.is_gunicorn():
        pytest.skip("Gunicorn's tornado worker serves tornado's own HTTP/1 and ignores protocol")
    srv = serve("echo:app", "--protocol", "uwsgi", "-k", worker_class, "--threads", "2")
    r = uwsgi(srv.addr, [("REQUEST_METHOD", "POST"), ("PATH_INFO", "/k"), ("CONTENT_LENGTH", "3"),
                         ("HTTP_HOST", "h")], body=b"abc")
    assert r.status == 200, r.body[:300]
    env = r.json()
    assert env["PATH_INFO"] == "/k" and env["__body_len"] == 3

"""Behind a real nginx (Debian's), started by the test on free loopback ports with a generated
config: scheme, SCRIPT_NAME and REMOTE_ADDR come from the proxy only when it is trusted.

Linux routes all of 127.0.0.0/8 to loopback, so nginx connects to ferrocorn from 127.0.0.2
(`proxy_bind`) while direct clients come from 127.0.0.1: one server sees a trusted and an
untrusted peer, and only the trusted one may set forwarding headers."""

import json
import os
import shutil
import signal
import socket
import subprocess

import pytest

import harness

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
PROXY_IP = "127.0.0.2"

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx not installed (.ci/run installs nginx-light)")

HTTP_CONF = """
{load_stream}
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
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-Proto https;
    proxy_set_header X-Forwarded-For $remote_addr;
    proxy_set_header SCRIPT_NAME /app;
    # over TCP, from the address ferrocorn is told to trust
    server {{
        listen 127.0.0.1:{tcp_port};
        location /app/ {{
            proxy_bind {proxy_ip};
            proxy_pass http://127.0.0.1:{app_port};
        }}
    }}
    # over TCP, from an address ferrocorn does not trust
    server {{
        listen 127.0.0.1:{untrusted_port};
        location /app/ {{
            proxy_bind 127.0.0.3;
            proxy_pass http://127.0.0.1:{app_port};
        }}
    }}
    # over a unix socket: local peers are trusted, as in Gunicorn
    server {{
        listen 127.0.0.1:{unix_port};
        location /app/ {{
            proxy_pass http://unix:{sock}:;
        }}
    }}
}}
{stream}
"""

STREAM_CONF = """
stream {{
    server {{
        listen 127.0.0.1:{pp_port};
        proxy_bind {proxy_ip};
        proxy_protocol on;
        proxy_pass 127.0.0.1:{pp_app_port};
    }}
}}
"""


def wait_port(port, proc, what):
    def up():
        if proc.poll() is not None:
            raise AssertionError("%s exited with %s" % (what, proc.returncode))
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    harness.wait_for(up, harness.BOOT_TIMEOUT, what=what)


@pytest.fixture
def nginx(tmp_path):
    """Starts nginx with the generated config; yields its ports; stops it at teardown."""
    procs = []

    def start(app_port, sock, pp_app_port=None):
        ports = {k: harness.free_port() for k in ("tcp_port", "untrusted_port", "unix_port", "pp_port")}
        stream = pp_app_port is not None and os.path.exists(STREAM_MODULE)
        conf = HTTP_CONF.format(
            tmp=tmp_path, app_port=app_port, sock=sock, proxy_ip=PROXY_IP,
            load_stream="load_module %s;" % STREAM_MODULE if stream else "",
            stream=STREAM_CONF.format(pp_port=ports["pp_port"], proxy_ip=PROXY_IP,
                                      pp_app_port=pp_app_port) if stream else "",
            **ports)
        path = tmp_path / "nginx.conf"
        path.write_text(conf)
        log = open(tmp_path / "nginx.stderr", "wb")
        proc = subprocess.Popen([NGINX, "-p", str(tmp_path), "-e", str(tmp_path / "nginx-error.log"),
                                 "-c", str(path)], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        procs.append(proc)
        wait_port(ports["tcp_port"], proc, "nginx")
        ports["stream"] = stream
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


def env_of(port, path="/app/rest?q=1", headers=(), source=None):
    """GET through nginx (or directly) and return the app's environ."""
    lines = ["GET %s HTTP/1.1" % path, "Host: example.test", "Connection: close"]
    lines += ["%s: %s" % h for h in headers]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode()
    s = socket.socket()
    s.settimeout(harness.IO_TIMEOUT)
    if source:
        s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    with harness.Conn(s, harness.IO_TIMEOUT) as c:
        c.sendall(data)
        r = c.read_response()
    assert r.status == 200, (r.status, r.body[:300])
    return r.json()


def test_behind_nginx_trust_decides_scheme_and_script_name(serve, nginx, tmp_path):
    sock = str(tmp_path / "app.sock")
    app_port = harness.free_port()
    srv = serve("echo:app", "--forwarded-allow-ips", PROXY_IP, "-w", "1",
                bind=["127.0.0.1:%d" % app_port, "unix:" + sock], addr=("127.0.0.1", app_port))
    ports = nginx(app_port, sock)

    # Trusted proxy over TCP: https and the mount point from its headers, the client's real
    # connection (nginx's) as REMOTE_ADDR.
    env = env_of(ports["tcp_port"])
    assert env["wsgi.url_scheme"] == "https"
    assert env["SCRIPT_NAME"] == "/app" and env["PATH_INFO"] == "/rest"
    assert env["REMOTE_ADDR"] == PROXY_IP
    assert env["HTTP_X_FORWARDED_FOR"] == "127.0.0.1"

    # Same nginx, but connecting from an address not in forwarded_allow_ips: nothing honoured,
    # and the underscore header is dropped rather than reaching the app.
    env = env_of(ports["untrusted_port"])
    assert env["wsgi.url_scheme"] == "http"
    assert env["SCRIPT_NAME"] == "" and env["PATH_INFO"] == "/app/rest"
    assert "HTTP_SCRIPT_NAME" not in env
    assert env["REMOTE_ADDR"] == "127.0.0.3"

    # Over a unix socket the peer is trusted, as Gunicorn does.
    env = env_of(ports["unix_port"])
    assert env["wsgi.url_scheme"] == "https"
    assert env["SCRIPT_NAME"] == "/app" and env["PATH_INFO"] == "/rest"
    assert env["REMOTE_ADDR"] == ""

    # A client talking to ferrocorn directly cannot pretend to be the proxy.
    env = env_of(app_port, headers=[("X-Forwarded-Proto", "https"), ("SCRIPT_NAME", "/app"),
                                    ("X-Forwarded-Ssl", "on")])
    assert env["wsgi.url_scheme"] == "http"
    assert env["SCRIPT_NAME"] == "" and env["PATH_INFO"] == "/app/rest"
    assert "HTTP_SCRIPT_NAME" not in env
    assert srv.alive()


def test_behind_nginx_forwarded_allow_cidr_and_star(serve, nginx, tmp_path):
    sock = str(tmp_path / "app.sock")
    app_port = harness.free_port()
    serve("echo:app", "--forwarded-allow-ips", "127.0.0.0/30", bind=["127.0.0.1:%d" % app_port,
          "unix:" + sock], addr=("127.0.0.1", app_port))
    ports = nginx(app_port, sock)
    # 127.0.0.2 is inside 127.0.0.0/30, 127.0.0.3 too; a direct client at 127.0.0.4 is not.
    assert env_of(ports["tcp_port"])["wsgi.url_scheme"] == "https"
    assert env_of(ports["untrusted_port"])["wsgi.url_scheme"] == "https"
    env = env_of(app_port, headers=[("X-Forwarded-Proto", "https")], source="127.0.0.4")
    assert env["wsgi.url_scheme"] == "http"


def test_behind_nginx_proxy_protocol_sets_remote_addr(serve, nginx, tmp_path):
    if not os.path.exists(STREAM_MODULE):
        pytest.skip("nginx stream module not installed (libnginx-mod-stream)")
    sock = str(tmp_path / "app.sock")
    app_port, pp_app_port = harness.free_port(), harness.free_port()
    serve("echo:app", "--proxy-protocol", "v1", "--proxy-allow-from", PROXY_IP,
          bind=["127.0.0.1:%d" % app_port, "127.0.0.1:%d" % pp_app_port, "unix:" + sock],
          addr=("127.0.0.1", app_port))
    ports = nginx(app_port, sock, pp_app_port=pp_app_port)
    # The client connects to nginx from 127.0.0.9; nginx tells ferrocorn so in a PROXY line.
    env = env_of(ports["pp_port"], path="/x", source="127.0.0.9")
    assert env["REMOTE_ADDR"] == "127.0.0.9"
    assert env["PROXY_ADDR"] == "127.0.0.1"
    # A direct client may not send its own PROXY line: 403, and nothing reaches the app.
    r = harness.request(("127.0.0.1", pp_app_port),
                        b"PROXY TCP4 6.6.6.6 127.0.0.1 1234 80\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n",
                        method="GET")
    assert r.status == 403
    # ... while plain requests from it are still served, with its own address.
    assert env_of(pp_app_port, path="/x")["REMOTE_ADDR"] == "127.0.0.1"

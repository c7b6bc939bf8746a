"""TLS as a user runs it: --certfile/--keyfile with real curl and Python ssl clients against a CA
made in the test, client certificates, ciphers, the ssl_context hook, and start-up errors."""

import json
import shutil
import socket
import ssl
import subprocess
import time

import pytest

import harness

certs = pytest.importorskip("certs", reason="the TLS tests need the cryptography package")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return certs.make_pki(str(tmp_path_factory.mktemp("pki")))


def client_context(pki, cert=True, maximum=None, minimum=None):
    ctx = ssl.create_default_context(cafile=pki["ca"])
    if cert:
        ctx.load_cert_chain(pki["client_cert"], pki["client_key"])
    if maximum:
        ctx.maximum_version = maximum
    if minimum:
        ctx.minimum_version = minimum
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def https_get(addr, ctx, path="/", timeout=harness.IO_TIMEOUT):
    """One HTTPS request; returns (status, headers dict, body, ssl socket facts)."""
    with socket.create_connection(addr, timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            facts = {"alpn": s.selected_alpn_protocol(), "version": s.version(), "cipher": s.cipher()[0]}
            s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" % path).encode())
            data = b""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    return status, headers, body, facts


def start_tls(serve, pki, *args, app="echo:app"):
    srv = serve(app, "--certfile", pki["server_cert"], "--keyfile", pki["server_key"], *args, ready=False)
    ctx = client_context(pki)

    def ready():
        if not srv.alive():
            raise AssertionError("server exited early\n" + srv.logs())
        try:
            return https_get(srv.addr, ctx, timeout=2)[0] == 200
        except (OSError, ssl.SSLError):
            return False
    harness.wait_for(ready, harness.BOOT_TIMEOUT, what="HTTPS readiness")
    return srv


# Gunicorn offers no ALPN unless http_protocols lists h2.
@pytest.mark.beyond_gunicorn
def test_https_python_client_sees_https_scheme_and_alpn(serve, pki):
    srv = start_tls(serve, pki)
    status, headers, body, facts = https_get(srv.addr, client_context(pki, cert=False), "/x?y=1")
    env = json.loads(body)
    assert status == 200
    assert env["wsgi.url_scheme"] == "https"
    assert env["PATH_INFO"] == "/x" and env["QUERY_STRING"] == "y=1"
    assert facts["alpn"] == "http/1.1"
    assert facts["version"] in ("TLSv1.3", "TLSv1.2")


@pytest.mark.beyond_gunicorn  # keep-alive on the sync worker
def test_https_keep_alive_and_tls12(serve, pki):
    srv = start_tls(serve, pki)
    ctx = client_context(pki, cert=False, maximum=ssl.TLSVersion.TLSv1_2)
    with socket.create_connection(srv.addr, timeout=harness.IO_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.version() == "TLSv1.2"
            c = harness.Conn(s, harness.IO_TIMEOUT)
            for _ in range(3):
                c.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                r = c.read_response()
                assert r.status == 200
                assert r.json()["wsgi.url_scheme"] == "https"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_with_cacert(serve, pki):
    srv = start_tls(serve, pki)
    url = "https://localhost:%d/curl" % srv.addr[1]
    out = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", pki["ca"],
                          "--resolve", "localhost:%d:127.0.0.1" % srv.addr[1], url],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["PATH_INFO"] == "/curl"
    # Without the CA, curl refuses the certificate: it really is verified against our test CA.
    bad = subprocess.run(["curl", "-sS", "--max-time", "10",
                          "--resolve", "localhost:%d:127.0.0.1" % srv.addr[1], url],
                         capture_output=True, text=True, timeout=20)
    assert bad.returncode != 0


def test_client_certificate_required(serve, pki):
    srv = start_tls(serve, pki, "--ca-certs", pki["ca"], "--cert-reqs", "2")
    # No certificate: the handshake (or the first read after it, in TLS 1.3) fails.
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        status, *_ = https_get(srv.addr, client_context(pki, cert=False), timeout=5)
        raise AssertionError("served a client without a certificate: %s" % status)
    # A certificate from another CA is refused too.
    rogue = ssl.create_default_context(cafile=pki["ca"])
    rogue.load_cert_chain(pki["rogue_client_cert"], pki["rogue_client_key"])
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        https_get(srv.addr, rogue, timeout=5)
        raise AssertionError("served a client with a certificate from an unknown CA")
    # The honest client with a certificate is served.
    status, _, body, _ = https_get(srv.addr, client_context(pki))
    assert status == 200 and json.loads(body)["wsgi.url_scheme"] == "https"


def test_client_certificate_optional(serve, pki):
    srv = start_tls(serve, pki, "--ca-certs", pki["ca"], "--cert-reqs", "1")
    assert https_get(srv.addr, client_context(pki, cert=False))[0] == 200
    assert https_get(srv.addr, client_context(pki))[0] == 200


def test_ciphers_are_mapped_from_openssl_syntax(serve, pki):
    srv = start_tls(serve, pki, "--ciphers", "ECDHE+CHACHA20")
    ctx = client_context(pki, cert=False, maximum=ssl.TLSVersion.TLSv1_2)
    _, _, _, facts = https_get(srv.addr, ctx)
    assert facts["cipher"] == "ECDHE-RSA-CHACHA20-POLY1305"
    # A client offering only a suite outside the list cannot connect over TLS 1.2.
    only_aes = client_context(pki, cert=False, maximum=ssl.TLSVersion.TLSv1_2)
    only_aes.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        https_get(srv.addr, only_aes, timeout=5)


def test_plain_http_to_tls_port_is_closed_and_server_lives(serve, pki):
    srv = start_tls(serve, pki)
    with harness.connect(srv.addr) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        # rustls answers with an alert at most; never an HTTP response.
        data = b""
        try:
            while True:
                chunk = c.sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        except OSError:
            pass
        assert not data.startswith(b"HTTP/")
    assert https_get(srv.addr, client_context(pki))[0] == 200


HOOK_MIN_13 = """
import ssl
def ssl_context(conf, default_ssl_context_factory):
    ctx = default_ssl_context_factory()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx
"""

HOOK_SNI = """
def ssl_context(conf, default_ssl_context_factory):
    ctx = default_ssl_context_factory()
    ctx.sni_callback = lambda *a: None
    return ctx
"""

HOOK_CLIENT_CA = """
import ssl
def ssl_context(conf, default_ssl_context_factory):
    ctx = default_ssl_context_factory()
    ctx.load_verify_locations(cafile=%r)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
"""


def test_ssl_context_hook_minimum_version(serve, pki, tmp_path):
    conf = tmp_path / "tls.conf.py"
    conf.write_text(HOOK_MIN_13)
    srv = start_tls(serve, pki, "-c", str(conf))
    assert https_get(srv.addr, client_context(pki))[3]["version"] == "TLSv1.3"
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        https_get(srv.addr, client_context(pki, maximum=ssl.TLSVersion.TLSv1_2), timeout=5)


def test_ssl_context_hook_client_ca_and_verify_mode(serve, pki, tmp_path):
    conf = tmp_path / "tls.conf.py"
    conf.write_text(HOOK_CLIENT_CA % pki["ca"])
    srv = start_tls(serve, pki, "-c", str(conf))
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        https_get(srv.addr, client_context(pki, cert=False), timeout=5)
        raise AssertionError("hook's CERT_REQUIRED not honoured")


@pytest.mark.beyond_gunicorn  # OpenSSL honours it; rustls cannot, so ferrocorn refuses
def test_ssl_context_hook_that_cannot_be_honoured_is_refused(pki, tmp_path):
    conf = tmp_path / "tls.conf.py"
    conf.write_text(HOOK_SNI)
    r = harness.run_cmd(["-c", str(conf), "--certfile", pki["server_cert"], "--keyfile", pki["server_key"],
                         "-b", "127.0.0.1:%d" % harness.free_port(), "echo:app"], cwd=harness.APPS)
    assert r.returncode == 1
    assert "sni_callback" in r.stderr and "rustls" in r.stderr


# Gunicorn checks only that the files exist before it starts.
@pytest.mark.beyond_gunicorn
@pytest.mark.parametrize("case", ["missing_cert", "missing_key", "mismatch", "key_only", "no_ca",
                                  "bad_ciphers"])
def test_bad_tls_setup_is_a_clear_startup_error(pki, tmp_path, case):
    args = {
        "missing_cert": ["--certfile", str(tmp_path / "nope.pem"), "--keyfile", pki["server_key"]],
        "missing_key": ["--certfile", pki["server_cert"], "--keyfile", str(tmp_path / "nokey.pem")],
        "mismatch": ["--certfile", pki["server_cert"], "--keyfile", pki["other_key"]],
        "key_only": ["--keyfile", pki["server_key"]],
        "no_ca": ["--certfile", pki["server_cert"], "--keyfile", pki["server_key"], "--cert-reqs", "2"],
        "bad_ciphers": ["--certfile", pki["server_cert"], "--keyfile", pki["server_key"],
                        "--ciphers", "NOT-A-CIPHER"],
    }[case]
    expect = {
        "missing_cert": "nope.pem", "missing_key": "nokey.pem", "mismatch": "does not match the certificate",
        "key_only": "certfile", "no_ca": "ca-certs", "bad_ciphers": "--ciphers",
    }[case]
    port = harness.free_port()
    r = harness.run_cmd(args + ["-b", "127.0.0.1:%d" % port, "echo:app"], cwd=harness.APPS)
    assert r.returncode == 1, r.stderr
    assert "Error:" in r.stderr and expect in r.stderr, r.stderr
    # Nothing was left listening.
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0

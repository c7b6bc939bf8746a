"""Every bind form: HOST:PORT, HOST, [v6]:PORT, unix:PATH, fd://FD, several at once, busy port."""
import os
import signal
import socket

import pytest

from harness import APPS, free_port, get, run_cmd


def _port_free(host, port):
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
        return True
    except OSError:
        return False


def _have_ipv6():
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_host_port(serve):
    port = free_port()
    srv = serve("echo:app", bind=["127.0.0.1:%d" % port], addr=("127.0.0.1", port))
    r = get(srv.addr, "/x")
    assert r.status == 200
    assert r.json()["SERVER_PORT"] == str(port)


def test_host_only_means_port_8000(serve):
    if not _port_free("127.0.0.1", 8000):
        pytest.skip("127.0.0.1:8000 is in use on this machine")
    srv = serve("echo:app", bind=["127.0.0.1"], addr=("127.0.0.1", 8000))
    assert get(srv.addr).status == 200


@pytest.mark.skipif(not _have_ipv6(), reason="no IPv6 loopback")
def test_ipv6_bracketed(serve):
    port = free_port("::1")
    srv = serve("echo:app", bind=["[::1]:%d" % port], addr=("::1", port))
    r = get(srv.addr)
    assert r.status == 200
    assert r.json()["REMOTE_ADDR"] == "::1"


def test_unix_socket_stale_file_replaced_and_removed(serve, tmp_path):
    path = str(tmp_path / "app.sock")
    # leave a stale socket file behind, as a crashed server would
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()
    assert os.path.exists(path)
    srv = serve("echo:app", bind=["unix:" + path], addr=path)
    r = get(path, "/over-unix")
    assert r.status == 200
    assert r.json()["PATH_INFO"] == "/over-unix"
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit() == 0, srv.logs()
    assert not os.path.exists(path)


def test_fd_bind(serve):
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    lsock.set_inheritable(True)
    try:
        srv = serve("echo:app", bind=["fd://%d" % lsock.fileno()], addr=lsock.getsockname(),
                    pass_fds=(lsock.fileno(),))
        assert get(srv.addr).status == 200
    finally:
        lsock.close()
    # the server owns its copy of the listener: still serving after ours is closed
    assert get(srv.addr).status == 200


def test_several_binds(serve, tmp_path):
    p1, p2 = free_port(), free_port()
    path = str(tmp_path / "s.sock")
    srv = serve("echo:app", bind=["127.0.0.1:%d" % p1, "127.0.0.1:%d" % p2, "unix:" + path],
                addr=("127.0.0.1", p1))
    srv.wait_ready(addr=("127.0.0.1", p2))
    srv.wait_ready(addr=path)
    assert get(("127.0.0.1", p1)).json()["SERVER_PORT"] == str(p1)
    assert get(("127.0.0.1", p2)).json()["SERVER_PORT"] == str(p2)
    assert get(path).status == 200


def test_busy_port_is_a_clear_error(tmp_path):
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        r = run_cmd(["-b", "127.0.0.1:%d" % port, "echo:app"], cwd=APPS, timeout=60)
    finally:
        busy.close()
    assert r.returncode != 0
    out = (r.stdout + r.stderr).lower()
    assert "in use" in out and str(port) in out, out

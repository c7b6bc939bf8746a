"""Process mechanics: daemon, pidfile, titles, privileges, umask, systemd socket activation and
notification, running as PID 1 (issue 3). Checked against Gunicorn 27.0.1, except where marked
``beyond_gunicorn``."""
import grp
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys

import pytest

from harness import (APPS, free_port, get, is_gunicorn, pid_alive, proc_args, proc_children,
                     proc_ppid, proc_status, run_cmd, server_cmd, wait_for, wait_gone,
                     wait_workers)


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def stop_pid(pid):
    """TERM a detached master and wait for it, SIGKILL if it will not go."""
    if not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    try:
        wait_gone([pid], 15)
    except AssertionError:
        os.kill(pid, signal.SIGKILL)
        raise


def dead_pid():
    """The pid of a process that has just exited (and been reaped)."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


# ---------------------------------------------------------------------------------------------
# --daemon, --pid


def test_daemon_detaches_and_writes_the_pidfile(tmp_path):
    pidfile = tmp_path / "daemon.pid"
    port = free_port()
    r = run_cmd(["--daemon", "-p", str(pidfile), "-w", "2", "-b", "127.0.0.1:%d" % port,
                 "--error-logfile", str(tmp_path / "error.log"), "lifecycle:app"], cwd=APPS)
    assert r.returncode == 0, r.stderr
    master = wait_for(lambda: read_pid(pidfile), 20, what="the pidfile")
    try:
        assert pid_alive(master)
        # detached: not our child, in a session of its own, stdio on /dev/null
        assert proc_ppid(master) != os.getpid()
        with open("/proc/%d/stat" % master) as f:
            sid = int(f.read().rsplit(")", 1)[1].split()[3])
        assert sid != os.getsid(0)
        assert os.readlink("/proc/%d/fd/0" % master) == "/dev/null"
        wait_workers(None, 2, pid=master, timeout=20)
        wait_for(lambda: _ok(("127.0.0.1", port)), 10, what="the daemon to answer")
    finally:
        stop_pid(master)
    assert not pidfile.exists(), "the pidfile was left behind after TERM"


def _ok(addr):
    try:
        return get(addr, timeout=2).status == 200
    except OSError:
        return False


def test_stale_pidfile_is_replaced(serve, tmp_path):
    pidfile = tmp_path / "stale.pid"
    pidfile.write_text("%d\n" % dead_pid())
    srv = serve("lifecycle:app", "-p", str(pidfile))
    assert read_pid(pidfile) == srv.pid
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit() == 0
    assert not pidfile.exists()


def test_pidfile_of_a_live_process_refuses_to_start(tmp_path):
    pidfile = tmp_path / "live.pid"
    pidfile.write_text("%d\n" % os.getpid())
    r = run_cmd(["-p", str(pidfile), "-b", "127.0.0.1:%d" % free_port(), "lifecycle:app"],
                cwd=APPS, timeout=30)
    assert r.returncode == 1, r.stdout + r.stderr
    assert str(os.getpid()) in r.stderr  # "Already running on PID ..."
    assert read_pid(pidfile) == os.getpid(), "the live pidfile was overwritten"


# ---------------------------------------------------------------------------------------------
# titles, users, umask


def test_name_shows_in_master_and_worker_titles(serve):
    prog = "gunicorn" if is_gunicorn() else "ferrocorn"
    srv = serve("lifecycle:app", "-w", "2", "-n", "fc-title-test")
    workers = wait_workers(srv, 2)
    wait_for(lambda: proc_args(srv.pid) == "%s: master [fc-title-test]" % prog, 10,
             what="the master's title (now %r)" % proc_args(srv.pid))
    # A worker is forked with the master's title and sets its own a moment later.
    for w in workers:
        wait_for(lambda: proc_args(w) == "%s: worker [fc-title-test]" % prog, 10,
                 what="worker %d's title (now %r)" % (w, proc_args(w)))


def _ids(pid):
    st = proc_status(pid)
    return [int(x) for x in st["Uid"].split()], [int(x) for x in st["Gid"].split()]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_user_and_group_apply_to_workers_only(serve):
    nobody = pwd.getpwnam("nobody").pw_uid
    nogroup = grp.getgrnam("nogroup").gr_gid
    srv = serve("lifecycle:app", "-w", "2", "-u", "nobody", "-g", "nogroup")
    workers = wait_workers(srv, 2)
    for w in workers:
        _wait_ids(w, ([nobody] * 4, [nogroup] * 4))
    assert _ids(srv.pid) == ([0] * 4, [0] * 4)
    assert get(srv.addr).status == 200
    # a HUP still works: the master kept what it needs
    srv.signal(signal.SIGHUP)
    for w in wait_workers(srv, 2, exclude=workers):
        _wait_ids(w, ([nobody] * 4, [nogroup] * 4))


def _wait_ids(pid, want):
    """A just-forked worker switches users a moment after it appears: wait for it (bounded)."""
    wait_for(lambda: _ids(pid) == want, 10,
             what="worker %d to switch to uids/gids %r (now %r)" % (pid, want, _ids(pid)))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_numeric_user_and_group(serve):
    srv = serve("lifecycle:app", "-w", "1", "-u", "65534", "-g", "65534")
    [w] = wait_workers(srv, 1)
    _wait_ids(w, ([65534] * 4, [65534] * 4))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_initgroups_gives_workers_the_users_groups(serve):
    nogroup = grp.getgrnam("nogroup").gr_gid
    srv = serve("lifecycle:app", "-w", "1", "-u", "nobody", "-g", "nogroup", "--initgroups")
    [w] = wait_workers(srv, 1)
    want = sorted(set(os.getgrouplist("nobody", nogroup)))
    wait_for(lambda: sorted(int(g) for g in proc_status(w)["Groups"].split()) == want, 10,
             what="worker %d to take nobody's groups (%r)" % (w, want))


def test_worker_tmp_dir_is_accepted(serve, tmp_path):
    """Gunicorn keeps its heartbeat file there; ferrocorn may use shared memory instead, so only
    the setting's acceptance and a working server are checked."""
    srv = serve("lifecycle:app", "-w", "1", "--worker-tmp-dir", str(tmp_path))
    assert get(srv.addr).status == 200


@pytest.mark.parametrize("umask, mode", [("007", 0o770), ("0o027", 0o750)])
def test_umask_sets_the_unix_socket_mode(serve, tmp_path, umask, mode):
    path = str(tmp_path / "u.sock")
    serve("lifecycle:app", "-m", umask, bind=["unix:" + path], addr=path)
    assert stat.S_IMODE(os.stat(path).st_mode) == mode


# ---------------------------------------------------------------------------------------------
# systemd


ACTIVATE = r'''
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(128)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
    s.close()
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())  # exec keeps the pid
os.execvp(sys.argv[2], sys.argv[2:])
'''


def test_systemd_socket_activation(serve, tmp_path, monkeypatch):
    """Like systemd: the socket is fd 3, LISTEN_FDS=1, LISTEN_PID=the server's own pid."""
    wrapper = tmp_path / "activate.py"
    wrapper.write_text(ACTIVATE)
    portfile = tmp_path / "port"
    monkeypatch.setenv("FERROCORN_CMD", shlex.join(
        [sys.executable, str(wrapper), str(portfile)] + server_cmd()))
    with socket.socket() as probe:
        default_free = probe.connect_ex(("127.0.0.1", 8000)) != 0
    # no --bind at all: the activated socket is the listener
    srv = serve("lifecycle:app", "-w", "2", bind=[], ready=False)
    port = int(wait_for(lambda: portfile.exists() and portfile.read_text(), 10,
                        what="the activation wrapper's port"))
    srv.addr = ("127.0.0.1", port)
    srv.wait_ready()
    assert get(srv.addr).status == 200
    if default_free:  # the default address (127.0.0.1:8000) was not bound as well
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", 8000)) != 0
    srv.signal(signal.SIGTERM)
    assert srv.wait_exit() == 0


def _notify_socket(tmp_path):
    path = str(tmp_path / "notify")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.2)
    return s, path


def _datagrams(sock, until, timeout=15):
    got = []

    def poll():
        try:
            got.append(sock.recv(4096).decode())
        except socket.timeout:
            pass
        return any(until in g for g in got)
    try:
        wait_for(poll, timeout, interval=0, what="%r on NOTIFY_SOCKET" % until)
    except AssertionError as exc:
        raise AssertionError("%s; got %r" % (exc, got))
    return got


def test_sd_notify_ready(serve, tmp_path):
    sock, path = _notify_socket(tmp_path)
    with sock:
        srv = serve("lifecycle:app", "-w", "1", extra_env={"NOTIFY_SOCKET": path})
        got = _datagrams(sock, "READY=1")
        assert any(g.split("\n")[0] == "READY=1" for g in got), got
        assert srv.alive()


@pytest.mark.beyond_gunicorn
def test_sd_notify_stopping_on_term(serve, tmp_path):
    """Gunicorn 27 only ever sends READY=1 (with a STATUS= line); the issue asks for
    STOPPING=1 when a stop begins."""
    sock, path = _notify_socket(tmp_path)
    with sock:
        srv = serve("lifecycle:app", "-w", "1", extra_env={"NOTIFY_SOCKET": path})
        _datagrams(sock, "READY=1")
        srv.signal(signal.SIGTERM)
        _datagrams(sock, "STOPPING=1", timeout=10)
        assert srv.wait_exit() == 0


# ---------------------------------------------------------------------------------------------
# PID 1


def _nspid(host_pid):
    """The pid as seen inside its own pid namespace (last NSpid field)."""
    return int(proc_status(host_pid)["NSpid"].split()[-1])


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="needs root and unshare for a pid namespace")
def test_as_pid_1_orphans_are_reaped_and_not_taken_for_workers(serve, monkeypatch):
    probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                           capture_output=True, timeout=10)
    if probe.returncode != 0:
        pytest.skip("no pid namespace here: %s" % probe.stderr.decode()[-200:])
    monkeypatch.setenv("FERROCORN_CMD", shlex.join(
        ["unshare", "--pid", "--fork", "--mount-proc"] + server_cmd()))
    srv = serve("lifecycle:app", "-w", "2")
    [master] = wait_for(lambda: proc_children(srv.pid), 10, what="the namespaced master")
    assert _nspid(master) == 1
    workers = wait_workers(None, 2, pid=master)

    r = get(srv.addr, "/orphan/1")
    assert r.status == 200
    orphan_ns = int(r.body)
    # the orphan is re-parented to the master (PID 1 of the namespace) ...
    orphan = wait_for(lambda: [p for p in proc_children(master) if p not in workers
                               and _nspid(p) == orphan_ns], 5, what="the orphan under PID 1")
    # ... exits after 1 s and is reaped: no zombie is left, and the workers are untouched
    wait_for(lambda: not os.path.exists("/proc/%d" % orphan[0]), 10,
             what="the orphan to be reaped (a zombie stays in /proc)")
    assert sorted(p for p in proc_children(master) if pid_alive(p)) == sorted(workers)
    assert get(srv.addr).status == 200
    # and the master still knows its real workers: killing one gets it replaced
    os.kill(workers[0], signal.SIGKILL)
    wait_workers(None, 2, pid=master, exclude=workers[:1])
    os.kill(master, signal.SIGTERM)
    assert srv.wait_exit(20) is not None

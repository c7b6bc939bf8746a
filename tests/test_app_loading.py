"""How the application is found: mod:app, mod, factories, --chdir, --pythonpath, -e, --preload."""
import os

import pytest

from harness import APPS, get, run_cmd


def test_module_colon_app(serve):
    srv = serve("echo:app")
    assert get(srv.addr).json()["REQUEST_METHOD"] == "GET"


def test_module_only_means_application(serve):
    srv = serve("hello_module")
    assert get(srv.addr).body == b"hello from module app"


def test_factory_no_args(serve):
    srv = serve("factory:create_app()")
    assert get(srv.addr).json() == {"args": [], "kwargs": {}}


def test_factory_literal_args(serve):
    srv = serve("factory:create_app('x', debug=True)")
    assert get(srv.addr).json() == {"args": ["x"], "kwargs": {"debug": True}}


def test_chdir(serve, tmp_path):
    srv = serve("echo:app", "--chdir", APPS, cwd=str(tmp_path))
    env = get(srv.addr).json()
    assert os.path.realpath(env["__cwd"]) == os.path.realpath(APPS)


def test_pythonpath(serve, tmp_path):
    srv = serve("hello_module:application", "--pythonpath", APPS, cwd=str(tmp_path))
    assert get(srv.addr).body == b"hello from module app"


def test_env_option(serve):
    srv = serve("echo:app", "-e", "FC_ONE=1", "--env", "FC_TWO=a=b")
    env = get(srv.addr).json()["__env"]
    assert env["FC_ONE"] == "1"
    assert env["FC_TWO"] == "a=b"


def test_preload_imports_in_master(serve):
    srv = serve("preload:app", "--preload", "-w", "1")
    r = get(srv.addr).json()
    assert r["import_pid"] == srv.pid
    assert r["worker_pid"] != srv.pid and r["worker_ppid"] == srv.pid


def test_no_preload_imports_in_worker(serve):
    srv = serve("preload:app", "-w", "1")
    r = get(srv.addr).json()
    assert r["import_pid"] == r["worker_pid"] != srv.pid


@pytest.mark.parametrize("target,needle", [
    ("no_such_module_xyz:app", "no_such_module_xyz"),
    ("import_error:app", "this_module_does_not_exist_anywhere"),
    ("echo:no_such_attribute", "no_such_attribute"),
    ("factory:not_callable", "callable"),
    ("factory:broken_factory()", "factory failed on purpose"),
    ("factory:create_app(__import__('os').system('true'))", "create_app"),
    ("factory:create_app(os.system('x'))", "create_app"),
])
def test_load_failure_exits_without_fork_loop(tmp_path, target, needle):
    """Each bad target makes the command exit non-zero, quickly, saying what was wrong."""
    port_file = tmp_path / "unused"
    r = run_cmd(["-b", "unix:" + str(port_file), "-w", "2", target], cwd=APPS, timeout=30)
    assert r.returncode != 0, r.stdout + r.stderr
    assert needle in (r.stdout + r.stderr), r.stderr


def test_factory_call_not_executed(tmp_path):
    """A non-literal argument is refused, never evaluated."""
    marker = tmp_path / "pwned"
    target = "factory:create_app(open(%r, 'w'))" % str(marker)
    r = run_cmd(["-b", "unix:" + str(tmp_path / "s"), target], cwd=APPS, timeout=30)
    assert r.returncode != 0
    assert not marker.exists()


def test_factory_returning_non_callable(tmp_path):
    r = run_cmd(["-b", "unix:" + str(tmp_path / "s"), "factory:not_a_factory()"], cwd=APPS,
                timeout=30)
    assert r.returncode != 0
    assert "not_a_factory" in (r.stdout + r.stderr) or "callable" in (r.stdout + r.stderr)

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "beyond_gunicorn: behaviour where ferrocorn deliberately goes beyond Gunicorn; skipped "
        "when FERROCORN_CMD is gunicorn unless FERROCORN_FORCE_BEYOND=1")


def pytest_collection_modifyitems(config, items):
    if not harness.is_gunicorn() or os.environ.get("FERROCORN_FORCE_BEYOND") == "1":
        return
    skip = pytest.mark.skip(reason="ferrocorn goes beyond Gunicorn here")
    for item in items:
        if "beyond_gunicorn" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def serve(tmp_path, request):
    """Factory: ``serve("echo:app", "-w", "2")`` starts the server and waits until it answers.

    By default it binds through a pre-bound listening socket passed as ``--bind fd://N``; give
    ``bind=[...]`` (a list of bind strings, ``addr=`` then says where to probe) to bind
    differently, ``ready=False`` to skip the readiness probe. Logs go to files in tmp_path.
    Every server is stopped (SIGTERM, then SIGKILL of its group) at teardown.
    """
    servers = []
    held = []

    def start(app=None, *args, cwd=harness.APPS, bind=None, addr=None, ready=True, probe="/",
              env=None, extra_env=None, name=None, pass_fds=()):
        argv = []
        if bind is None:
            s = harness.listening_socket()
            held.append(s)
            pass_fds = (s.fileno(),)
            argv += ["--bind", "fd://%d" % s.fileno()]
            addr = addr or s.getsockname()[:2]
        else:
            for b in bind:
                argv += ["--bind", b]
        argv += list(args)
        if app is not None:
            argv.append(app)
        srv = harness.Server(argv, cwd, str(tmp_path), env=env, extra_env=extra_env,
                             pass_fds=pass_fds, addr=addr,
                             name=name or "server%d" % len(servers))
        servers.append(srv)
        if ready:
            srv.wait_ready(path=probe)
        return srv

    yield start

    failed = getattr(request.node, "rep_call", None)
    leftovers = []
    for srv in servers:
        srv.stop()
        if failed is not None and failed.failed:
            sys.stderr.write("\n" + srv.logs() + "\n")
        leftovers += srv.leftovers
    for s in held:
        s.close()
    # A worker that outlives its master is a bug even when the test's own checks passed (that
    # is how a hub worker parked forever once stayed hidden).
    assert not leftovers, "processes outlived their master: %r" % leftovers


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)

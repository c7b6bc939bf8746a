"""Published gunicorn configs that must keep working (issue 10, items 5, 12-15).

Fixtures under ``tests/real_configs/`` restate the relevant parts of PostHog's and Airflow's
gunicorn configs. The tests run the real command; the ones marked beyond_gunicorn describe
ferrocorn-only machinery (the ``gunicorn`` compatibility module)."""

import json
import os
import re
import shutil
import subprocess
import sys
import time

import pytest

import harness
from harness import APPS, get, wait_for

CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "real_configs")


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


# ---------------------------------------------------------------------------------------------
# 12. logging configs that disable or reconfigure existing loggers


def test_posthog_logconfig_with_disable_existing_loggers_keeps_logging(serve):
    """PostHog: ``disable_existing_loggers: True`` with gunicorn.error/gunicorn.access named.
    Gunicorn keeps writing server and access lines through the configured handlers."""
    srv = serve("logapp:app", "-c", os.path.join(CONFIGS, "posthog.conf.py"))
    get(srv.addr, "/status/201", headers=[("User-Agent", "ph-agent")])
    wait_for(lambda: "ph-agent" in srv.stdout(), harness.IO_TIMEOUT, what="access line on stdout")
    access = [l for l in srv.stdout().splitlines() if "ph-agent" in l]
    assert access[-1].startswith("posthog-fmt gunicorn.access INFO "), srv.logs()
    assert '"GET /status/201 HTTP/1.0" 201' in access[-1], srv.logs()
    err = srv.stderr()
    for needle in ("gunicorn.error INFO Listening at: ", "gunicorn.error INFO Booting worker with pid",
                   "posthog when_ready ran", "posthog post_fork ran"):
        assert needle in err, "%r missing\n%s" % (needle, srv.logs())


# Loaded after the server's loggers exist, as Django loads its LOGGING in each worker: the
# config names gunicorn.error / gunicorn.access and disables every other existing logger.
LATE_DICTCONFIG = '''
import logging.config, os

logconfig_dict = {
    "version": 1,
    "handlers": {"err": {"class": "logging.FileHandler", "filename": os.environ["FC_ERR"],
                         "formatter": "f"}},
    "formatters": {"f": {"format": "early %(levelname)s %(message)s"}},
    "root": {"level": "WARNING", "handlers": []},
    "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["err"], "propagate": False}},
}


def post_worker_init(worker):
    if os.environ["FC_HOW"] == "ini":
        # fileConfig's default is disable_existing_loggers=True, as paste/Pyramid apps call it.
        logging.config.fileConfig(os.environ["FC_INI"])
        worker.log.info("app logging configured")
        return
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": True,
        "formatters": {"f": {"format": "late %(name)s %(levelname)s %(message)s"}},
        "handlers": {
            "err": {"class": "logging.FileHandler", "filename": os.environ["FC_ERR"], "formatter": "f"},
            "acc": {"class": "logging.FileHandler", "filename": os.environ["FC_ACC"], "formatter": "f"},
        },
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["err"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["acc"], "propagate": False},
        },
    })
    worker.log.info("app logging configured")
'''


LATE_INI = """
[loggers]
keys = root, error, access

[handlers]
keys = err, acc

[formatters]
keys = f

[logger_root]
level = WARNING
handlers =

[logger_error]
qualname = gunicorn.error
level = INFO
handlers = err
propagate = 0

[logger_access]
qualname = gunicorn.access
level = INFO
handlers = acc
propagate = 0

[handler_err]
class = FileHandler
args = ({err!r},)
formatter = f

[handler_acc]
class = FileHandler
args = ({acc!r},)
formatter = f

[formatter_f]
format = late %(name)s %(levelname)s %(message)s
"""


@pytest.mark.parametrize("how", ["dict", "ini"])
def test_app_logging_config_disabling_existing_loggers_keeps_server_lines(serve, tmp_path, how):
    conf = tmp_path / "late.conf.py"
    conf.write_text(LATE_DICTCONFIG)
    err, acc = tmp_path / "err.log", tmp_path / "acc.log"
    (tmp_path / "late.ini").write_text(LATE_INI.format(err=str(err), acc=str(acc)))
    srv = serve("logapp:app", "-c", str(conf), "-w", "1", "--pythonpath", str(tmp_path),
                extra_env={"FC_ERR": str(err), "FC_ACC": str(acc), "FC_HOW": how,
                           "FC_INI": str(tmp_path / "late.ini")})
    wait_for(lambda: "late gunicorn.error INFO app logging configured" in read(err),
             harness.IO_TIMEOUT, what="the hook's line")
    get(srv.addr, "/log", headers=[("User-Agent", "late-agent")])
    wait_for(lambda: "late-agent" in read(acc), harness.IO_TIMEOUT, what="access line")
    wait_for(lambda: "late gunicorn.error WARNING app warning via gunicorn.error" in read(err),
             harness.IO_TIMEOUT, what="app line via gunicorn.error")
    if not harness.is_gunicorn():
        # ferrocorn's other name for gunicorn.error keeps reaching it too.
        wait_for(lambda: "app error via ferrocorn.error" in read(err), harness.IO_TIMEOUT,
                 what="app line via ferrocorn.error")
    # A server line written after the reconfiguration still arrives.
    srv.signal(__import__("signal").SIGTTIN)
    wait_for(lambda: read(err).count("Booting worker with pid") >= 2, harness.IO_TIMEOUT,
             what="a second worker's boot line")


def test_logconfig_json_with_disable_existing_loggers_keeps_logging(serve, tmp_path):
    """The same config as a ``logconfig_json`` file, with file handlers."""
    err, acc = tmp_path / "err.log", tmp_path / "acc.log"
    cfg = {
        "version": 1,
        "disable_existing_loggers": True,
        "formatters": {"f": {"format": "%(name)s %(levelname)s %(message)s"}},
        "handlers": {"err": {"class": "logging.FileHandler", "filename": str(err), "formatter": "f"},
                     "acc": {"class": "logging.FileHandler", "filename": str(acc), "formatter": "f"}},
        "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["err"], "propagate": False},
                    "gunicorn.access": {"level": "INFO", "handlers": ["acc"], "propagate": False}},
        "root": {"level": "WARNING", "handlers": []},
    }
    (tmp_path / "log.json").write_text(json.dumps(cfg))
    srv = serve("logapp:app", "--log-config-json", str(tmp_path / "log.json"))
    get(srv.addr, "/status/404", headers=[("User-Agent", "json-agent")])
    wait_for(lambda: "json-agent" in read(acc), harness.IO_TIMEOUT, what="access line")
    lines = [l for l in read(acc).splitlines() if "json-agent" in l]
    assert len(lines) == 1 and lines[0].startswith("gunicorn.access INFO "), read(acc)
    assert "gunicorn.error INFO Listening at: " in read(err), srv.logs()


# ---------------------------------------------------------------------------------------------
# 14. the Listening at line names the scheme clients must use


@pytest.mark.parametrize("bind", ["tcp", "fd"])
def test_listening_line_says_https_with_certfile(serve, tmp_path, bind):
    certs = pytest.importorskip("certs", reason="needs the cryptography package")
    pki = certs.make_pki(str(tmp_path / "pki"))
    sock_path = str(tmp_path / "s.sock")
    tls = ["--certfile", pki["server_cert"], "--keyfile", pki["server_key"]]
    if bind == "tcp":
        port = harness.free_port()
        srv = serve("echo:app", *tls, bind=["127.0.0.1:%d" % port, "unix:" + sock_path],
                    addr=("127.0.0.1", port), ready=False)
    else:
        srv = serve("echo:app", *tls, ready=False)
        port = srv.addr[1]
    line = wait_for(lambda: [l for l in srv.stderr().splitlines() if "Listening at: " in l],
                    harness.BOOT_TIMEOUT, what="the Listening at line")[0]
    shown = line.split("Listening at: ", 1)[1].rsplit(" (", 1)[0].split(",")
    expected = ["https://127.0.0.1:%d" % port] + (["unix:" + sock_path] if bind == "tcp" else [])
    assert sorted(shown) == sorted(expected), line


# ---------------------------------------------------------------------------------------------
# 13. process titles set with the setproctitle package from hooks


def test_airflow_ready_prefix_from_setproctitle_hook(serve):
    pytest.importorskip("setproctitle")
    srv = serve("echo:app", "-w", "2", "-c", os.path.join(CONFIGS, "airflow.conf.py"))
    workers = harness.wait_workers(srv, 2)
    name = "gunicorn" if harness.is_gunicorn() else "ferrocorn"

    def titles():
        return [harness.proc_args(pid) for pid in workers]

    # What Airflow's monitor counts: workers whose command line carries the marker, followed
    # by the server's own worker title that getproctitle() returned.
    ready = wait_for(lambda: all(t.startswith("[ready] %s: worker [" % name) for t in titles()),
                     harness.IO_TIMEOUT, what="ready markers on %r" % (titles(),))
    assert ready
    assert harness.proc_args(srv.pid).startswith("%s: master [" % name)


# ---------------------------------------------------------------------------------------------
# 5, 15. the server name, and configs that import gunicorn


def test_server_header_is_the_bare_name(serve):
    srv = serve("echo:app")
    r = get(srv.addr, "/")
    assert r.header("server") in ("ferrocorn", "gunicorn"), r.header("server")
    software = r.json()["SERVER_SOFTWARE"]
    assert re.fullmatch(r"(ferrocorn|gunicorn)/\d+\.\d+\.\d+", software), software


IMPORTS_GUNICORN = '''
import os

import gunicorn
from gunicorn import glogging

# The idioms of published configs: hide the server name, pin the class by Gunicorn's path,
# subclass Gunicorn's logger.
gunicorn.SERVER = "hidden-server"
gunicorn.SERVER_SOFTWARE = "hidden/1.0"
worker_class = "gunicorn.workers.sync.SyncWorker"


class MarkingLogger(glogging.Logger):
    def setup(self, cfg):
        super().setup(cfg)
        self.error_log.addHandler(self._marker())

    def _marker(self):
        import logging

        h = logging.FileHandler(os.environ["FC_MARK"])
        h.setFormatter(logging.Formatter("mark %(levelname)s %(message)s"))
        return h


logger_class = MarkingLogger


def when_ready(server):
    with open(os.environ["FC_MARK"] + ".info", "w") as f:
        f.write("%s|%s" % (gunicorn.__file__, gunicorn.version_info >= (20,)))
'''


def _venv_without_gunicorn(tmp_path):
    """A fresh venv (no site-packages of ours, so no gunicorn at all) that sees this
    checkout's ferrocorn package, built extension included, through a .pth file."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    import ferrocorn
    # Only the ferrocorn package itself: where it is installed (site-packages, when the suite
    # runs against the wheel) gunicorn may sit right beside it.
    only = tmp_path / "only-ferrocorn"
    only.mkdir()
    os.symlink(os.path.dirname(os.path.abspath(ferrocorn.__file__)), str(only / "ferrocorn"))
    with open(os.path.join(site, "ferrocorn-src.pth"), "w") as f:
        f.write(str(only) + "\n")
    probe = subprocess.run([str(py), "-c", "import importlib.util as u; print(u.find_spec('gunicorn'))"],
                           capture_output=True, text=True)
    assert probe.stdout.strip() == "None", "gunicorn is importable in the bare venv"
    return "%s -m ferrocorn" % py


def _start_importing_config(serve, tmp_path):
    conf = tmp_path / "imports_gunicorn.conf.py"
    conf.write_text(IMPORTS_GUNICORN)
    mark = tmp_path / "mark.log"
    srv = serve("echo:app", "-c", str(conf), extra_env={"FC_MARK": str(mark)})
    return srv, mark


@pytest.mark.beyond_gunicorn
def test_config_importing_gunicorn_starts_without_gunicorn(serve, tmp_path, monkeypatch):
    monkeypatch.setenv("FERROCORN_CMD", _venv_without_gunicorn(tmp_path))
    srv, mark = _start_importing_config(serve, tmp_path)
    r = get(srv.addr, "/")
    assert r.status == 200
    # What Gunicorn does with these two: SERVER is the header, SERVER_SOFTWARE the environ.
    assert r.header("server") == "hidden-server"
    assert r.json()["SERVER_SOFTWARE"] == "hidden/1.0"
    wait_for(lambda: "Listening at: " in read(mark), harness.IO_TIMEOUT, what="logger subclass line")
    assert "mark INFO Booting worker with pid" in read(mark)
    where, new_enough = read(str(mark) + ".info").split("|")
    assert os.sep + os.path.join("ferrocorn", "_compat", "gunicorn", "__init__.py") in where
    assert new_enough == "True"
    # No setproctitle in this venv either: ferrocorn writes its own titles.
    [worker] = harness.wait_workers(srv, 1)
    assert harness.proc_args(worker).startswith("ferrocorn: worker ["), harness.proc_args(worker)


def test_config_importing_gunicorn_uses_the_installed_one(serve, tmp_path):
    pytest.importorskip("gunicorn")
    srv, mark = _start_importing_config(serve, tmp_path)
    r = get(srv.addr, "/")
    assert r.header("server") == "hidden-server"
    assert r.json()["SERVER_SOFTWARE"] == "hidden/1.0"
    wait_for(lambda: read(str(mark) + ".info"), harness.IO_TIMEOUT, what="when_ready")
    import gunicorn
    assert read(str(mark) + ".info").split("|")[0] == gunicorn.__file__


PATCHED_WORKER = '''
from gunicorn.workers.ggevent import GeventWorker


class PatchedGeventWorker(GeventWorker):
    """Patches a database driver before the worker runs, as some projects do."""

    def init_process(self):
        super().init_process()
'''


@pytest.mark.beyond_gunicorn
@pytest.mark.parametrize("where", ["installed", "without_gunicorn"])
@pytest.mark.parametrize("given", ["class", "path"])
def test_worker_class_subclassing_gunicorns_is_refused_naming_the_builtin(tmp_path, monkeypatch,
                                                                          where, given):
    if where == "without_gunicorn":
        monkeypatch.setenv("FERROCORN_CMD", _venv_without_gunicorn(tmp_path))
    else:
        pytest.importorskip("gevent")
    (tmp_path / "patched.py").write_text(PATCHED_WORKER)
    conf = tmp_path / "c.conf.py"
    head = "import os, sys\nsys.path.insert(0, os.path.dirname(__file__))\n"
    if given == "class":
        conf.write_text(head + "from patched import PatchedGeventWorker\nworker_class = PatchedGeventWorker\n")
    else:
        conf.write_text(head + "worker_class = 'patched.PatchedGeventWorker'\n")
    r = harness.run_cmd(["-c", str(conf), "-b", "127.0.0.1:0", "echo:app"], cwd=APPS, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "patched.PatchedGeventWorker" in r.stderr, r.stderr
    assert 'worker_class = "gevent"' in r.stderr, r.stderr
    assert "Traceback" not in r.stderr, r.stderr


@pytest.mark.beyond_gunicorn
def test_embedding_api_is_refused_with_a_pointer_to_the_command(tmp_path, monkeypatch):
    """gunicorn.app (BaseApplication) is out of the compatibility module's scope: it embeds the
    server in a program, which ferrocorn's command replaces. The error says so."""
    monkeypatch.setenv("FERROCORN_CMD", _venv_without_gunicorn(tmp_path))
    conf = tmp_path / "c.conf.py"
    conf.write_text("from gunicorn.app.base import BaseApplication\n")
    r = harness.run_cmd(["-c", str(conf), "-b", "127.0.0.1:0", "echo:app"], cwd=APPS, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "gunicorn.app" in r.stderr and "run the ferrocorn command" in r.stderr, r.stderr

"""`--paste development.ini` and `raw_paste_global_conf` (`--paste-global`), as Pyramid users
run Gunicorn: a Pyramid app laid out like its starter scaffold (tests/apps/pyramid_paste)."""

import os
import shutil
import signal
import subprocess

import pytest

import harness

pytest.importorskip("pyramid")
pytest.importorskip("paste.deploy")

APP_DIR = os.path.join(harness.APPS, "pyramid_paste")
INI = os.path.join(APP_DIR, "development.ini")


def test_paste_serves_pyramid_app_with_its_logging(serve):
    srv = serve(None, "--paste", "development.ini", "-w", "1", cwd=APP_DIR)
    r = harness.get(srv.addr, "/")
    assert r.status == 200, r.body[:500]
    body = r.json()
    # The ini's own interpolation (%(here)s) and Pyramid settings reached the factory.
    assert body["greeting"] == "hello from %s" % APP_DIR
    assert body["reload_templates"] is True
    assert body["global_config"]["__file__"] == INI
    assert body["global_config"]["here"] == APP_DIR
    # The ini has a [loggers] section: it is the logging configuration, so the app's logger
    # writes through the ini's formatter.
    harness.wait_for(lambda: "PASTEDEMO" in srv.stderr() and "home view served /" in srv.stderr(),
                     harness.IO_TIMEOUT, what="the app's log line in the ini's format")
    # The processes are named after the ini file (Gunicorn needs setproctitle for titles).
    if not harness.is_gunicorn():
            harness.wait_for(lambda: harness.proc_args(srv.pid).endswith("master [%s]" % INI),
                         harness.IO_TIMEOUT, what="the master's title naming the ini file")


def test_paste_section_and_global_conf(serve):
    srv = serve(None, "--paste", "development.ini#second", "--paste-global", "team=blue",
                "--paste-global", "motto=a\\=b", "-w", "1", cwd=APP_DIR)
    body = harness.get(srv.addr, "/").json()
    assert body["greeting"] == "team blue"
    assert body["global_config"]["team"] == "blue"
    assert body["global_config"]["motto"] == "a=b"


def test_paste_global_conf_from_config_file(serve, tmp_path):
    conf = tmp_path / "conf.py"
    conf.write_text("raw_paste_global_conf = ['team=red']\nworkers = 1\n")
    srv = serve(None, "-c", str(conf), "--paste", INI + "#second", cwd=APP_DIR)
    assert harness.get(srv.addr, "/").json()["greeting"] == "team red"


def test_paste_missing_file_is_an_error():
    r = harness.run_cmd(["--paste", "no-such.ini", "--check-config"], cwd=APP_DIR)
    assert r.returncode == 1
    assert "no-such.ini" in r.stderr and "not found" in r.stderr


@pytest.mark.beyond_gunicorn
def test_paste_global_conf_without_equals_names_the_setting():
    r = harness.run_cmd(["--paste", "development.ini", "--paste-global", "novalue", "--check-config"],
                        cwd=APP_DIR)
    assert r.returncode == 1
    assert "raw_paste_global_conf" in r.stderr and "novalue" in r.stderr


@pytest.mark.beyond_gunicorn
def test_paste_without_pastedeploy_names_the_package(tmp_path):
    # An import hook (sitecustomize, run at interpreter start) makes `paste.deploy` unimportable,
    # as if PasteDeploy were not installed.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'paste.deploy' or name.startswith('paste.deploy.'):\n"
        "            raise ModuleNotFoundError(\"No module named 'paste.deploy'\", name=name)\n"
        "sys.meta_path.insert(0, _Block())\n")
    pythonpath = os.pathsep.join(filter(None, [str(shadow), os.environ.get("PYTHONPATH")]))
    r = harness.run_cmd(["--paste", "development.ini", "-b", "127.0.0.1:%d" % harness.free_port()],
                        cwd=APP_DIR, extra_env={"PYTHONPATH": pythonpath}, timeout=20)
    assert r.returncode == 1
    assert "PasteDeploy" in r.stderr and "pip install PasteDeploy" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.beyond_gunicorn
def test_pserve_with_ferrocorn_server_runner(tmp_path):
    # `use = egg:ferrocorn#main` in [server:main]: pserve hands over to ferrocorn with the
    # section's settings (host/port -> bind, workers) and its own name=value variables.
    pserve = shutil.which("pserve") or os.path.join(os.path.dirname(os.path.realpath(shutil.which(
        harness.server_cmd()[0]) or "")), "pserve")
    if not os.path.exists(pserve):
        pytest.skip("pserve (pyramid) not installed")
    port = harness.free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [APP_DIR, os.environ.get("PYTHONPATH")])))
    with open(tmp_path / "pserve.out", "wb") as out:
        proc = subprocess.Popen([pserve, "serve.ini", "http_port=%d" % port], cwd=APP_DIR, env=env,
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        def up():
            assert proc.poll() is None, (tmp_path / "pserve.out").read_text()
            try:
                return harness.get(("127.0.0.1", port), "/").status == 200
            except OSError:
                return False
        harness.wait_for(up, harness.BOOT_TIMEOUT, what="pserve serving through ferrocorn")
        body = harness.get(("127.0.0.1", port), "/").json()
        assert body["greeting"] == "hello from %s" % APP_DIR
        assert body["global_config"]["http_port"] == str(port)
        # pserve's process became ferrocorn's master (exec), with the section's two workers.
        harness.wait_for(lambda: len(harness.proc_children(proc.pid)) == 2, harness.IO_TIMEOUT,
                         what="two workers")
        assert "ferrocorn: master" in harness.proc_args(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=harness.STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=harness.STOP_TIMEOUT)

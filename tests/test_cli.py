"""The command line: --version, -h, --check-config, --print-config."""
import re

import pytest

from harness import APPS, run_cmd


def test_version():
    r = run_cmd(["--version"])
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    assert re.search(r"\(version \d+\.\d+(\.\d+)?", out), out


def test_help_lists_settings():
    r = run_cmd(["-h"])
    assert r.returncode == 0, r.stderr
    for flag in ("--bind", "--workers", "--worker-class", "--threads", "--worker-connections",
                 "--max-requests", "--timeout", "--keep-alive", "--config", "--name",
                 "--reload", "--chdir", "--pythonpath", "--preload", "--check-config",
                 "--print-config"):
        assert flag in r.stdout, flag


@pytest.mark.beyond_gunicorn
def test_help_groups_settings_by_section():
    """Gunicorn's -h is one flat list; ferrocorn groups flags under the settings' sections."""
    out = run_cmd(["-h"]).stdout
    lines = out.splitlines()

    def heading(name):
        for i, line in enumerate(lines):
            if line.strip().rstrip(":").lower() == name:
                return i
        raise AssertionError("no %r section heading in -h\n%s" % (name, out))

    sock, procs = heading("server socket"), heading("worker processes")
    bind = next(i for i, l in enumerate(lines) if "--bind" in l)
    workers = next(i for i, l in enumerate(lines) if "--workers" in l)
    assert sock < bind and not (sock < procs < bind), "--bind not under Server Socket"
    assert procs < workers and not (procs < sock < workers), "--workers not under Worker Processes"


def test_check_config_ok(tmp_path):
    """--check-config really imports the app (it leaves a marker) and exits 0 without serving."""
    marker = tmp_path / "imported"
    (tmp_path / "marked.py").write_text(
        "import os\n"
        "open(os.environ['FC_MARKER'], 'w').write('yes')\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [b'']\n")
    r = run_cmd(["--check-config", "marked:app"], cwd=tmp_path,
                extra_env={"FC_MARKER": str(marker), "PYTHONDONTWRITEBYTECODE": "1"}, timeout=20)
    assert r.returncode == 0, r.stdout + r.stderr
    assert marker.read_text() == "yes"


@pytest.mark.parametrize("target", ["import_error:app", "no_such_module_xyz:app"])
def test_check_config_import_error(target):
    r = run_cmd(["--check-config", target], cwd=APPS)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "this_module_does_not_exist_anywhere" in out or "no_such_module_xyz" in out, out


def test_print_config_shows_cli_value():
    r = run_cmd(["-w", "3", "--print-config", "echo:app"], cwd=APPS)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^workers\s*=\s*3\s*$", r.stdout, re.M), r.stdout
    # a default is printed too
    assert re.search(r"^timeout\s*=\s*30\s*$", r.stdout, re.M), r.stdout

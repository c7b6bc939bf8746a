"""Settings layers: defaults < config file < GUNICORN_CMD_ARGS < command line; bad values."""
import os
import re

import pytest

from harness import is_gunicorn, run_cmd


def effective(r, name):
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"^%s\s*=\s*(.*?)\s*$" % re.escape(name), r.stdout, re.M)
    assert m, "%s not in --print-config output:\n%s" % (name, r.stdout)
    return m.group(1)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("GUNICORN_CMD_ARGS", "WEB_CONCURRENCY", "PORT")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


@pytest.fixture
def appdir(tmp_path):
    (tmp_path / "app.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Length', '2')])\n"
        "    return [b'ok']\n")
    return tmp_path


def test_default_value(appdir):
    r = run_cmd(["--print-config", "app:app"], cwd=appdir, env=clean_env())
    assert effective(r, "workers") == "1"
    assert effective(r, "keepalive") == "2"
    assert effective(r, "worker_connections") == "1000"
    assert effective(r, "max_requests") == "0"


def test_precedence_layers(appdir):
    cfg = appdir / "layers.py"
    cfg.write_text("workers = 2\ntimeout = 11\nkeepalive = 4\nmax_requests = 7\n")
    env = clean_env(GUNICORN_CMD_ARGS="--timeout 12 --keep-alive 5")
    r = run_cmd(["-c", str(cfg), "--keep-alive", "6", "--print-config", "app:app"],
                cwd=appdir, env=env)
    assert effective(r, "max_requests") == "7"   # config file over default
    assert effective(r, "workers") == "2"        # config file over default
    assert effective(r, "timeout") == "12"       # env over config file
    assert effective(r, "keepalive") == "6"      # command line over env and file
    assert effective(r, "graceful_timeout") == "30"  # untouched default


def test_default_config_file_from_cwd(appdir):
    (appdir / "gunicorn.conf.py").write_text("workers = 5\n")
    r = run_cmd(["--print-config", "app:app"], cwd=appdir, env=clean_env())
    assert effective(r, "workers") == "5"


def test_config_from_python_module(appdir):
    (appdir / "myconf.py").write_text("workers = 4\nthreads = 3\n")
    r = run_cmd(["-c", "python:myconf", "--print-config", "app:app"], cwd=appdir,
                env=clean_env(PYTHONPATH=str(appdir)))
    assert effective(r, "workers") == "4"
    assert effective(r, "threads") == "3"


def test_web_concurrency_sets_workers_default(appdir):
    r = run_cmd(["--print-config", "app:app"], cwd=appdir, env=clean_env(WEB_CONCURRENCY="3"))
    assert effective(r, "workers") == "3"
    r = run_cmd(["-w", "2", "--print-config", "app:app"], cwd=appdir,
                env=clean_env(WEB_CONCURRENCY="3"))
    assert effective(r, "workers") == "2"


def test_port_sets_default_bind(appdir):
    r = run_cmd(["--print-config", "app:app"], cwd=appdir, env=clean_env(PORT="8765"))
    assert "8765" in effective(r, "bind")
    r = run_cmd(["-b", "127.0.0.1:9999", "--print-config", "app:app"], cwd=appdir,
                env=clean_env(PORT="8765"))
    bind = effective(r, "bind")
    assert "9999" in bind and "8765" not in bind


# Gunicorn's argparse exits 2 on a bad command-line value; ferrocorn exits 1 like for every
# other configuration error. Both must name the setting.
BAD_CLI_CODES = {1, 2} if is_gunicorn() else {1}


def test_bad_cli_value(appdir):
    r = run_cmd(["-w", "abc", "app:app"], cwd=appdir, env=clean_env(), timeout=20)
    assert r.returncode in BAD_CLI_CODES, (r.returncode, r.stderr)
    assert "workers" in (r.stdout + r.stderr)
    assert "abc" in (r.stdout + r.stderr)


def test_bad_config_file_value(appdir):
    cfg = appdir / "bad.py"
    cfg.write_text('workers = "x"\n')
    r = run_cmd(["-c", str(cfg), "app:app"], cwd=appdir, env=clean_env(), timeout=20)
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert "workers" in (r.stdout + r.stderr)


def test_bad_gunicorn_cmd_args(appdir):
    r = run_cmd(["app:app"], cwd=appdir, env=clean_env(GUNICORN_CMD_ARGS="--workers abc"),
                timeout=20)
    assert r.returncode in BAD_CLI_CODES, (r.returncode, r.stderr)
    assert "workers" in (r.stdout + r.stderr)


def test_config_file_syntax_error(appdir):
    cfg = appdir / "syntax.py"
    cfg.write_text("bind = '127.0.0.1:1'\nworkers = (\n")
    r = run_cmd(["-c", str(cfg), "app:app"], cwd=appdir, env=clean_env(), timeout=20)
    assert r.returncode == 1
    out = r.stdout + r.stderr
    assert "syntax.py" in out and "line 2" in out, out

"""Real frameworks: the seed's Flask manage.py (three ways to start it) and a Django project."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from harness import REPO, free_port, get, run_cmd, wait_for

EXAMPLES = os.path.join(REPO, "examples")


@pytest.fixture
def flask_dir(tmp_path):
    pytest.importorskip("flask")
    shutil.copy(os.path.join(EXAMPLES, "manage.py"), tmp_path)
    return tmp_path


@pytest.mark.parametrize("target", ["manage:app", "manage:create_app()"])
def test_flask_manage(serve, flask_dir, target):
    srv = serve(target, "--workers=2", cwd=str(flask_dir))
    wait_for(lambda: len(srv.workers()) == 2, 15, what="2 workers")
    r = get(srv.addr)
    assert r.status == 200 and r.body == b"Hello from Flask\n"
    assert get(srv.addr, "/missing").status == 404


def test_flask_with_config_file(serve, flask_dir):
    port = free_port()
    conf = open(os.path.join(EXAMPLES, "gunicorn.conf.py")).read()
    conf = conf.replace("127.0.0.1:8000", "127.0.0.1:%d" % port)
    assert str(port) in conf
    (flask_dir / "gunicorn.conf.py").write_text(conf)
    srv = serve("manage:app", "-c", "gunicorn.conf.py", cwd=str(flask_dir), bind=[],
                addr=("127.0.0.1", port))
    assert get(srv.addr).body == b"Hello from Flask\n"
    wait_for(lambda: len(srv.workers()) == 2, 15, what="2 workers from the config file")
    env_threads = run_cmd(["-c", "gunicorn.conf.py", "--print-config", "manage:app"],
                          cwd=str(flask_dir)).stdout
    assert re.search(r"^threads\s*=\s*2\s*$", env_threads, re.M)


def test_example_config_values():
    r = run_cmd(["-c", "gunicorn.conf.py", "--print-config", "hello:app"], cwd=EXAMPLES)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^workers\s*=\s*2\s*$", r.stdout, re.M)
    assert re.search(r"^threads\s*=\s*2\s*$", r.stdout, re.M)
    assert "127.0.0.1:8000" in re.search(r"^bind\s*=.*$", r.stdout, re.M).group(0)


def test_hello_example(serve):
    srv = serve("hello:app", "--chdir", EXAMPLES)
    assert get(srv.addr).body == b"Hello, world!\n"


def test_django_startproject(serve, tmp_path):
    pytest.importorskip("django")
    admin = [sys.executable, "-m", "django", "startproject", "mysite", str(tmp_path)]
    subprocess.run(admin, check=True, timeout=60, capture_output=True)
    assert (tmp_path / "mysite" / "wsgi.py").exists()
    srv = serve("mysite.wsgi", "-w", "2", cwd=str(tmp_path))
    r = get(srv.addr, "/", headers=[("X-Ignored", "1")])
    assert r.status == 200, r
    assert b"The install worked successfully" in r.body
    r = get(srv.addr, "/admin/")
    assert r.status == 302 and "/admin/login/" in r.header("location")

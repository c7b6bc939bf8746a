"""The installed package as a user sees it: the version it reports, `python -m`, the typing files.

scripts/test runs these against the wheel installed in a fresh venv (and on every supported
Python), so they check what the wheel ships, not the source tree.
"""

import ast
import importlib
import importlib.metadata
import importlib.util
import inspect
import os
import shlex
import subprocess
import sys

import pytest

from harness import is_gunicorn, request, run_cmd

DIST = "gunicorn" if is_gunicorn() else "ferrocorn"


def test_version_is_the_installed_distribution_version():
    # `NAME (version X.Y.Z)`, X.Y.Z being what pip installed (the wheel's metadata), on stdout.
    r = run_cmd(["--version"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "%s (version %s)" % (DIST, importlib.metadata.version(DIST))


def test_python_dash_m_is_the_same_command(serve, monkeypatch):
    out = subprocess.run([sys.executable, "-m", DIST, "--version"], capture_output=True, text=True,
                         timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "%s (version %s)" % (DIST, importlib.metadata.version(DIST))
    # ... and it serves: `python -m ferrocorn APP` is a full server, not just a version printer.
    monkeypatch.setenv("FERROCORN_CMD", shlex.join([sys.executable, "-m", DIST]))
    srv = serve("hello_module")
    r = request(srv.addr, b"GET / HTTP/1.0\r\n\r\n")
    assert (r.status, r.body) == (200, b"hello from module app"), srv.logs()


def test_console_script_is_declared_in_the_metadata():
    eps = importlib.metadata.entry_points(group="console_scripts")
    (ep,) = [e for e in eps if e.name == DIST]
    assert ep.module.split(".")[0] == DIST


@pytest.mark.beyond_gunicorn
def test_version_attribute_matches_the_metadata():
    import ferrocorn

    assert ferrocorn.__version__ == importlib.metadata.version("ferrocorn")
    assert ferrocorn.SERVER_SOFTWARE == "ferrocorn/" + ferrocorn.__version__


@pytest.mark.beyond_gunicorn
def test_public_package_is_marked_typed():
    pkg = os.path.dirname(importlib.util.find_spec("ferrocorn").origin)
    assert os.path.isfile(os.path.join(pkg, "py.typed"))


def _stub_functions(path):
    """name -> parameter names, and the other names, that the stub file declares."""
    with open(path) as f:
        tree = ast.parse(f.read())
    funcs, others = {}, set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            funcs[node.name] = [a.arg for a in node.args.posonlyargs + node.args.args]
        elif isinstance(node, ast.AnnAssign):
            others.add(node.target.id)
        elif isinstance(node, ast.Assign):
            others.update(t.id for t in node.targets)
    return funcs, others


@pytest.mark.beyond_gunicorn
def test_native_module_stub_matches_the_module():
    # The stub ships beside the extension and declares exactly what the extension exports, with
    # the same parameter names: a function added to, renamed in or removed from `_core` without
    # its stub fails here.
    core = importlib.import_module("ferrocorn._core")
    stub = os.path.join(os.path.dirname(core.__file__), "_core.pyi")
    assert os.path.isfile(stub), "the wheel does not ship ferrocorn/_core.pyi"
    funcs, others = _stub_functions(stub)

    module_attrs = {"__doc__", "__file__", "__loader__", "__name__", "__package__", "__spec__", "__builtins__"}
    runtime = {n: v for n, v in vars(core).items() if n not in module_attrs}
    runtime_funcs = {n: v for n, v in runtime.items() if callable(v)}
    assert set(funcs) == set(runtime_funcs)
    assert others == set(runtime) - set(runtime_funcs)
    for name, fn in runtime_funcs.items():
        assert list(inspect.signature(fn).parameters) == funcs[name], name

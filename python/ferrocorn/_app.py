"""Importing the WSGI application named on the command line.

Accepted forms, as Gunicorn accepts them:

* ``module`` -- the variable ``application`` in ``module``
* ``module:name`` -- a variable
* ``module:factory()`` / ``module:factory('x', debug=True)`` -- a call with literal arguments
* ``paste:/abs/path.ini[#name]`` -- a PasteDeploy configuration (``--paste``); the core builds
  this form, which no module target can take since those never start with ``/``

Arguments are parsed with :mod:`ast` and evaluated with ``ast.literal_eval``: nothing in the
application string is ever executed as code.
"""

import ast
import importlib
import os
import re
import sys
import traceback

PASTE_PREFIX = "paste:"


class AppLoadError(Exception):
    """The application could not be loaded; ``str()`` is the message for the user.

    Raised when the module imports but the named object is missing, not callable, or its
    factory fails: Gunicorn's "App failed to load" (worker exit status 4).
    """


class AppImportError(AppLoadError):
    """The module itself could not be imported (missing, syntax error, error at import time):
    a worker boot failure in Gunicorn's terms (worker exit status 3)."""


def _parse_target(target, uri):
    try:
        expr = ast.parse(target.strip(), mode="eval").body
    except SyntaxError:
        raise AppLoadError(
            "Failed to parse %r as an attribute name or function call (in %r)." % (target, uri)
        ) from None

    if isinstance(expr, ast.Name):
        return expr.id, None, None
    if isinstance(expr, ast.Call):
        if not isinstance(expr.func, ast.Name):
            raise AppLoadError("Function reference must be a simple name: %r (in %r)." % (target, uri))
        try:
            args = [ast.literal_eval(arg) for arg in expr.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in expr.keywords}
        except ValueError:
            raise AppLoadError(
                "Failed to parse arguments as literal values: %r (in %r). Only literals such as "
                "strings, numbers, tuples, lists, dicts, True, False and None are allowed." % (target, uri)
            ) from None
        if any(kw.arg is None for kw in expr.keywords):
            raise AppLoadError("Argument unpacking (**) is not allowed: %r (in %r)." % (target, uri))
        return expr.func.id, args, kwargs
    raise AppLoadError("Failed to parse %r as an attribute name or function call (in %r)." % (target, uri))


def import_app(uri):
    """Returns the application object named by ``uri``; raises AppLoadError with a clear message."""
    module_name, sep, target = uri.partition(":")
    if not sep:
        target = "application"
    if not module_name:
        raise AppLoadError("No module name in %r: expected MODULE:VARIABLE." % uri)

    name, args, kwargs = _parse_target(target, uri)

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise AppImportError(
                "No module named %r (looked in the working directory %s and sys.path; see --chdir and --pythonpath)."
                % (module_name, sys.path[0] or ".")
            ) from None
        raise AppImportError("Failed to import %r:\n%s" % (module_name, traceback.format_exc().rstrip())) from None
    except BaseException:
        raise AppImportError("Failed to import %r:\n%s" % (module_name, traceback.format_exc().rstrip())) from None

    try:
        app = getattr(module, name)
    except AttributeError:
        raise AppLoadError("Failed to find attribute %r in %r." % (name, module_name)) from None

    if args is not None:
        if not callable(app):
            raise AppLoadError("%r in %r is not callable, so it cannot be called as a factory." % (name, module_name))
        try:
            app = app(*args, **kwargs)
        except TypeError as exc:
            raise AppLoadError(
                "Error calling the application factory %s:%s: %s\n%s"
                % (module_name, target, exc, traceback.format_exc().rstrip())
            ) from None
        except BaseException:
            raise AppLoadError(
                "Error calling the application factory %s:%s:\n%s"
                % (module_name, target, traceback.format_exc().rstrip())
            ) from None
        if app is None:
            raise AppLoadError("The application factory %s:%s returned None." % (module_name, target))

    if not callable(app):
        raise AppLoadError("Application object must be callable: %s:%s is a %s." % (module_name, name, type(app).__name__))
    return app


# `raw_paste_global_conf`, parsed by prepare_paste() in the master before any worker is forked.
_paste_global_conf = None


def _paste_deploy():
    try:
        from paste.deploy import loadapp
    except ImportError as exc:
        raise AppImportError(
            "--paste needs the PasteDeploy package, which cannot be imported (%s); "
            "install it with: pip install PasteDeploy" % exc
        ) from None
    return loadapp


def prepare_paste(raw_global_conf):
    """Checks that PasteDeploy is importable and parses ``raw_paste_global_conf``
    (``KEY=VALUE``, ``\\=`` for a literal ``=``); called by the core in the master."""
    global _paste_global_conf
    _paste_deploy()
    conf = {}
    for entry in raw_global_conf:
        parts = re.split(r"(?<!\\)=", entry, maxsplit=1)
        if len(parts) != 2:
            raise AppLoadError("raw_paste_global_conf (--paste-global): %r is not KEY=VALUE" % entry)
        key, value = (p.replace("\\=", "=") for p in parts)
        conf[key] = value
    _paste_global_conf = conf


def load_paste(config_uri):
    """The app a PasteDeploy file describes, loaded as Gunicorn loads it (relative to the
    working directory, with the ``raw_paste_global_conf`` values as global conf)."""
    loadapp = _paste_deploy()
    if ":" not in config_uri:
        config_uri = "config:" + config_uri
    try:
        app = loadapp(config_uri, relative_to=os.getcwd(), global_conf=_paste_global_conf)
    except BaseException:
        raise AppLoadError(
            "Failed to load the PasteDeploy application %r:\n%s" % (config_uri, traceback.format_exc().rstrip())
        ) from None
    if not callable(app):
        raise AppLoadError("The PasteDeploy application from %r is not callable: %r" % (config_uri, app))
    return app


def load(uri):
    """Entry point used by the Rust core: returns the app or raises AppLoadError."""
    if uri.startswith(PASTE_PREFIX + "/"):
        return load_paste(uri[len(PASTE_PREFIX):])
    return import_app(uri)

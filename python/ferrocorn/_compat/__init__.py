"""Compatibility with configs written for Gunicorn.

``install()`` (run by the ``ferrocorn`` command, in its own process only) adds a finder at the
end of ``sys.meta_path`` that answers ``import gunicorn`` with the small package in
``_compat/gunicorn/`` -- only when no real ``gunicorn`` can be imported, because every normal
finder is asked first. Configs that ``import gunicorn`` to set ``SERVER_SOFTWARE``, subclass
``gunicorn.glogging.Logger`` or name ``gunicorn.workers`` classes then keep loading after a
team drops gunicorn from its requirements.
"""

import importlib.abc
import importlib.util
import os
import sys

import ferrocorn

HERE = os.path.dirname(os.path.abspath(__file__))
SHIM = os.path.join(HERE, "gunicorn")

SERVER = "ferrocorn"
SERVER_SOFTWARE = "ferrocorn/" + ferrocorn.__version__


class GunicornFinder(importlib.abc.MetaPathFinder):
    """Finds the top-level ``gunicorn`` package in the compatibility directory; its
    submodules are then found on its ``__path__`` by the normal machinery."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "gunicorn":
            return None
        return importlib.util.spec_from_file_location(
            "gunicorn", os.path.join(SHIM, "__init__.py"), submodule_search_locations=[SHIM])

    def __repr__(self):
        return "<ferrocorn gunicorn compatibility finder>"


def install():
    if not any(isinstance(f, GunicornFinder) for f in sys.meta_path):
        sys.meta_path.append(GunicornFinder())


def is_shim(module):
    return getattr(module, "__file__", None) == os.path.join(SHIM, "__init__.py")


def server_names():
    """``(Server header, environ SERVER_SOFTWARE)``.

    Gunicorn sends ``gunicorn.SERVER`` as the Server header and puts ``gunicorn.SERVER_SOFTWARE``
    in the WSGI environ, read after the config ran, so a config that sets either changes it. The
    same holds here for the compatibility module and for a real gunicorn a config imported (its
    values count only when the config changed them from Gunicorn's own).
    """
    server, software = SERVER, SERVER_SOFTWARE
    mod = sys.modules.get("gunicorn")
    if mod is None:
        return server, software
    if is_shim(mod):
        defaults = (SERVER, SERVER_SOFTWARE)
    else:
        version = getattr(mod, "__version__", "")
        defaults = ("gunicorn", "gunicorn/%s" % version)
    value = getattr(mod, "SERVER", defaults[0])
    if isinstance(value, str) and value != defaults[0]:
        server = value
    value = getattr(mod, "SERVER_SOFTWARE", defaults[1])
    if isinstance(value, str) and value != defaults[1]:
        software = value
    return server, software

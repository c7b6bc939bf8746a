"""ferrocorn's stand-in for the ``gunicorn`` package, for configs written for Gunicorn.

Imported only when no real gunicorn is installed (see ``ferrocorn._compat``). It carries the
public pieces configs use: the version Gunicorn compatibility is measured against,
``SERVER`` (the Server response header) and ``SERVER_SOFTWARE`` (the WSGI environ value),
which a config may change, ``glogging.Logger`` and the ``workers`` class names.
"""

from ferrocorn._compat import SERVER, SERVER_SOFTWARE

# The Gunicorn release whose settings, hooks and logs ferrocorn follows.
version_info = (27, 0, 1)
__version__ = ".".join(str(v) for v in version_info)

__all__ = ["version_info", "__version__", "SERVER", "SERVER_SOFTWARE"]

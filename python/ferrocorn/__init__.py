"""ferrocorn: a pre-fork WSGI HTTP server with a Rust core.

The server lives in the private native module ``ferrocorn._core``; this package only holds
what has to be Python (running the config file, importing the application).
"""

from ferrocorn._core import __version__

SERVER_SOFTWARE = "ferrocorn/" + __version__

__all__ = ["__version__", "SERVER_SOFTWARE"]

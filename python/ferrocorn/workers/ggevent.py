"""``-k gevent``: the application runs in greenlets on a gevent hub.

After fork the worker calls ``monkey.patch_all()`` before importing the application, so its
blocking calls (``time.sleep``, sockets, ``requests`` to a backend) yield to the hub and up to
``worker_connections`` requests run concurrently in one process. With ``--preload`` the
application is imported in the master before any patching, exactly as with Gunicorn; patch in
the config file or at the top of the application module if that matters.
"""

from ferrocorn.workers import HubWorker, require, serve_lanes

gevent = require("gevent", "gevent", minimum=(1, 4))


class GeventWorker(HubWorker):
    name = "gevent"

    @classmethod
    def patch(cls):
        from gevent import monkey

        monkey.patch_all()
        # As Gunicorn does after fork: a hub inherited from the master must not be reused.
        gevent.hub.reinit()

    @classmethod
    def serve(cls, inbox):
        from gevent.queue import SimpleQueue
        from gevent.socket import wait_read

        serve_lanes(inbox, wait_read, gevent.spawn, SimpleQueue)


class GeventPyWSGIWorker(GeventWorker):
    """Gunicorn's pywsgi flavour; the engine parses HTTP for every class, so it is the same."""

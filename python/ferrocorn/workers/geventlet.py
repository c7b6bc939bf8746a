"""``-k eventlet``: the application runs in green threads on an eventlet hub.

After fork the worker calls ``eventlet.monkey_patch()`` before importing the application, so
blocking calls yield to the hub and up to ``worker_connections`` requests run concurrently in
one process. As with gevent, ``--preload`` imports the application in the master, unpatched.
"""

from ferrocorn.workers import HubWorker, require, serve_lanes

eventlet = require("eventlet", "eventlet", minimum=(0, 24, 1))


class EventletWorker(HubWorker):
    name = "eventlet"

    @classmethod
    def patch(cls):
        from eventlet import hubs

        hubs.use_hub()
        eventlet.monkey_patch()

    @classmethod
    def serve(cls, inbox):
        from eventlet.hubs import trampoline
        from eventlet.queue import LightQueue

        serve_lanes(inbox, lambda fd: trampoline(fd, read=True), eventlet.spawn, LightQueue)

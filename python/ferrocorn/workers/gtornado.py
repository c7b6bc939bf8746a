"""``-k tornado``: a Tornado IOLoop owns the worker's main thread.

As with Gunicorn's tornado worker, the application may be a ``tornado.web.Application``
(served natively: handlers, ``async`` handlers, ``self.write``/``self.finish``/``self.flush``)
or a WSGI callable, which runs to completion on the loop, one request at a time, as Tornado's
``WSGIContainer`` runs it. HTTP parsing, keep-alive and timeouts stay in ferrocorn's engine.
"""

from ferrocorn.workers import HubWorker, require

tornado = require("tornado", "tornado", minimum=(6, 0), version_attr="version")


class TornadoWorker(HubWorker):
    name = "tornado"

    @classmethod
    def serve(cls, inbox):
        import asyncio

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        finished = loop.create_future()
        fd = inbox.fileno()

        def on_wake():
            batch = inbox.take()
            if batch is None:
                loop.remove_reader(fd)
                if not finished.done():
                    finished.set_result(None)
                return
            # No greenlets here: every job runs to completion in this callback, and a native
            # Tornado request continues on the loop through its own callbacks.
            for _lane, job in batch:
                if job is not None:
                    job()

        loop.add_reader(fd, on_wake)
        loop.run_until_complete(finished)

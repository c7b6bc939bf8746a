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
    def adapt(cls, app):
        import tornado.web
        from tornado.wsgi import WSGIContainer

        if isinstance(app, tornado.web.Application):
            return app, True
        if isinstance(app, WSGIContainer):
            # The engine is the WSGI container here; unwrap to the app inside.
            return app.wsgi_application, False
        return app, False

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


# -- native Tornado applications ------------------------------------------------------------

from tornado import httputil  # noqa: E402
from tornado.concurrent import Future  # noqa: E402


class _Context:
    """What ``HTTPServerRequest`` reads from ``connection.context``."""

    def __init__(self, remote_ip, protocol):
        self.remote_ip = remote_ip
        self.protocol = protocol
        self.address = (remote_ip, 0)

    def __str__(self):
        return self.remote_ip


class _Connection(httputil.HTTPConnection):
    """Tornado's view of one request's connection; writes go to the engine through ``sink``.

    Futures returned by ``write_headers``/``write`` resolve once the engine has written the
    bytes to the client (or found it gone), which keeps ``await self.flush()`` meaningful.
    """

    def __init__(self, sink, context):
        self.context = context
        self._sink = sink
        self._close_callback = None

    def set_close_callback(self, callback):
        self._close_callback = callback

    def write_headers(self, start_line, headers, chunk=None):
        future = Future()
        if not self._sink.head(start_line.code, start_line.reason, list(headers.get_all()),
                               bytes(chunk or b""), future):
            _resolve(future)
        return future

    def write(self, chunk):
        future = Future()
        if not self._sink.data(bytes(chunk), future):
            _resolve(future)
        return future

    def finish(self):
        self._sink.finish()

    def _connection_lost(self):
        callback, self._close_callback = self._close_callback, None
        if callback is not None:
            callback()


def _resolve(future):
    if not future.done():
        future.set_result(None)


def start_request(app, sink, method, uri, version, headers, body, remote_ip, protocol):
    """Feeds one complete request to ``app`` as Tornado's HTTP server would; returns the
    connection object. The handler goes on running on the loop after this returns."""
    import asyncio

    conn = _Connection(sink, _Context(remote_ip, protocol))
    fields = httputil.HTTPHeaders()
    for name, value in headers:
        fields.add(name, value)
    delegate = app.start_request(None, conn)
    start_line = httputil.RequestStartLine(method, uri, version)

    def failed(exc):
        if isinstance(exc, httputil.HTTPInputError):
            sink.fail(400)
        else:
            import logging

            logging.getLogger("tornado.application").error(
                "Uncaught exception starting %s %s", method, uri, exc_info=exc)
            sink.fail(500)

    # A plain handler needs nothing awaited before it runs: start it now, in this callback.
    try:
        pending = delegate.headers_received(start_line, fields)
        if pending is not None:
            asyncio.ensure_future(_finish_after(delegate, pending, body, failed))
            return conn
        pending = delegate.data_received(body) if body else None
        if pending is not None:
            asyncio.ensure_future(_finish_after(delegate, pending, b"", failed))
            return conn
        delegate.finish()
    except Exception as exc:
        failed(exc)
    return conn


async def _finish_after(delegate, pending, body, failed):
    """The slow path (``stream_request_body`` handlers): await each step before the next."""
    try:
        await pending
        if body:
            pending = delegate.data_received(body)
            if pending is not None:
                await pending
        delegate.finish()
    except Exception as exc:
        failed(exc)

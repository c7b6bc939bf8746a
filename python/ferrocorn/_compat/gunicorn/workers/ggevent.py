from gunicorn.workers.base_async import AsyncWorker


class GeventWorker(AsyncWorker):
    ferrocorn_class = "gevent"


class GeventPyWSGIWorker(GeventWorker):
    ferrocorn_class = "gevent"

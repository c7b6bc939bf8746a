from gunicorn.workers.base_async import AsyncWorker


class EventletWorker(AsyncWorker):
    ferrocorn_class = "eventlet"

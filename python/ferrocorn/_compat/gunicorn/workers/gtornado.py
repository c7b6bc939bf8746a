from gunicorn.workers.base import Worker


class TornadoWorker(Worker):
    ferrocorn_class = "tornado"

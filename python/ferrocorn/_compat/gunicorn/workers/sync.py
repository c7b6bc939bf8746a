from gunicorn.workers.base import Worker


class SyncWorker(Worker):
    ferrocorn_class = "sync"

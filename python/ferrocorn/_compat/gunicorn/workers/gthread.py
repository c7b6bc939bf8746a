from gunicorn.workers.base import Worker


class ThreadWorker(Worker):
    ferrocorn_class = "gthread"

"""``-k sync``: one request at a time per worker, the application on the engine's thread."""

from ferrocorn.workers import Worker


class SyncWorker(Worker):
    """The default class. With ``--threads`` above 1 it becomes ``gthread``, as in Gunicorn."""

    name = "sync"

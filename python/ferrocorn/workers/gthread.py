"""``-k gthread``: ``--threads`` Python threads per worker run the application."""

from ferrocorn.workers import Worker


class ThreadWorker(Worker):
    """Up to ``threads`` requests in the application at once; idle keep-alive connections wait
    in the engine and cost no thread."""

    name = "gthread"

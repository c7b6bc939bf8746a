"""``gunicorn.workers.base.Worker``: a name only (see ``gunicorn.workers``)."""


class Worker:
    """Gunicorn's worker base class. ferrocorn cannot run Python worker classes; subclasses are
    refused at start."""

    ferrocorn_class = None

    def __init__(self, *args, **kwargs):
        raise RuntimeError("ferrocorn runs its workers in Rust; Python worker classes cannot run")

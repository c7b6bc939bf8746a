"""Worker classes, chosen with ``-k/--worker-class`` as in Gunicorn.

The Rust I/O engine accepts, parses and buffers for every class; a class only decides where
the application runs. ``sync`` and ``gthread`` need no Python here. ``gevent``, ``eventlet``
and ``tornado`` own the worker's main thread with their event loop, and these modules hold
the part that must be Python: patching the standard library, and running the loop that takes
work from the engine (see ``docs/workers.md``).

The class paths accepted by ``-k`` mirror Gunicorn's: ``ferrocorn.workers.ggevent.GeventWorker``
(or ``gunicorn.workers.ggevent.GeventWorker``, ``gevent``, ``egg:gunicorn#gevent``).
"""


class MissingLibrary(Exception):
    """The library a worker class runs on is not installed (or too old); ``str()`` says how
    to install it."""


def require(module, package, minimum=None, version_attr="__version__"):
    """Imports ``module`` for a worker class, or raises MissingLibrary with the pip command."""
    import importlib

    try:
        lib = importlib.import_module(module)
    except ImportError:
        raise MissingLibrary(
            "the %s worker class needs %s, which is not installed; install it with: pip install %s"
            % (package, package, package)
        ) from None
    if minimum is not None:
        found = _version_tuple(getattr(lib, version_attr, "0"))
        if found < minimum:
            raise MissingLibrary(
                "the %s worker class needs %s %s or newer (found %s); upgrade it with: "
                "pip install --upgrade %s"
                % (package, package, ".".join(map(str, minimum)), getattr(lib, version_attr, "?"), package)
            )
    return lib


def _version_tuple(text):
    parts = []
    for piece in str(text).split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


class Worker:
    """Base of ferrocorn's worker classes; the engine, not this object, serves requests."""

    #: The ``-k`` short name.
    name = None


class HubWorker(Worker):
    """A class whose event loop runs the application on the worker's main thread.

    The engine calls ``patch()`` after fork, before the application is imported, then
    ``serve(inbox)`` until the worker stops.
    """

    @classmethod
    def patch(cls):
        pass

    @classmethod
    def adapt(cls, app):
        """Returns ``(app, native)``: ``native`` is true for an app the class serves in its own
        protocol rather than WSGI."""
        return app, False

    @classmethod
    def serve(cls, inbox):
        raise NotImplementedError


def serve_lanes(inbox, wait_readable, spawn, make_queue):
    """The loop shared by the greenlet classes.

    ``inbox.take()`` returns ``(lane, job)`` pairs. Each lane is one request: its first job
    spawns a greenlet that runs every job of that lane in order, so the request keeps its
    greenlet (and greenlet-local state) until ``job`` is ``None``. Lane 0 runs here, in the
    driver, for the engine's liveness ping and for waking greenlets that wait on the engine
    (write() until its bytes are out): those wait on a ``make_queue()`` queue, which the
    engine has this loop ``put`` into. Returns when the engine has finished.
    """
    inbox.cooperate(make_queue)
    lanes = {}
    fd = inbox.fileno()
    while True:
        wait_readable(fd)
        batch = inbox.take()
        if batch is None:
            return
        for lane, job in batch:
            if lane == 0:
                job()
                continue
            queue = lanes.get(lane)
            if job is None:
                if queue is not None:
                    del lanes[lane]
                    queue.put(None)
            elif queue is None:
                queue = lanes[lane] = make_queue()
                spawn(_run_lane, queue, job)
            else:
                queue.put(job)


def _run_lane(queue, job):
    while job is not None:
        job()
        job = queue.get()


# Worker classes by (module, name) -> the -k name that runs them. Gunicorn's are listed whether
# the real package or ferrocorn's compatibility module defines them.
_KNOWN = {
    ("sync", "SyncWorker"): "sync",
    ("gthread", "ThreadWorker"): "gthread",
    ("ggevent", "GeventWorker"): "gevent",
    ("ggevent", "GeventPyWSGIWorker"): "gevent",
    ("geventlet", "EventletWorker"): "eventlet",
    ("gtornado", "TornadoWorker"): "tornado",
}
_BASES = {("base", "Worker"), ("base_async", "AsyncWorker")}


def _known(cls):
    module = getattr(cls, "__module__", "") or ""
    package, _, leaf = module.rpartition(".")
    if package not in ("gunicorn.workers", "ferrocorn.workers"):
        return None, False
    key = (leaf, getattr(cls, "__name__", ""))
    return _KNOWN.get(key), key in _BASES


def builtin_class_name(spec):
    """The ``-k`` name for a ``worker_class`` given as a class object, or as a dotted path the
    name table does not know. A built-in class itself is fine; a subclass of one is refused with
    a ValueError naming the built-in class to use (ferrocorn's workers run in Rust, so a Python
    worker class would never run)."""
    import importlib
    import inspect

    label = spec if isinstance(spec, str) else "%s.%s" % (getattr(spec, "__module__", "?"),
                                                          getattr(spec, "__qualname__", spec))
    cls = spec
    if isinstance(spec, str):
        module, _, name = spec.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), name)
        except Exception as exc:
            raise ValueError("unknown worker class %r (it cannot be imported: %s: %s); valid "
                             "classes are: sync, gthread, gevent, eventlet, tornado"
                             % (spec, type(exc).__name__, exc)) from None
    if not inspect.isclass(cls):
        raise ValueError("worker class %r is not a class" % label)
    for base in inspect.getmro(cls):
        name, is_base = _known(base)
        if name is None and not is_base:
            continue
        if base is cls and name is not None:
            return name
        what = "%s.%s" % (base.__module__, base.__name__)
        if name is not None:
            use = 'use worker_class = "%s"' % name
        else:
            use = "use one of the built-in classes (sync, gthread, gevent, eventlet, tornado)"
        raise ValueError(
            "worker class %r subclasses %s, but ferrocorn runs its workers in Rust and cannot run "
            "a Python worker class: %s, and move what the subclass adds (patching a driver, "
            "setting up state) into a post_fork or post_worker_init hook" % (label, what, use))
    raise ValueError("worker class %r is not one of ferrocorn's worker classes; valid classes "
                     "are: sync, gthread, gevent, eventlet, tornado" % label)

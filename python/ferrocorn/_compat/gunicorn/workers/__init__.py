"""``gunicorn.workers``: the names of Gunicorn's worker classes.

ferrocorn's workers run in Rust, so these classes are names only: ``worker_class`` may point
at them (``gunicorn.workers.ggevent.GeventWorker`` means ``gevent``), and a class that
subclasses one is refused at start with the built-in class to use instead.
"""

SUPPORTED_WORKERS = {
    "sync": "gunicorn.workers.sync.SyncWorker",
    "gthread": "gunicorn.workers.gthread.ThreadWorker",
    "gevent": "gunicorn.workers.ggevent.GeventWorker",
    "gevent_wsgi": "gunicorn.workers.ggevent.GeventPyWSGIWorker",
    "gevent_pywsgi": "gunicorn.workers.ggevent.GeventPyWSGIWorker",
    "eventlet": "gunicorn.workers.geventlet.EventletWorker",
    "tornado": "gunicorn.workers.gtornado.TornadoWorker",
}

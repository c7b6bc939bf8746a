# The part of Airflow's webserver gunicorn config that its GunicornMonitor depends on, restated:
# once a worker has loaded the app, a hook prefixes the worker's process title with a ready
# marker using the setproctitle package, and the monitor counts workers whose command line
# (as /proc/PID/cmdline shows it) carries that marker.
import setproctitle

GUNICORN_WORKER_READY_PREFIX = "[ready] "


def post_worker_init(_):
    old_title = setproctitle.getproctitle()
    setproctitle.setproctitle(GUNICORN_WORKER_READY_PREFIX + old_title)


def on_starting(server):
    # Airflow loads its providers here, before forking; nothing to load in the test.
    pass

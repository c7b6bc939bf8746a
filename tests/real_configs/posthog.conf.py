# The logging part of PostHog's published gunicorn.config.py, restated: a terse loglevel, and
# a logconfig_dict (a copy of Gunicorn's defaults) that turns on disable_existing_loggers and
# names gunicorn.error / gunicorn.access with their own non-propagating handlers. PostHog
# renders through structlog; a plain formatter with a marker stands in for it here.
loglevel = "error"
keepalive = 120
timeout = 15

logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": True,
    "formatters": {
        "default": {"format": "posthog-fmt %(name)s %(levelname)s %(message)s"},
    },
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False,
                           "qualname": "gunicorn.error"},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False,
                            "qualname": "gunicorn.access"},
    },
    "handlers": {
        "error_console": {"class": "logging.StreamHandler", "formatter": "default",
                          "stream": "ext://sys.stderr"},
        "console": {"class": "logging.StreamHandler", "formatter": "default",
                    "stream": "ext://sys.stdout"},
    },
}


def when_ready(server):
    server.log.info("posthog when_ready ran")


def post_fork(server, worker):
    worker.log.info("posthog post_fork ran in %s", worker.pid)

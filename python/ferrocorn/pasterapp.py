"""The PasteDeploy server runner, for ``pserve development.ini`` with

    [server:main]
    use = egg:ferrocorn#main
    host = 127.0.0.1
    port = 6543
    workers = 2

as Gunicorn's ``egg:gunicorn#main`` runs. The section's keys are ferrocorn settings (values as
strings, as in the ini); ``host``/``port`` become ``bind``; ``config`` names a ferrocorn config
file read first (else ``./gunicorn.conf.py`` when present). The section's values win over that
file.

ferrocorn's workers load the application themselves, so the runner replaces the ``pserve``
process with ``ferrocorn --paste FILE`` and the app PasteDeploy already loaded here is not
used: the workers load the file's ``main`` application again.
"""

import json
import os
import sys

# The environment variable that carries the server section to `ferrocorn._paste_server_conf`.
ENV = "FERROCORN_PASTE_SERVER"


def serve(app, global_conf, **local_conf):
    config_file = global_conf["__file__"]
    settings = {k.lower(): v for k, v in local_conf.items() if v is not None}
    user_config = settings.pop("config", None)
    host = settings.pop("host", "")
    port = settings.pop("port", "")
    if host and port:
        settings["bind"] = "%s:%s" % (host, port)
    elif host:
        settings["bind"] = host.split(",")
    if user_config is None and os.path.exists("gunicorn.conf.py"):
        user_config = os.path.abspath("gunicorn.conf.py")
    os.environ[ENV] = json.dumps({"config": user_config, "settings": settings})
    argv = [sys.executable, "-m", "ferrocorn", "-c", "python:ferrocorn._paste_server_conf",
            "--paste", os.path.abspath(config_file)]
    # pserve's `name=value` arguments are in the global conf: hand them on, since the workers
    # load the file again.
    for key, value in global_conf.items():
        if key not in ("__file__", "here") and isinstance(value, str):
            argv += ["--paste-global", "%s=%s" % (key.replace("=", "\\="), value)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)

"""``gunicorn.app`` (embedding Gunicorn in a Python program) is not provided: ferrocorn's
compatibility module only exists inside the ``ferrocorn`` command, which is what runs a
config. Start the application with ``ferrocorn -c CONFIG MODULE:APP`` instead."""

raise ImportError(
    "gunicorn.app (BaseApplication, embedding the server in a Python program) is not provided "
    "by ferrocorn's gunicorn compatibility module; run the ferrocorn command with a config file")

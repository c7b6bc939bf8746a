"""Starts a single-process peer that has no command of its own: `single.py bjoern|meinheld MODULE PORT`.

Both serve the app from one process, as they are normally run; the harness notes that in the table.
"""
import importlib
import os
import sys


def main():
    server, module, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sys.path.insert(0, os.getcwd())  # the apps directory, as the other servers import from it
    app = importlib.import_module(module).app
    if server == "bjoern":
        import bjoern
        bjoern.run(app, "127.0.0.1", port)
    elif server == "meinheld":
        from meinheld import server as meinheld
        meinheld.set_access_logger(None)
        meinheld.listen(("127.0.0.1", port))
        meinheld.run(app)
    else:
        sys.exit(f"single.py: unknown server {server!r}")


if __name__ == "__main__":
    main()

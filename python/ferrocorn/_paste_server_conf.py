"""The config module `ferrocorn.pasterapp.serve` runs ferrocorn with: the user's config file
(if any), then the PasteDeploy server section's settings over it."""

import json
import os
import runpy

_spec = json.loads(os.environ.get("FERROCORN_PASTE_SERVER") or "{}")
if _spec.get("config"):
    _path = _spec["config"]
    if _path.startswith("python:"):
        globals().update(vars(__import__(_path[len("python:"):], fromlist=["_"])))
    else:
        globals().update({k: v for k, v in runpy.run_path(_path.removeprefix("file:")).items()
                          if not k.startswith("__")})
globals().update(_spec.get("settings", {}))

"""The objects server hooks receive: ``server``, ``worker``, ``req`` and ``resp``.

Config files written for Gunicorn read a handful of attributes from these (``server.log.info``,
``worker.pid``, ``req.path``, ``resp.status``...). The Rust core creates them and keeps their
attributes current; they hold plain data, never a socket.
"""

import glob
import os
import signal
import sys
import traceback

from ferrocorn import _core

_LEVELS = {
    "debug": 10,
    "info": 20,
    "warning": 30,
    "error": 40,
    "critical": 50,
}


def _render(msg, args):
    msg = str(msg)
    if args:
        try:
            return msg % args
        except (TypeError, ValueError, KeyError):
            return " ".join([msg] + [str(a) for a in args])
    return msg


class Log:
    """A logger with Gunicorn's interface, writing to ferrocorn's error log."""

    def _emit(self, level, msg, args, exc_info=False):
        text = _render(msg, args)
        if exc_info:
            text = text + "\n" + traceback.format_exc().rstrip()
        _core.log(level, text)

    def debug(self, msg, *args, **kwargs):
        self._emit(10, msg, args, kwargs.get("exc_info", False))

    def info(self, msg, *args, **kwargs):
        self._emit(20, msg, args, kwargs.get("exc_info", False))

    def warning(self, msg, *args, **kwargs):
        self._emit(30, msg, args, kwargs.get("exc_info", False))

    warn = warning

    def error(self, msg, *args, **kwargs):
        self._emit(40, msg, args, kwargs.get("exc_info", False))

    def critical(self, msg, *args, **kwargs):
        self._emit(50, msg, args, kwargs.get("exc_info", False))

    def exception(self, msg, *args, **kwargs):
        self._emit(40, msg, args, True)

    def log(self, lvl, msg, *args, **kwargs):
        if isinstance(lvl, str):
            lvl = _LEVELS.get(lvl.lower(), 20)
        level = 10 if lvl < 20 else 20 if lvl < 30 else 30 if lvl < 40 else 40 if lvl < 50 else 50
        self._emit(level, msg, args, kwargs.get("exc_info", False))

    def reopen_files(self):
        _core.reopen_logs()

    def close_on_exec(self):
        pass

    def access(self, resp, req, environ, request_time):
        pass


class Setting:
    """``cfg.settings[name]``: some config files read ``.value`` from here."""

    def __init__(self, name, value):
        self.name = name
        self.value = value

    def get(self):
        return self.value

    def __repr__(self):
        return "<Setting %s=%r>" % (self.name, self.value)


class Config:
    """Read-only attribute view of the effective settings (``server.cfg.workers``)."""

    def __init__(self, values):
        object.__setattr__(self, "_values", dict(values))
        object.__setattr__(self, "settings", {k: Setting(k, v) for k, v in values.items()})

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError("no setting named %r" % name) from None

    def __setattr__(self, name, value):
        raise AttributeError("settings are read-only here; change them in the config file")

    def get(self, name, default=None):
        return self._values.get(name, default)

    @property
    def worker_class_str(self):
        return str(self._values.get("worker_class"))

    @property
    def address(self):
        return list(self._values.get("bind") or [])

    @property
    def is_ssl(self):
        return bool(self._values.get("certfile") or self._values.get("keyfile"))

    @property
    def proc_name(self):
        return self._values.get("proc_name") or self._values.get("default_proc_name")

    def __repr__(self):
        return "<ferrocorn Config %d settings>" % len(self._values)


class Server:
    """The master as hooks see it (Gunicorn's arbiter object)."""

    def __init__(self, cfg, proc_name, app_uri):
        self.cfg = cfg
        self.log = Log()
        self.pid = 0
        self.num_workers = 0
        self.proc_name = proc_name
        self.app_uri = app_uri
        self.WORKERS = {}
        self.LISTENERS = []
        self.master_name = "Master"
        self.reexec_pid = 0
        self.master_pid = 0

    def __repr__(self):
        return "<ferrocorn Server pid=%s workers=%s>" % (self.pid, self.num_workers)


class Worker:
    """A worker as hooks see it, in the master and in the worker itself."""

    def __init__(self, age, ppid, cfg, log):
        self.age = age
        self.ppid = ppid
        self.pid = 0
        self.cfg = cfg
        self.log = log
        self.alive = True
        self.booted = False
        self.aborted = False
        self.nr = 0
        self.max_requests = 0
        self.timeout = 0
        self.app = None
        self.wsgi = None

    def notify(self):
        """Gunicorn workers call this to heartbeat; ferrocorn's engine does it by itself."""

    def __repr__(self):
        return "<ferrocorn Worker %s>" % self.pid


class Request:
    """An HTTP request as ``pre_request``/``post_request`` see it."""

    def __init__(self, method, uri, path, query, fragment, version, headers, scheme, peer_addr):
        self.method = method
        self.uri = uri
        self.path = path
        self.query = query
        self.fragment = fragment
        self.version = version
        self.headers = headers
        self.scheme = scheme
        self.peer_addr = peer_addr
        self.remote_addr = peer_addr
        self.trailers = []

    def __repr__(self):
        return "<ferrocorn Request %s %s>" % (self.method, self.uri)


class Response:
    """The response as ``post_request`` sees it."""

    def __init__(self, status, headers, response_length, sent, version):
        self.status = status
        try:
            self.status_code = int(status.split()[0])
        except (ValueError, IndexError):
            self.status_code = None
        self.headers = headers
        self.response_length = response_length
        self.sent = sent
        self.headers_sent = True
        self.version = version

    def __repr__(self):
        return "<ferrocorn Response %s>" % self.status


__all__ = ["Log", "Config", "Server", "Worker", "Request", "Response", "Setting"]


def _request_of(frame):
    """The WSGI environ of the request a stack is serving: the outermost frame with an
    ``environ`` local that looks like one (the app's own ``(environ, start_response)``)."""
    found = None
    while frame is not None:
        env = frame.f_locals.get("environ") if frame.f_locals is not None else None
        if isinstance(env, dict) and "REQUEST_METHOD" in env:
            found = env
        frame = frame.f_back
    return found


def _describe(env):
    if env is None:
        return "no request (outside the app)"
    path = env.get("RAW_URI") or (env.get("PATH_INFO", "") + (
        "?" + env["QUERY_STRING"] if env.get("QUERY_STRING") else ""))
    # One line whatever the client sent: repr-style escapes for anything unprintable.
    text = "%s %s" % (env.get("REQUEST_METHOD", "?"), path)
    return text.encode("unicode_escape", "backslashreplace").decode("ascii", "replace")


def report_stuck(frame, running_for):
    """Logs what a timed-out worker was doing, before it exits: for each thread inside the app
    (``frame`` is the interrupted frame of a sync worker; ``None`` means look at every thread),
    the request's method and path, how long it has run (when known) and its Python stack."""
    import threading
    if frame is not None:
        frames = [(threading.current_thread().name, frame)]
    else:
        me = threading.get_ident()
        names = {t.ident: t.name for t in threading.enumerate()}
        frames = [(names.get(ident, str(ident)), f) for ident, f in sys._current_frames().items()
                  if ident != me]
    pid = os.getpid()
    reported = 0
    for name, f in frames:
        env = _request_of(f)
        if env is None and frame is None:
            continue  # an idle pool thread: not in the app
        took = ""
        if running_for is not None:
            try:
                took = " after %.1fs" % running_for()
            except Exception:
                pass
        stack = "".join(traceback.format_stack(f)).rstrip()
        _core.log(40, "Worker (pid:%d) timed out in %s%s (%s); the app was at:\n"
                      "Traceback (most recent call last):\n%s" % (pid, _describe(env), took, name, stack))
        reported += 1
    if not reported:
        _core.log(40, "Worker (pid:%d) timed out; no request was in the app" % pid)


def report_request_timeout(method, uri, port, running, limit):
    """Logs a request that has stayed in the app past ``request_timeout``: its method, path and
    running time, and the Python stack of the thread or greenlet still running it (found by its
    environ: method, ``RAW_URI`` and, to tell identical requests apart, ``REMOTE_PORT``)."""
    import threading
    names = {t.ident: t.name for t in threading.enumerate()}
    # Not threading.get_ident(): gevent's patching makes it a greenlet's id. The thread running
    # this report is the one whose current stack holds this very frame.
    here = sys._getframe()
    frames = [(names.get(ident, "thread %s" % ident), f) for ident, f in sys._current_frames().items()
              if not _holds(f, here)]
    greenlet = sys.modules.get("greenlet")
    if greenlet is not None:
        import gc
        # A suspended greenlet is no thread: its frame is only reachable from the object.
        for g in gc.get_objects():
            if isinstance(g, greenlet.greenlet) and getattr(g, "gr_frame", None) is not None:
                frames.append(("greenlet %#x" % id(g), g.gr_frame))
    found, loose = [], []
    for name, f in frames:
        env = _request_of(f)
        if env is not None and env.get("REQUEST_METHOD") == method and env.get("RAW_URI") == uri:
            found.append((name, f, env))
        elif env is None and _in_app(f):
            # Pulling the body of a response (a generator, an iterable): the app's call, and
            # its environ, are gone from the stack.
            loose.append((name, f, None))
    same_port = [x for x in found if port is not None and str(x[2].get("REMOTE_PORT")) == port]
    found = same_port or found
    what = _describe({"REQUEST_METHOD": method, "RAW_URI": uri})
    head = "Request timed out in %s after %.1fs in the app (request_timeout is %gs); worker (pid:%d) will be " \
           "replaced" % (what, running, limit, os.getpid())
    if not found and len(loose) > 1:
        head += "; producing its body, so one of these %d" % len(loose)
    found = found or loose
    if not found:
        _core.log(40, head + "; the app's stack was not found (it has just returned, or is in native code)")
    for name, f, env in found:
        stack = "".join(traceback.format_stack(f)).rstrip()
        _core.log(40, "%s (%s); the app was at:\nTraceback (most recent call last):\n%s" % (head, name, stack))


def _holds(frame, target):
    while frame is not None:
        if frame is target:
            return True
        frame = frame.f_back
    return False


_SERVER_DIRS = tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep
                     for m in [sys.modules[__name__.rpartition(".")[0]]])


def _in_app(frame):
    """Whether a stack runs application code: some frame outside ferrocorn's own files and the
    event-loop libraries (an idle lane greenlet waits in those only)."""
    dirs = _SERVER_DIRS + tuple(
        os.path.dirname(os.path.abspath(m.__file__)) + os.sep
        for m in (sys.modules.get("gevent"), sys.modules.get("eventlet"), sys.modules.get("greenlet"))
        if m is not None and getattr(m, "__file__", None))
    while frame is not None:
        if not os.path.abspath(frame.f_code.co_filename).startswith(dirs):
            return True
        frame = frame.f_back
    return False


def install_sync_handlers(worker, worker_int, worker_abort, wakeup_fd, running_for=None):
    """INT/QUIT and SIGABRT (the master's timeout) in a sync worker, as Gunicorn's worker has them.

    The sync class runs the app on the main thread, where a Python-level handler can interrupt a
    stuck request: the hook runs, then ``sys.exit`` unwinds the app and the worker exits. The
    wake-up fd lets the idle event loop run the handlers at once, too.
    """

    def run_hook(hook, name):
        if hook is not None:
            try:
                hook(worker)
            except Exception:
                _core.log(40, "Exception in %s hook\n%s" % (name, traceback.format_exc().rstrip()))

    def on_quit(signum, frame):
        worker.alive = False
        run_hook(worker_int, "worker_int")
        sys.exit(0)

    def on_abort(signum, frame):
        worker.alive = False
        worker.aborted = True
        try:
            report_stuck(frame, running_for)
        except Exception:
            _core.log(40, "cannot report what the worker was doing\n%s" % traceback.format_exc().rstrip())
        run_hook(worker_abort, "worker_abort")
        sys.exit(1)

    signal.signal(signal.SIGINT, on_quit)
    signal.signal(signal.SIGQUIT, on_quit)
    signal.signal(signal.SIGABRT, on_abort)
    signal.set_wakeup_fd(wakeup_fd, warn_on_full_buffer=False)


def module_files():
    """Source files of every imported module (what ``--reload`` watches)."""
    files = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if path:
            files.append(path)
    return files


def expand_globs(patterns):
    out = []
    for p in patterns:
        out.extend(glob.glob(p, recursive=True) or [])
    return out

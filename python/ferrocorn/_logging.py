"""Python ``logging`` integration: the ``gunicorn.error`` / ``gunicorn.access`` loggers.

ferrocorn writes its logs from Rust. Python code still expects Gunicorn's loggers to exist:
Flask and Django setups copy ``logging.getLogger("gunicorn.error").handlers`` onto their own
logger, and deployments configure logging with ``logconfig``/``logconfig_dict``/``logconfig_json``,
``logger_class`` or syslog. This module serves both cases:

* Fast path (no Python logging configured): ``install_fast_handlers`` gives ``gunicorn.error`` a
  handler that formats records as Gunicorn does and hands the text to the Rust error log, so an
  app logging through those handlers lands in the same file, in the same line format. Server
  messages never pass through here.
* Python path: ``make_logger`` builds a logger object with Gunicorn's logger interface (the
  built-in ``Logger`` below, or the user's ``logger_class``), and the Rust core sends every
  error-log message and access record through it.

The loggers ``ferrocorn.error`` and ``ferrocorn.access`` are aliases that hand their records to the
gunicorn ones (see ``_Alias``).
"""

import base64
import binascii
import datetime
import importlib
import json
import logging
import logging.config
import logging.handlers
import os
import socket
import sys
import threading
import time
import traceback

from ferrocorn import _core

ERROR_FMT = "%(asctime)s [%(process)d] [%(levelname)s] %(message)s"
DATE_FMT = "[%Y-%m-%d %H:%M:%S %z]"
ACCESS_FMT = "%(message)s"
SYSLOG_FMT = "[%(process)d] %(message)s"

LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
}

# Facility numbers by name, as syslog(3) defines them ("security" is the old name of "auth").
SYSLOG_FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "security": 4, "syslog": 5,
    "lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
    "local0": 16, "local1": 17, "local2": 18, "local3": 19,
    "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

# The base configuration that logconfig_dict / logconfig_json are merged over (a shallow
# update, as Gunicorn does), and the defaults handed to fileConfig.
CONFIG_DEFAULTS = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": True,
                           "qualname": "gunicorn.error"},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": True,
                            "qualname": "gunicorn.access"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "generic",
                    "stream": "ext://sys.stdout"},
        "error_console": {"class": "logging.StreamHandler", "formatter": "generic",
                          "stream": "ext://sys.stderr"},
    },
    "formatters": {
        "generic": {"format": ERROR_FMT, "datefmt": DATE_FMT, "class": "logging.Formatter"},
    },
}

# Class paths that mean "the standard logger" (statsd is sent from Rust whatever the class).
BUILTIN_CLASSES = {
    "gunicorn.glogging.Logger", "simple", "egg:gunicorn#simple",
    "gunicorn.instrument.statsd.Statsd", "ferrocorn._logging.Logger",
}


class _Alias(logging.Logger):
    """Another name for a logger: ``ferrocorn.error`` for ``gunicorn.error``.

    A logger object of its own rather than the target stored under a second name: a logging
    config disables every existing logger it does not name (``disable_existing_loggers``) and
    resets the children of those it names, and an entry that *is* the target would take the
    target down with it although the config named it. So the alias has its own entry, level
    and handlers; its on/off state follows the target's (logging.config's writes to it are
    ignored), and records go to the target unless a config gave the alias handlers itself.
    """

    _target = None

    @property
    def disabled(self):
        return self._target is not None and self._target.disabled

    @disabled.setter
    def disabled(self, value):
        pass

    def getEffectiveLevel(self):
        if self.level or self._target is None:
            return super().getEffectiveLevel()
        return self._target.getEffectiveLevel()

    def handle(self, record):
        if self._target is None or self.handlers:
            super().handle(record)
        elif self.filter(record):
            self._target.handle(record)


def _alias(name, target):
    """Make ``logging.getLogger(name)`` an alias of the logger ``target`` (see ``_Alias``)."""
    logger = logging.getLogger(name)
    if not isinstance(logger, _Alias):
        cls = type(logger)
        # A logger created earlier (or by a class set with logging.setLoggerClass) becomes the
        # alias in place, so references to it taken before keep working.
        logger.__class__ = _Alias if cls is logging.Logger else type("Alias" + cls.__name__, (_Alias, cls), {})
    logger._target = logging.getLogger(target)
    logger.manager._clear_cache()
    return logger


def _aliases():
    _alias("ferrocorn.error", "gunicorn.error")
    _alias("ferrocorn.access", "gunicorn.access")


class ErrorLogHandler(logging.Handler):
    """Writes formatted records to the server's error log (one write per record), so they share
    its file, its reopen on SIGUSR1 and its line format."""

    def __init__(self, level=logging.NOTSET):
        super().__init__(level)
        self.setFormatter(logging.Formatter(ERROR_FMT, DATE_FMT))
        self._ferrocorn = True

    def emit(self, record):
        try:
            if _core._log_is_json():
                # --log-format json: the Rust side writes the record as one JSON object.
                _core.log(record.levelno, _PLAIN.format(record))
            else:
                _core._write_error_log(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


# The message with its traceback, without the text line's time/pid/level prefix.
_PLAIN = logging.Formatter("%(message)s")


def install_fast_handlers(loglevel):
    """The fast path: ``gunicorn.error`` at the configured level, with a handler that writes
    to the Rust error log. Called once in the master, before workers are forked."""
    _aliases()
    log = logging.getLogger("gunicorn.error")
    log.propagate = False
    log.setLevel(LEVELS.get(str(loglevel).lower(), logging.INFO))
    for h in list(log.handlers):
        if getattr(h, "_ferrocorn", False):
            log.removeHandler(h)
    log.addHandler(ErrorLogHandler())
    logging.getLogger("gunicorn.access").propagate = False


def parse_syslog_address(addr):
    """``(socktype, address)`` for SysLogHandler from ``unix://PATH[#dgram|#stream]``,
    ``udp://HOST[:PORT]`` or ``tcp://HOST[:PORT]`` (port 514 when omitted)."""
    if addr.startswith("unix://"):
        path, _, kind = addr[len("unix://"):].partition("#")
        socktype = {"dgram": socket.SOCK_DGRAM, "stream": socket.SOCK_STREAM}.get(kind)
        return socktype, path
    for scheme, socktype in (("udp://", socket.SOCK_DGRAM), ("tcp://", socket.SOCK_STREAM)):
        if addr.startswith(scheme):
            rest = addr[len(scheme):]
            break
    else:
        raise RuntimeError("invalid syslog address %r: expected unix://, udp:// or tcp://" % addr)
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else ""
    else:
        host, _, port = rest.partition(":")
    host = (host or "localhost").lower()
    if port and not port.isdigit():
        raise RuntimeError("%r is not a valid port number." % port)
    return socktype, (host, int(port) if port else 514)


class SafeAtoms(dict):
    """Access-log atoms for ``format % atoms``: ``"`` escaped in strings, ``{...}`` keys looked
    up case-insensitively, and any unknown atom printed as ``-``."""

    def __init__(self, atoms):
        super().__init__()
        for k, v in atoms.items():
            self[k] = v.replace('"', '\\"') if isinstance(v, str) else v

    def __getitem__(self, key):
        if key.startswith("{"):
            key = key.lower()
        return super().__getitem__(key) if key in self else "-"


class Logger:
    """A logger with Gunicorn's interface (``gunicorn.glogging.Logger``), for the Python path."""

    LOG_LEVELS = LEVELS
    loglevel = logging.INFO
    error_fmt = ERROR_FMT
    datefmt = DATE_FMT
    access_fmt = ACCESS_FMT
    syslog_fmt = SYSLOG_FMT
    atoms_wrapper_class = SafeAtoms

    def __init__(self, cfg):
        _aliases()
        self.error_log = logging.getLogger("gunicorn.error")
        self.error_log.propagate = False
        self.access_log = logging.getLogger("gunicorn.access")
        self.access_log.propagate = False
        self.lock = threading.Lock()
        self.cfg = cfg
        self.setup(cfg)

    def setup(self, cfg):
        self.cfg = cfg
        self.loglevel = self.LOG_LEVELS.get(cfg.loglevel.lower(), logging.INFO)
        self.error_log.setLevel(self.loglevel)
        self.access_log.setLevel(logging.INFO)
        for log in (self.error_log, self.access_log):
            for h in list(log.handlers):
                if getattr(h, "_gunicorn", False) or getattr(h, "_ferrocorn", False):
                    log.removeHandler(h)
        # capture_output is done by the Rust core (fds 1 and 2 onto the error log file).
        self._set_handler(self.error_log, cfg.errorlog, logging.Formatter(self.error_fmt, self.datefmt),
                          stream=sys.stderr)
        if cfg.accesslog is not None:
            self._set_handler(self.access_log, cfg.accesslog, logging.Formatter(self.access_fmt),
                              stream=sys.stdout)
        if cfg.syslog:
            self._set_syslog_handler(self.error_log, cfg, self.syslog_fmt, "error")
            if not cfg.disable_redirect_access_to_syslog:
                self._set_syslog_handler(self.access_log, cfg, self.syslog_fmt, "access")

        if cfg.logconfig_dict:
            config = dict(CONFIG_DEFAULTS)
            config.update(cfg.logconfig_dict)
            try:
                logging.config.dictConfig(config)
            except (AttributeError, ImportError, ValueError, TypeError) as exc:
                raise RuntimeError(str(exc)) from exc
        elif cfg.logconfig_json:
            config = dict(CONFIG_DEFAULTS)
            if os.path.exists(cfg.logconfig_json):
                try:
                    with open(cfg.logconfig_json) as f:
                        config.update(json.load(f))
                    logging.config.dictConfig(config)
                except (json.JSONDecodeError, AttributeError, ImportError, ValueError,
                        TypeError) as exc:
                    raise RuntimeError(str(exc)) from exc
        elif cfg.logconfig:
            if not os.path.exists(cfg.logconfig):
                raise RuntimeError("Error: log config '%s' not found" % cfg.logconfig)
            defaults = dict(CONFIG_DEFAULTS)
            defaults["__file__"] = cfg.logconfig
            defaults["here"] = os.path.dirname(cfg.logconfig)
            logging.config.fileConfig(cfg.logconfig, defaults=defaults,
                                      disable_existing_loggers=False)

    # -- error log --
    def critical(self, msg, *args, **kwargs):
        self.error_log.critical(msg, *args, **kwargs)

    def error(self, msg, *args, **kwargs):
        self.error_log.error(msg, *args, **kwargs)

    def warning(self, msg, *args, **kwargs):
        self.error_log.warning(msg, *args, **kwargs)

    def info(self, msg, *args, **kwargs):
        self.error_log.info(msg, *args, **kwargs)

    def debug(self, msg, *args, **kwargs):
        self.error_log.debug(msg, *args, **kwargs)

    def exception(self, msg, *args, **kwargs):
        self.error_log.exception(msg, *args, **kwargs)

    def log(self, lvl, msg, *args, **kwargs):
        if isinstance(lvl, str):
            lvl = self.LOG_LEVELS.get(lvl.lower(), logging.INFO)
        self.error_log.log(lvl, msg, *args, **kwargs)

    # -- access log --
    @property
    def access_log_enabled(self):
        cfg = self.cfg
        return bool(cfg.accesslog or cfg.logconfig or cfg.logconfig_dict or cfg.logconfig_json
                    or (cfg.syslog and not cfg.disable_redirect_access_to_syslog))

    def now(self):
        return time.strftime("[%d/%b/%Y:%H:%M:%S %z]")

    def atoms(self, resp, req, environ, request_time):
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        secs, micros = request_time.seconds, request_time.microseconds
        atoms = {
            "h": environ.get("REMOTE_ADDR", "-"),
            "l": "-",
            "u": self._get_user(environ) or "-",
            "t": self.now(),
            "r": "%s %s %s" % (environ["REQUEST_METHOD"], environ["RAW_URI"],
                               environ["SERVER_PROTOCOL"]),
            "s": status,
            "m": environ.get("REQUEST_METHOD"),
            "U": environ.get("PATH_INFO"),
            "q": environ.get("QUERY_STRING"),
            "H": environ.get("SERVER_PROTOCOL"),
            "b": str(resp.sent) if resp.sent is not None else "-",
            "B": resp.sent,
            "f": environ.get("HTTP_REFERER", "-"),
            "a": environ.get("HTTP_USER_AGENT", "-"),
            "T": secs,
            "D": secs * 1000000 + micros,
            "M": secs * 1000 + micros // 1000,
            "L": "%d.%06d" % (secs, micros),
            "p": "<%s>" % os.getpid(),
        }
        atoms.update({"{%s}i" % k.lower(): v for k, v in req.headers})
        atoms.update({"{%s}o" % k.lower(): v for k, v in resp.headers})
        atoms.update({"{%s}e" % k.lower(): v for k, v in environ.items()})
        return atoms

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        atoms = self.atoms_wrapper_class(self.atoms(resp, req, environ, request_time))
        try:
            self.access_log.info(self.cfg.access_log_format, atoms)
        except Exception:
            self.error(traceback.format_exc())

    # -- files --
    def reopen_files(self):
        for log in _all_loggers():
            for h in log.handlers:
                if isinstance(h, logging.FileHandler):
                    h.acquire()
                    try:
                        if h.stream:
                            h.close()
                            h.stream = h._open()
                    finally:
                        h.release()

    def close_on_exec(self):
        for log in _all_loggers():
            for h in log.handlers:
                if isinstance(h, logging.FileHandler) and h.stream:
                    os.set_inheritable(h.stream.fileno(), False)

    # -- helpers --
    def _set_handler(self, log, output, fmt, stream=None):
        if output is None:
            return
        if output == "-":
            h = logging.StreamHandler(stream)
        else:
            h = logging.FileHandler(output)
        h.setFormatter(fmt)
        h._gunicorn = True
        log.addHandler(h)

    def _set_syslog_handler(self, log, cfg, fmt, name):
        prefix = cfg.syslog_prefix or cfg.proc_name.replace(":", ".")
        fmt = logging.Formatter("gunicorn.%s.%s: %s" % (prefix, name, fmt))
        try:
            facility = SYSLOG_FACILITIES[cfg.syslog_facility.lower()]
        except KeyError:
            raise RuntimeError("unknown syslog facility %r" % cfg.syslog_facility) from None
        socktype, addr = parse_syslog_address(cfg.syslog_addr)
        h = logging.handlers.SysLogHandler(address=addr, facility=facility, socktype=socktype)
        h.setFormatter(fmt)
        h._gunicorn = True
        log.addHandler(h)

    def _get_user(self, environ):
        auth = environ.get("HTTP_AUTHORIZATION")
        if not auth or not auth.lower().startswith("basic"):
            return None
        parts = auth.split(" ", 1)
        if len(parts) != 2:
            return None
        try:
            return base64.b64decode(parts[1].strip().encode("utf-8")).split(b":", 1)[0].decode("utf-8")
        except (TypeError, binascii.Error, UnicodeDecodeError) as exc:
            self.debug("Couldn't get username: %s", exc)
            return None


def _all_loggers():
    return [logging.getLogger(n) for n in list(logging.Logger.manager.loggerDict)]


class Config:
    """The settings as attributes (``cfg.loglevel``, ``cfg.errorlog``...), as logger classes
    written for Gunicorn read them."""

    def __init__(self, values):
        self.__dict__.update(values)
        self.settings = values

    def __getattr__(self, name):
        # Settings ferrocorn does not know yet read as None rather than raising.
        return None


def _resolve_class(spec):
    if not isinstance(spec, str):
        return spec
    if spec in BUILTIN_CLASSES:
        return Logger
    module, _, name = spec.rpartition(".")
    if not module:
        raise RuntimeError("logger_class %r is not a dotted path MODULE.CLASS" % spec)
    return getattr(importlib.import_module(module), name)


def make_logger(values):
    """The Python-path logger for the settings ``values`` (a dict by setting name)."""
    cfg = Config(values)
    cls = _resolve_class(values.get("logger_class") or "gunicorn.glogging.Logger")
    logger = cls(cfg)
    _aliases()
    return logger


# -- access records handed over by the Rust core --

class Request:
    """What a logger's ``access()`` reads from ``req``: ``headers`` as (NAME, value) pairs."""
    __slots__ = ("method", "uri", "path", "query", "version", "headers")

    def __init__(self, method, uri, path, query, version, headers):
        self.method, self.uri, self.path, self.query = method, uri, path, query
        self.version, self.headers = version, headers


class Response:
    """What a logger's ``access()`` reads from ``resp``: ``status``, ``status_code``, ``sent``
    (body bytes, None when no response started) and ``headers``."""
    __slots__ = ("status", "status_code", "sent", "headers", "response_length")

    def __init__(self, status, sent, headers):
        self.status = status
        try:
            self.status_code = int(status.split(None, 1)[0])
        except (ValueError, IndexError):
            self.status_code = None
        self.sent = sent
        self.response_length = sent
        self.headers = headers


def access(logger, status, sent, resp_headers, req, environ, micros):
    """Called by the Rust core for each finished request on the Python path."""
    try:
        logger.access(Response(status, sent, resp_headers), req, environ,
                      datetime.timedelta(microseconds=micros))
    except Exception:
        logger.error("access log failed:\n%s" % traceback.format_exc())

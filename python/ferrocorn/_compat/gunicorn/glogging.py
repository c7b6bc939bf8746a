"""``gunicorn.glogging``: ferrocorn's logger with Gunicorn's interface, to subclass for
``logger_class``."""

from ferrocorn._logging import (  # noqa: F401
    ACCESS_FMT as _ACCESS_FMT,
    CONFIG_DEFAULTS,
    DATE_FMT as _DATE_FMT,
    ERROR_FMT as _ERROR_FMT,
    SYSLOG_FACILITIES,
    Logger,
    SafeAtoms,
    parse_syslog_address,
)

__all__ = ["Logger", "SafeAtoms", "CONFIG_DEFAULTS", "SYSLOG_FACILITIES", "parse_syslog_address"]

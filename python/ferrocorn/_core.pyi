"""Type stub for ``ferrocorn._core``, the private native module (Rust, PyO3).

Private: these are the entry points the ``ferrocorn`` package itself calls; they may change in any
release. The WSGI objects the core hands to applications (``wsgi.input``, ``wsgi.errors``,
``start_response``, ``wsgi.file_wrapper``) are typed by PEP 3333, not here: they are not module
attributes.
"""

from typing import Final

__version__: Final[str]
__all__: list[str]

def run(argv: list[str]) -> int:
    """Runs the ``ferrocorn`` command with ``argv`` (``argv[0]`` included); returns the exit code."""

def log(level: int, text: str) -> None:
    """Writes one error-log line at ``level`` (10 debug .. 50 critical)."""

def reopen_logs() -> None:
    """Reopens the error log file."""

def _write_error_log(text: str) -> None:
    """Writes ``text`` as is to the error log (the Python logging fast path)."""

def _log_is_json() -> bool:
    """Whether the error log writes JSON lines (``log_format = "json"``), so Python-side handlers
    hand records over whole instead of formatting them."""

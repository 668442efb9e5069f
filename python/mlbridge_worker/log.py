"""The worker's log records, on stderr, in a form the host recognizes.

Every record is one line: :data:`MARKER` then compact JSON::

    \\x1fmlbridge/1 {"level":30,"logger":"httpx","msg":"...","exc":"Traceback ..."}

``level`` is the ``logging`` level number (custom levels included), ``exc`` (optional) the
formatted exception or stack, ``trace_id`` and ``span_id`` (optional, lowercase hex) the span
current where the record was made: a traced call's handler span (the host's; tracing.py), so a
record made during a call joins its trace. JSON escaping keeps a multi-line message or a
traceback on its one line; the marker starts with an ASCII unit separator (0x1F), which
ordinary text and C libraries do not write at the start of a line. The host maps each record to a log/slog record
of the matching level, with ``logger=<name>``; every other stderr line (``print``, C libraries,
tracebacks printed by hand) is forwarded as it is, never parsed as a record. The host adds the
time, the worker's pid and the bridge: a record carries none of them.

:func:`install` (run at startup, before the bridge is imported) sets this up:

* ``mlbridge_worker``'s own lines (:func:`log`) go through its logger, which always has the
  handler and does not propagate: they reach the host whatever the user does to logging.
* The root logger gets the handler only if it has none (a logging config set up before the
  worker, by ``sitecustomize`` say, is kept). If the bridge module configures its own root
  handlers, :func:`yield_to_user_config` removes ours after the bridge loaded, so records are
  not written twice; theirs then reach the host as plain stderr lines.
* Levels: ``MLBRIDGE_LOG_LEVEL`` (a name like ``DEBUG`` or a number) sets the root logger's
  and ``mlbridge_worker``'s level. Unset, the root keeps Python's default, WARNING (libraries
  such as httpx log every request at INFO), and ``mlbridge_worker`` logs from INFO.
  ``logging.basicConfig(level=...)`` without ``force=True`` does nothing once the root has a
  handler (Python's rule): use ``MLBRIDGE_LOG_LEVEL`` or ``logging.getLogger().setLevel``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import TextIO

MARKER = "\x1fmlbridge/1 "
LEVEL_ENV = "MLBRIDGE_LOG_LEVEL"
LOGGER_NAME = "mlbridge_worker"
#: a record line's bound, marker and newline included; the host reads lines of up to 64 KiB
#: whole, so a longer record is shortened here (message head, exception tail) rather than cut
#: there into invalid JSON
MAX_RECORD_BYTES = 60_000

_logger = logging.getLogger(LOGGER_NAME)
_install_lock = threading.Lock()
_handler: HostHandler | None = None
# tracing.current_ids once tracing.py is imported (it imports this module: no cycle at import)
_current_ids: Callable[[], tuple[str, str] | None] | None = None


def _fits(line: str) -> bool:
    # UTF-8 is at most 4 bytes a character; a lone surrogate written with backslashreplace, 6
    return len(line) * 6 <= MAX_RECORD_BYTES or len(line.encode("utf-8", "backslashreplace")) <= MAX_RECORD_BYTES


def _encode(level: int, logger: str, msg: str, exc: str | None, worker: str | None,
            ids: tuple[str, str] | None = None) -> str:
    rec: dict[str, object] = {"level": level, "logger": logger, "msg": msg}
    if exc:
        rec["exc"] = exc
    if worker:
        rec["worker"] = worker  # the legacy --worker-id; the host names workers itself
    if ids is not None:
        rec["trace_id"], rec["span_id"] = ids
    return MARKER + json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n"


def format_record(level: int, logger: str, msg: str, exc: str | None = None) -> str:
    """One record as the line written to stderr (newline included), at most
    :data:`MAX_RECORD_BYTES` long: an over-long message keeps its head, an over-long
    exception its tail (where the error is), each marked with what was dropped."""
    worker = os.environ.get("MLBRIDGE_WORKER_ID") or None
    ids = _current_ids() if _current_ids is not None else None  # the call's span, if traced
    line = _encode(level, logger, msg, exc, worker, ids)
    budget = MAX_RECORD_BYTES // 2
    while not _fits(line) and budget > 64:
        if len(msg) > budget:
            msg = msg[:budget] + f"…[truncated {len(msg) - budget} chars]"
        if exc and len(exc) > budget:
            exc = f"…[truncated {len(exc) - budget} chars]" + exc[-budget:]
        line = _encode(level, logger, msg, exc, worker, ids)
        budget //= 2
    return line


class HostHandler(logging.Handler):
    """Writes records to stderr in the host's format (see the module doc). Formatters set on
    it are not used: the host formats, and adds the time itself."""

    def __init__(self, stream: TextIO | None = None, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.stream: TextIO = stream if stream is not None else sys.stderr

    def emit(self, record: logging.LogRecord) -> None:
        try:
            exc = None
            if record.exc_info:
                exc = record.exc_text or _plain.formatException(record.exc_info)
            if record.stack_info:
                exc = (exc + "\n" if exc else "") + _plain.formatStack(record.stack_info)
            self.write(format_record(record.levelno, record.name, record.getMessage(), exc))
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def write(self, line: str) -> None:
        # one write of the whole line under the handler's lock, then a flush: records from
        # several threads never interleave, and one is on the pipe before the next print
        self.acquire()
        try:
            self.stream.write(line)
            self.stream.flush()
        finally:
            self.release()


_plain = logging.Formatter()


def parse_level(text: str) -> int | None:
    """A level name (any case) or number, or None if it is neither."""
    text = text.strip()
    if not text:
        return None
    if text.lstrip("-").isdigit():
        return int(text)
    level = logging.getLevelName(text.upper())
    return level if isinstance(level, int) else None


def install(stream: TextIO | None = None, env: Mapping[str, str] | None = None,
            root: logging.Logger | None = None) -> HostHandler:
    """Set up the worker's logging (see the module doc); idempotent. Returns the handler.
    ``stream`` (default: stderr), ``env`` (default: os.environ) and ``root`` (default: the
    root logger) are for tests."""
    global _handler
    with _install_lock:
        if _handler is not None:
            return _handler
        handler = HostHandler(stream)
        raw = (os.environ if env is None else env).get(LEVEL_ENV, "")
        level = parse_level(raw)
        root = root if root is not None else logging.getLogger()
        _logger.addHandler(handler)
        _logger.propagate = False
        _logger.setLevel(level if level is not None else logging.INFO)
        if level is not None:
            root.setLevel(level)
        if not root.handlers:
            root.addHandler(handler)
        _handler = handler
    if raw.strip() and level is None:
        log(f"ignoring {LEVEL_ENV}={raw!r}: not a level name or number", logging.WARNING)
    return handler


def yield_to_user_config(root: logging.Logger | None = None) -> None:
    """Once the bridge is loaded: if its code gave the root logger handlers of its own, take
    ours off the root so each record is written once (in the user's format)."""
    root = root if root is not None else logging.getLogger()
    if _handler is not None and _handler in root.handlers and len(root.handlers) > 1:
        root.removeHandler(_handler)


def log(msg: str, level: int = logging.INFO, exc: str | None = None) -> None:
    """One of the worker's own log lines; ``exc``: a formatted traceback to go with it.
    Before :func:`install` (or outside a worker) the record goes straight to stderr."""
    try:
        h = _handler
        if h is None:
            sys.stderr.write(format_record(level, LOGGER_NAME, msg, exc))
            sys.stderr.flush()
        elif _logger.isEnabledFor(level):
            if h in _logger.handlers:
                h.write(format_record(level, LOGGER_NAME, msg, exc))
            else:  # someone reconfigured our logger: let logging route the line
                _logger.log(level, msg + (f"\n{exc}" if exc else ""))
    except Exception:
        pass

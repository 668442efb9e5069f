"""Exceptions a handler may raise to choose the error category, and exception -> Error map.

Error = {category, type, message, traceback?} (spec/protocol.md, "Errors").
"""

from __future__ import annotations

import asyncio
import traceback as _tb

CATEGORIES = frozenset(
    {
        "invalid_argument",
        "unknown_op",
        "not_found",
        "timeout",
        "cancelled",
        "serialization",
        "protocol",
        "invalid_configuration",
        "model_error",
        "rate_limit",
        "unavailable",
        "internal",
        "unknown",
    }
)


class BridgeError(Exception):
    """Base of the exceptions that carry an error category. Unclassified -> ``internal``."""

    category = "internal"

    def __init__(self, message: str = "", *, type_name: str | None = None):
        super().__init__(message)
        self.message = message
        # The error's `type` on the wire: a framework's own class name when this wraps one.
        self.type_name = type_name or type(self).__name__


class InvalidArgument(BridgeError):
    category = "invalid_argument"


class NotFound(BridgeError):
    category = "not_found"


class InvalidConfiguration(BridgeError):
    category = "invalid_configuration"


class ModelError(BridgeError):
    category = "model_error"


class RateLimit(BridgeError):
    category = "rate_limit"


class Unavailable(BridgeError):
    category = "unavailable"


class Timeout(BridgeError):
    """A deadline inside the framework (a provider's own timeout), not the request's."""

    category = "timeout"


class Unknown(BridgeError):
    """The framework failed without saying why (as opposed to ``internal``: a handler's own bug)."""

    category = "unknown"


BRIDGE_ERRORS = {
    c.__name__: c
    for c in (BridgeError, InvalidArgument, NotFound, InvalidConfiguration, ModelError, RateLimit, Unavailable,
              Timeout, Unknown)
}


def _clean(s: str) -> str:
    """Envelope strings must be valid UTF-8: escape lone surrogates (from undecodable bytes)."""
    if s.isascii():
        return s
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "backslashreplace").decode("utf-8")


def exc_text(e: BaseException) -> str:
    """``str(e)``, or the exception's type name when that is empty (``raise ValueError()``,
    msgpack's ``StackError()``): an error message is never empty."""
    try:
        text = str(e)
    except Exception:  # a broken __str__
        text = ""
    return text or type(e).__name__


def error_map(category: str, type: str, message: str, traceback: str | None = None) -> dict:
    # the last guard of "never empty": every Error map is built here
    err = {"category": category, "type": _clean(type), "message": _clean(message or type or category)}
    if traceback:
        err["traceback"] = _clean(traceback)
    return err


def category_of(exc: BaseException) -> str:
    cat = getattr(exc, "category", None)
    if type(cat) is str and cat in CATEGORIES:
        return cat
    # TimeoutError raised by the handler's own code (not the request deadline, which the
    # runtime reports itself). asyncio.TimeoutError is TimeoutError on 3.11+.
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return "timeout"
    return "internal"


def exception_to_error(exc: BaseException, category: str | None = None, with_traceback: bool = True) -> dict:
    """Turn any exception into an Error map.

    ``category`` overrides the category derived from the exception.
    """
    bridge = isinstance(exc, BridgeError)
    msg = (exc.message or exc.type_name) if bridge else exc_text(exc)
    tb = None
    if with_traceback and exc.__traceback__ is not None:
        tb = "".join(_tb.format_exception(type(exc), exc, exc.__traceback__))
    return error_map(category or category_of(exc), exc.type_name if bridge else type(exc).__name__, msg, tb)

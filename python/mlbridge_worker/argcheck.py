"""Handler arguments checked against the handler's annotations, before the handler runs.

:func:`compile_check` turns a handler's parameter annotations (rules: :mod:`.argtypes`) into one
check function, once, when its bridge is constructed: no ``typing`` introspection per call. The
runtime calls it on the event loop before it starts the handler, whatever its kind; a mismatch is
answered ``invalid_argument`` naming the argument (``argument 'text': expected str, got int``)
and nothing of the handler runs.

* A parameter whose default is ``None`` also takes ``None`` (the handler handles it).
* Missing and unexpected arguments are left to the call itself: its ``TypeError`` names them and
  the runtime answers it as ``invalid_argument``. ``*args`` and ``**kwargs`` are not checked.
* ``@typing.no_type_check`` turns checking off for one handler; annotations that cannot be
  resolved (a name imported under ``TYPE_CHECKING`` only) do too, with one log line.

The check is generated source, like a dataclass's ``__init__``: one straight line per annotated
parameter; for scalar arguments that costs a third less than a loop over a table.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from .argtypes import Spec, or_none, spec_of
from .log import log

#: one call's arguments -> why they do not fit, or None
Check = Callable[["dict | None"], "str | None"]

_MISSING = object()  # a missing argument: its type is in no spec's types


def compile_check(fn: Callable, op: str) -> Check | None:
    """The check of handler ``fn``'s arguments, or None when it has nothing to check."""
    try:
        params = _params(fn)
    except Exception as e:  # whatever the annotations hold, the worker still starts
        # not repr(fn): a bound method's repr is its bridge's, which lists the handlers being built
        name = getattr(getattr(fn, "__func__", fn), "__qualname__", None) or type(fn).__name__
        log(f"handler {op!r} ({name}): its argument types are not checked: {type(e).__name__}: {e}")
        return None
    return _generate(params) if params else None


def _params(fn: Callable) -> list[tuple[str, Spec]]:
    """(name, spec) of each parameter of ``fn`` that a call by name sets and that is checked."""
    target = inspect.unwrap(getattr(fn, "__func__", fn))
    if getattr(target, "__no_type_check__", False):
        return []
    sig = inspect.signature(fn)  # of the bound method: no self
    raw = {k: v for k, v in getattr(target, "__annotations__", {}).items() if k != "return"}
    # Only the parameters' annotations are resolved: a return type imported under
    # TYPE_CHECKING alone must not turn the check off.
    hints = typing.get_type_hints(types.SimpleNamespace(__annotations__=raw),
                                  globalns=getattr(target, "__globals__", {}))
    out = []
    for p in sig.parameters.values():
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or p.name not in hints:
            continue
        spec = spec_of(hints[p.name])
        if spec is None:
            continue
        out.append((p.name, or_none(spec) if p.default is None else spec))
    return out


def _generate(params: list[tuple[str, Spec]]) -> Check:
    """The check as straight-line code: per parameter a lookup and a set membership test, and
    the spec's deeper test (elements, literal values) once the type passed."""
    ns: dict[str, Any] = {"M": _MISSING, "fail": _message}
    lines = ["def check(args):", "    if args:", "        get = args.get"]
    for i, (name, spec) in enumerate(params):
        ns[f"T{i}"], ns[f"S{i}"] = spec.types, spec
        fail = f"return fail({name!r}, S{i}, v)"
        if spec.deep is None:
            lines.append(f"        if type(v := get({name!r}, M)) not in T{i} and v is not M: {fail}")
        else:
            ns[f"D{i}"] = spec.deep
            lines += [f"        if type(v := get({name!r}, M)) not in T{i}:",
                      f"            if v is not M: {fail}",  # missing: the call's TypeError names it
                      f"        elif not D{i}(v): {fail}"]
    lines.append("    return None")
    exec("\n".join(lines), ns)  # names are identifiers, values live in ns: nothing from the wire
    return ns["check"]


def _message(name: str, spec: Spec, v: Any) -> str:
    path, what = spec.problem(v, "")
    return f"argument {name!r}{' at ' + path if path else ''}: {what}"

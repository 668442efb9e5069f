"""What a handler's annotation accepts from the wire: annotations compiled into :class:`Spec`
(:func:`spec_of`), for :mod:`.argcheck`.

The rules follow what msgpack can carry (decoded values are exact built-in types, never
subclasses):

* ``str``, ``bytes``, ``int``, ``bool``, ``None``: that type only. ``bool`` is refused for
  ``int`` and ``float`` (Python's ``bool`` subclasses ``int``; a bool sent for a number is a
  caller's mistake). ``bytes`` and ``str`` never stand in for each other.
* ``float`` also takes an ``int``: clients write 1 for 1.0. The handler gets the int.
* ``list[X]``, ``tuple[X, ...]``, ``tuple[X, Y]``, ``set[X]``, ``frozenset[X]``, ``Sequence[X]``:
  a msgpack array (decoded as a list; the handler gets that list, as msgpack has no tuple or set).
  ``dict[K, V]``, ``Mapping[K, V]``, a ``TypedDict`` (its keys unchecked): a msgpack map.
  Every element is checked, however many: a partial check would let through the wrong value
  the check exists to stop. Large numeric data belongs in an array map (``arrays.py``), one
  ``bytes`` value.
* ``X | Y``, ``Optional[X]``, ``Literal[...]`` (values of the types above), ``NewType``.
* Not checked: ``Any``, ``object``, no annotation, and anything else (a user class, an enum,
  ``Iterable``, a ``TypeVar``): the handler converts what it receives. A union with such a
  member is not checked at all; a container of them is checked as a container.
"""

from __future__ import annotations

import collections.abc as cabc
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

_NoneType = type(None)
_LIST = frozenset({list})
_DICT = frozenset({dict})

# annotation -> the decoded types that satisfy it
_SCALARS: dict[Any, frozenset[type]] = {
    str: frozenset({str}),
    bytes: frozenset({bytes}),
    int: frozenset({int}),
    float: frozenset({float, int}),
    bool: frozenset({bool}),
    _NoneType: frozenset({_NoneType}),
}
_ARRAYS = frozenset({list, tuple, set, frozenset, cabc.Sequence, cabc.MutableSequence, cabc.Set, cabc.MutableSet})
_MAPS = frozenset({dict, cabc.Mapping, cabc.MutableMapping})
_LITERAL_TYPES = frozenset({str, bytes, int, bool, _NoneType})


class Spec:
    """One annotation, compiled. ``types``: the decoded types that may pass; ``deep``: the rest
    of the test once the type passed (elements, literal values), None when the type is all."""

    __slots__ = ("types", "deep", "label")

    def __init__(self, types_: frozenset[type], deep: Callable[[Any], bool] | None, label: str):
        self.types = types_
        self.deep = deep
        self.label = label

    def ok(self, v: Any) -> bool:
        return type(v) in self.types and (self.deep is None or self.deep(v))

    def problem(self, v: Any, path: str) -> tuple[str, str]:
        """Where in ``v`` (a path below the argument) and what does not fit; for messages only."""
        return path, f"expected {self.label}, got {_kind(v)}"


class _Array(Spec):
    __slots__ = ("items",)

    def __init__(self, label: str, items: list[Spec | None], fixed: bool):
        self.items = items if fixed else items[0]
        if fixed:  # tuple[X, Y]: that many elements, each its own spec
            n = len(items)
            checks = [(i, s.ok) for i, s in enumerate(items) if s is not None]
            deep = lambda v: len(v) == n and all(ok(v[i]) for i, ok in checks)  # noqa: E731
        else:
            deep = _all_fit(items[0])
        super().__init__(_LIST, deep, label)

    def problem(self, v: Any, path: str) -> tuple[str, str]:
        if type(v) is not list:
            return super().problem(v, path)
        if isinstance(self.items, list):
            if len(v) != len(self.items):
                return path, f"expected {self.label}, got a list of length {len(v)}"
            pairs = zip(self.items, v)
        else:
            pairs = ((self.items, x) for x in v)
        for i, (s, x) in enumerate(pairs):
            if s is not None and not s.ok(x):
                return s.problem(x, f"{path}[{i}]")
        return super().problem(v, path)


class _Map(Spec):
    __slots__ = ("keys", "values")

    def __init__(self, label: str, keys: Spec | None, values: Spec | None):
        self.keys, self.values = keys, values
        k, val = _all_fit(keys), _all_fit(values)
        if k is not None and val is not None and keys.deep is None and values.deep is None:
            kf, vf = keys.types.issuperset, values.types.issuperset  # one call, not three
            deep = lambda v: kf(map(type, v)) and vf(map(type, v.values()))  # noqa: E731
        elif k is not None and val is not None:
            deep = lambda v: k(v) and val(v.values())  # noqa: E731
        elif val is not None:
            deep = lambda v: val(v.values())  # noqa: E731
        else:
            deep = k  # iterating a dict gives its keys
        super().__init__(_DICT, deep, label)

    def problem(self, v: Any, path: str) -> tuple[str, str]:
        if type(v) is dict:
            for key, x in v.items():
                if self.keys is not None and not self.keys.ok(key):
                    where = f"{path}, key {_short(key)}" if path else f"key {_short(key)}"
                    return where, self.keys.problem(key, "")[1]
                if self.values is not None and not self.values.ok(x):
                    return self.values.problem(x, f"{path}[{_short(key)}]")
        return super().problem(v, path)


class _Literal(Spec):
    __slots__ = ()

    def __init__(self, values: tuple):
        allowed = frozenset((type(x), x) for x in values)  # by type too: True is not 1
        super().__init__(frozenset(type(x) for x in values), lambda v: (type(v), v) in allowed,
                         "one of " + ", ".join(map(repr, values)))

    def problem(self, v: Any, path: str) -> tuple[str, str]:
        if type(v) in self.types:
            return path, f"expected {self.label}, got {_short(v)}"
        return super().problem(v, path)


class _Union(Spec):
    __slots__ = ("options",)

    def __init__(self, options: list[Spec]):
        self.options = options
        by_type: dict[type, Spec] = {}
        shared = False  # two options take one type (list[int] | list[str]): try each
        for o in options:
            for t in o.types:
                shared |= by_type.setdefault(t, o) is not o
        deeps = [o.deep for o in options if o.deep is not None]
        if not deeps:
            deep = None
        elif len(options) == 2 and _NoneType in by_type and len(deeps) == 1 and not shared:
            d = deeps[0]  # X | None, the common union: one call, not two
            deep = lambda v: v is None or d(v)  # noqa: E731
        elif shared:
            deep = lambda v: any(o.ok(v) for o in options)  # noqa: E731
        else:
            of_type = {t: o.deep for t, o in by_type.items()}
            deep = lambda v: (d := of_type[type(v)]) is None or d(v)  # noqa: E731
        super().__init__(frozenset(by_type), deep, " | ".join(o.label for o in options))

    def problem(self, v: Any, path: str) -> tuple[str, str]:
        fits = [o for o in self.options if type(v) in o.types]
        if len(fits) == 1:  # the one option of that type says what is wrong inside
            return fits[0].problem(v, path)
        return super().problem(v, path)


NONE = Spec(_SCALARS[_NoneType], None, "None")


def or_none(spec: Spec) -> Spec:
    """``spec | None``."""
    return spec if _NoneType in spec.types else _Union([spec, NONE])


def _all_fit(item: Spec | None) -> Callable[[Iterable], bool] | None:
    """A test of every value of an iterable against ``item``; C speed when types say it all."""
    if item is None:
        return None
    if item.deep is None:
        fits = item.types.issuperset  # iterates map(type, xs), stops at the first misfit
        return lambda xs: fits(map(type, xs))
    ok = item.ok
    return lambda xs: all(map(ok, xs))


def _kind(v: Any) -> str:
    return "None" if v is None else type(v).__name__


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 40 else r[:37] + "..."


def _label(ann: Any) -> str:
    """``list[Foo]``, not ``list[my.module.Foo]``: the caller knows no Python modules."""
    if ann is Ellipsis:
        return "..."
    args = typing.get_args(ann)
    origin = typing.get_origin(ann)
    if args and isinstance(origin, type):
        return f"{origin.__name__}[{', '.join(map(_label, args))}]"
    if isinstance(ann, type):
        return "None" if ann is _NoneType else ann.__name__
    return repr(ann).replace("typing.", "")


def spec_of(ann: Any) -> Spec | None:
    """The compiled form of an annotation, or None when it is not checked."""
    if ann is None or ann is _NoneType:
        return NONE
    if isinstance(ann, typing.NewType):
        return spec_of(ann.__supertype__)
    if typing.is_typeddict(ann):
        return Spec(_DICT, None, ann.__name__)
    scalar = _SCALARS.get(ann) if isinstance(ann, type) else None
    if scalar is not None:
        return Spec(scalar, None, ann.__name__)
    origin = typing.get_origin(ann) or ann
    args = typing.get_args(ann)
    if origin is typing.Union or origin is types.UnionType:
        options = [spec_of(a) for a in args]
        return None if None in options else _Union(options)
    if origin is typing.Literal:
        return _Literal(args) if all(type(a) in _LITERAL_TYPES for a in args) else None
    if not isinstance(origin, type):
        return None
    if origin in _MAPS:
        key, value = (spec_of(args[0]), spec_of(args[1])) if len(args) == 2 else (None, None)
        return _Map(_label(ann), key, value)
    if origin in _ARRAYS:
        fixed = origin is tuple and bool(args) and args[-1] is not Ellipsis
        items = [spec_of(a) for a in args] if fixed else [spec_of(args[0]) if args else None]
        return _Array(_label(ann), items, fixed)
    return None

"""Handler arguments checked against annotations (argcheck.py): the rules, compiled once, and
what a caller sees through a real worker."""

from __future__ import annotations

import enum
import inspect
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, NewType, Optional, TypedDict, TypeVar, Union

import pytest

from mlbridge_worker import BaseBridge, handler
from mlbridge_worker.argcheck import compile_check

TYPED = "typed_bridges:TypedBridge"

UserId = NewType("UserId", int)
T = TypeVar("T")


class Point(TypedDict):
    x: float
    y: float


class Color(enum.Enum):
    RED = "red"


class Custom:
    pass


def check_of(ann: Any, default: Any = inspect.Parameter.empty):
    """The compiled check of a handler `f(x: ann [= default])`."""
    def f(x):
        return x

    f.__annotations__ = {"x": ann}
    if default is not inspect.Parameter.empty:
        f.__defaults__ = (default,)
    return compile_check(f, "f")


# (annotation, values that pass, [(value that fails, the message after "argument 'x'")])
RULES = [
    (str, ["", "héllo"], [(42, ": expected str, got int"), (b"a", ": expected str, got bytes")]),
    (int, [0, -1, 2**64 - 1], [(True, ": expected int, got bool"), (1.0, ": expected int, got float")]),
    (float, [1.5, 1, -0.0], [(True, ": expected float, got bool"), ("1.0", ": expected float, got str"),
                             (None, ": expected float, got None")]),
    (bool, [True, False], [(1, ": expected bool, got int")]),
    (bytes, [b"", b"\x00"], [("x", ": expected bytes, got str")]),
    (None, [None], [(0, ": expected None, got int")]),
    (list, [[], [1, "a"]], [("ab", ": expected list, got str"), ({}, ": expected list, got dict")]),
    (dict, [{}, {1: 2}], [([], ": expected dict, got list")]),
    (list[str], [[], ["a"]], [("abc", ": expected list[str], got str"), (["a", 1], " at [1]: expected str, got int")]),
    (typing.List[int], [[1]], [([1, "2"], " at [1]: expected int, got str")]),
    (dict[str, float], [{"a": 1, "b": 2.5}], [({"a": "x"}, " at ['a']: expected float, got str"),
                                              ({1: 1.0}, " at key 1: expected str, got int")]),
    (Mapping[str, int], [{"a": 1}], [({"a": None}, " at ['a']: expected int, got None")]),
    (tuple[int, str], [[1, "a"]], [([1], ": expected tuple[int, str], got a list of length 1"),
                                   ([1, 2], " at [1]: expected str, got int")]),
    (tuple[int, ...], [[], [1, 2]], [([1, "a"], " at [1]: expected int, got str")]),
    (set[str], [["a", "a"]], [([1], " at [0]: expected str, got int")]),
    (Sequence[str], [["a"]], [("abc", ": expected Sequence[str], got str")]),
    (list[list[float]], [[[1.0, 2], []]], [([[1.0], [2.0, "x"]], " at [1][1]: expected float, got str")]),
    (Optional[int], [None, 3], [("x", ": expected int | None, got str")]),
    (int | None, [None, 3], [(1.5, ": expected int | None, got float")]),
    (Union[int, str], [1, "a"], [(1.5, ": expected int | str, got float")]),
    (list[int] | None, [None, [1]], [([1, "a"], " at [1]: expected int, got str")]),
    (list[int] | list[str], [[1], ["a"]], [([1, "a"], ": expected list[int] | list[str], got list")]),
    (Literal["a", 1], ["a", 1], [("b", ": expected one of 'a', 1, got 'b'"), (True, ": expected one of 'a', 1, got bool")]),
    (UserId, [7], [("7", ": expected int, got str")]),
    (Point, [{"x": 1.0, "y": 2.0}, {"keys": "unchecked"}], [([1.0, 2.0], ": expected Point, got list")]),
    (list[Custom], [[1, "x"]], [("x", ": expected list[Custom], got str")]),
]


@pytest.mark.parametrize("ann, good, bad", RULES, ids=[repr(r[0]) for r in RULES])
def test_rules(ann, good, bad):
    check = check_of(ann)
    for v in good:
        assert check({"x": v}) is None, v
    for v, message in bad:
        assert check({"x": v}) == "argument 'x'" + message


@pytest.mark.parametrize("ann", [Any, object, Custom, Color, Iterable[int], T, Custom | None,
                                 Literal[Color.RED], inspect.Parameter.empty])
def test_annotations_left_unchecked(ann):
    assert check_of(ann) is None


def test_default_none_also_takes_none_and_other_defaults_do_not():
    assert check_of(dict, None)({"x": None}) is None
    assert check_of(dict, None)({"x": []}) == "argument 'x': expected dict | None, got list"
    assert check_of(float, 0.0)({"x": None}) == "argument 'x': expected float, got None"


def test_missing_and_unknown_arguments_are_left_to_the_call():
    check = check_of(int)
    assert check({}) is None and check(None) is None and check({"y": "anything"}) is None


def test_every_element_is_checked():
    check = check_of(list[float])
    values = [0.5] * 100_000
    assert check({"x": values}) is None
    values[-1] = "late"
    assert check({"x": values}) == "argument 'x' at [99999]: expected float, got str"


def test_parameter_names_are_data_in_the_generated_check():
    def f(v: int, args: str, get: float, M: bool = False):  # the generated code's own local names
        pass

    check = compile_check(f, "f")
    assert check({"v": 1, "args": "a", "get": 2, "M": True}) is None
    assert check({"v": 1, "args": "a", "get": 2, "M": 1}) == "argument 'M': expected bool, got int"


# ------------------------------------------------------------- per handler, at construction

if typing.TYPE_CHECKING:
    from decimal import Decimal


class Handlers(BaseBridge):
    def _initialize_framework(self) -> None:
        pass

    @handler
    async def nothing(self) -> None:
        pass

    @handler
    def untyped(self, a, b=1):
        return a

    @handler
    def typed(self, a: int, *rest: str, b: str = "", **more: int) -> Decimal:  # return type unresolvable
        return a

    @handler
    def unresolvable(self, a: Decimal) -> None:
        pass

    @handler
    @typing.no_type_check
    def opted_out(self, a: int) -> None:
        pass


def test_compiled_per_handler_at_construction(capsys, monkeypatch):
    b = Handlers()
    h = b.handlers
    assert h["nothing"].check is None and h["untyped"].check is None and h["opted_out"].check is None
    assert h["ping"].check is None  # the no-op path has nothing to run
    # an unresolvable parameter annotation: unchecked, one log line, the bridge still builds
    assert h["unresolvable"].check is None
    err = capsys.readouterr().err
    assert err.count("not checked") == 1 and "'unresolvable'" in err and "Decimal" in err
    # decided once: calls do no introspection (these would raise if they were used)
    monkeypatch.setattr(typing, "get_type_hints", None)
    monkeypatch.setattr(inspect, "signature", None)
    check = h["typed"].check
    assert check({"a": 1, "b": "x"}) is None
    assert check({"a": "1"}) == "argument 'a': expected int, got str"
    assert check({"b": 2}) == "argument 'b': expected str, got int"
    assert check({"a": 1, "extra": "not checked: **more is left to the handler"}) is None


# ------------------------------------------------------------- through a worker


def err(w, op, args, **kw) -> dict:
    m = w.call(op, args, **kw)
    assert m["ok"] is False, m
    return m["error"]


def stream_err(w, op, args) -> dict:
    items, m = w.stream(op, args)
    assert items == [] and m["t"] == "res" and m["ok"] is False, (items, m)
    return m["error"]


def refused(e: dict, message: str) -> None:
    # no traceback: nothing of the handler ran, the message says it all
    assert e == {"category": "invalid_argument", "type": "InvalidArgument", "message": message}


@pytest.fixture
def typed(make_worker):
    w = make_worker(TYPED)
    w.hello()
    return w


def test_each_kind_refuses_a_wrong_type_before_it_runs(typed):
    refused(err(typed, "label", {"text": 42}), "argument 'text': expected str, got int")  # sync
    refused(err(typed, "scale", {"values": [1.0, "2"], "factor": 2}),  # async, eager path
            "argument 'values' at [1]: expected float, got str")
    refused(err(typed, "scale", {"values": [], "factor": 2, "mode": "pow"}, deadline_ms=5000),  # general path
            "argument 'mode': expected one of 'mul', 'add', got 'pow'")
    refused(stream_err(typed, "words", {"text": "a b", "limit": "2"}), "argument 'limit': expected int | None, got str")
    refused(stream_err(typed, "keys", {"table": {"a": 1.5}}), "argument 'table' at ['a']: expected int, got float")
    # the same handlers with fitting arguments
    assert typed.ok("label", {"text": "ab", "times": 2}) == "abab:1.0"
    assert typed.ok("scale", {"values": [1, 2.5], "factor": 2}) == [2, 5.0]  # ints for floats
    assert typed.stream("words", {"text": "a b c", "limit": None})[0] == ["a", "b", "c"]
    assert typed.stream("keys", {"table": {"a": 1, "b": 2}})[0] == ["a", "b"]
    stats = typed.ok("get_stats")
    assert stats["ops"]["label"]["errors"] == 1 and stats["ops"]["words"]["errors"] == 1


def test_bool_is_not_a_number_and_str_is_not_bytes(typed):
    refused(err(typed, "label", {"text": "a", "times": True}), "argument 'times': expected int, got bool")
    refused(err(typed, "label", {"text": "a", "weight": False}), "argument 'weight': expected float, got bool")
    refused(err(typed, "blob_size", {"data": "abc"}), "argument 'data': expected bytes, got str")
    assert typed.ok("blob_size", {"data": b"abc"}) == 3


FITTING = {  # op: (streamed, arguments that fit)
    "label": (False, {"text": "a"}),
    "scale": (False, {"values": [], "factor": 1}),
    "words": (True, {"text": "a"}),
    "keys": (True, {"table": {}}),
}


def test_missing_and_unexpected_arguments_name_the_field_in_every_kind(typed):
    for op, (streamed, fitting) in FITTING.items():
        first = next(iter(fitting))
        without_first = {k: v for k, v in fitting.items() if k != first}
        for args, named in ((without_first, repr(first)), ({**fitting, "bogus": 1}, "'bogus'")):
            e = stream_err(typed, op, args) if streamed else err(typed, op, args)
            assert e["category"] == "invalid_argument" and e["type"] == "TypeError" and named in e["message"], (op, e)


def test_unresolvable_annotation_leaves_the_handler_unchecked(typed):
    typed.wait_stderr("handler 'unresolvable'")
    assert typed.ok("unresolvable", {"amount": 1}) == "int"


def test_switched_implementation_brings_its_own_check(typed):
    assert typed.ok("switchable", {"n": 1}) == "sync"
    typed.ok("set_handler_mode", {"op": "switchable", "mode": "async"})
    refused(err(typed, "switchable", {"n": 1}), "argument 'n': expected str, got int")
    assert typed.ok("switchable", {"n": "1"}) == "async"


def test_a_refused_sync_call_needs_no_thread(make_worker):
    w = make_worker(TYPED, threads=1)
    w.hello()
    w.request("hang")  # holds the only thread for good
    refused(err(w, "label", {"text": None}), "argument 'text': expected str, got None")

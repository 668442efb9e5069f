"""Handler registration: kinds decided once with inspect, decorator forms, built-ins."""

import asyncio

import pytest

from mlbridge_worker import BaseBridge, handler
from mlbridge_worker.base_bridge import handler_kind
from mlbridge_worker.echo import EchoBridge
from mlbridge_worker.errors import (
    BridgeError,
    InvalidArgument,
    InvalidConfiguration,
    ModelError,
    NotFound,
    RateLimit,
    Unavailable,
    exception_to_error,
)

BUILTINS = {"ping", "get_info", "get_stats", "health_check", "list_handlers", "cleanup", "shutdown"}


class Kinds(BaseBridge):
    def _initialize_framework(self):
        pass

    @handler
    def plain(self):
        return 1

    @handler()
    async def coro(self):
        return 2

    @handler("renamed")
    def gen(self):
        yield 3

    @handler
    async def agen(self):
        yield 4

    @handler(kind="async")
    def wrapped(self):  # a def returning a coroutine: inspect cannot tell, the mark does
        return self.coro()

    def not_a_handler(self):
        return 5


class Sub(Kinds):
    async def plain(self):  # override without the decorator: still a handler, kind re-detected
        return 10

    def cleanup(self):
        return "custom"

    ping = None  # removes the built-in


def test_four_kinds_and_decorator_forms():
    kinds = Kinds().handler_kinds()
    assert kinds["plain"] == "sync"
    assert kinds["coro"] == "async"
    assert kinds["renamed"] == "sync_gen"
    assert "gen" not in kinds
    assert kinds["agen"] == "async_gen"
    assert kinds["wrapped"] == "async"
    assert "not_a_handler" not in kinds
    assert "_initialize_framework" not in kinds


def test_builtins_present_with_kinds():
    kinds = Kinds().handler_kinds()
    assert BUILTINS <= set(kinds)
    assert kinds["ping"] == "async" and kinds["cleanup"] == "sync"


def test_override_keeps_handler_and_redetects_kind():
    b = Sub()
    kinds = b.handler_kinds()
    assert kinds["plain"] == "async"
    assert kinds["cleanup"] == "sync"
    assert b.handlers["cleanup"].fn() == "custom"
    assert "ping" not in kinds


def test_kind_decided_once_at_construction():
    b = Kinds()
    h = b.handlers["coro"]
    assert h.kind == "async" and h.fn.__self__ is b
    assert b.handlers is b.handlers  # no recomputation per access


def test_handler_kind_uses_inspect_on_plain_functions():
    async def a():
        pass

    def s():
        pass

    def g():
        yield

    async def ag():
        yield

    assert [handler_kind(f) for f in (s, a, g, ag)] == ["sync", "async", "sync_gen", "async_gen"]


def test_bad_kind_rejected():
    with pytest.raises(ValueError):
        handler(kind="threaded")


def test_a_handler_may_not_hide_a_base_bridge_method():
    class Hiding(EchoBridge):
        @handler
        def resources(self) -> dict:  # BaseBridge.resources is what list_resources calls
            return {}

    with pytest.raises(InvalidConfiguration, match="hides BaseBridge.resources"):
        Hiding()

    class Renamed(EchoBridge):  # the op keeps its name, the method does not hide anything
        @handler("resources")
        def resource_counts(self) -> dict:
            return {"n": 1}

    b = Renamed()
    assert "resources" in b.handlers and b.list_resources() == []


def test_base_bridge_is_abstract():
    with pytest.raises(TypeError):
        BaseBridge()


def test_echo_bridge_handlers():
    kinds = EchoBridge().handler_kinds()
    expected = {
        "noop": "async", "echo": "async", "sync_echo": "sync", "add": "sync", "sleep": "async",
        "sync_sleep": "sync", "hang": "sync", "hang_async": "async", "fail": "sync", "print_stdout": "sync",
        "unserializable": "async", "big": "async", "count": "async_gen", "sync_count": "sync_gen",
        "cancelled_tokens": "async", "alloc": "sync", "exit": "sync", "pid": "async",
    }
    for name, kind in expected.items():
        assert kinds.get(name) == kind, name
    assert BUILTINS <= set(kinds)


def test_builtins_without_runtime():
    b = EchoBridge()
    assert asyncio.run(b.handlers["ping"].fn()) == "pong"
    assert asyncio.run(b.handlers["health_check"].fn())["status"] == "ok"
    assert asyncio.run(b.handlers["list_handlers"].fn())["count"] == "async_gen"
    info = asyncio.run(b.handlers["get_info"].fn())
    assert info["framework"]["name"] == "echo" and info["handlers"]["noop"] == "async"


@pytest.mark.parametrize("exc, category", [
    (InvalidArgument("x"), "invalid_argument"),
    (NotFound("x"), "not_found"),
    (InvalidConfiguration("x"), "invalid_configuration"),
    (ModelError("x"), "model_error"),
    (RateLimit("x"), "rate_limit"),
    (Unavailable("x"), "unavailable"),
    (BridgeError("x"), "internal"),
    (ValueError("x"), "internal"),
    (asyncio.TimeoutError("x"), "timeout"),
    (TimeoutError("x"), "timeout"),
])
def test_exception_to_error_categories(exc, category):
    err = exception_to_error(exc)
    assert err["category"] == category
    assert err["type"] == type(exc).__name__
    assert err["message"] == "x"
    assert "traceback" not in err  # never raised: no traceback


def test_exception_to_error_traceback():
    try:
        raise NotFound("program p1")
    except NotFound as e:
        err = exception_to_error(e)
    assert err == {**err, "category": "not_found", "type": "NotFound", "message": "program p1"}
    assert "Traceback" in err["traceback"] and "NotFound: program p1" in err["traceback"]


def test_resources_built_once_per_version_and_forgotten():
    from mlbridge_worker.echo import EchoBridge
    from mlbridge_worker.errors import InvalidArgument, NotFound

    b = EchoBridge()
    b._initialize_framework()
    with pytest.raises(NotFound):
        b.resource("g")
    assert b.define_resource("g", "greeting", 1, {"prefix": "hi"})["built"] is True
    assert b.define_resource("g", "greeting", 1, {"prefix": "ignored"})["built"] is False
    assert b.greet("g", "ada") == "hi ada"
    assert b.define_resource("g", "greeting", 2, {"prefix": "yo"})["built"] is True
    assert b.greet("g", "ada") == "yo ada"
    assert b.forget_resource("g") == {"id": "g", "forgotten": True}
    with pytest.raises(NotFound):
        b.greet("g", "ada")
    with pytest.raises(InvalidArgument):
        b.define_resource("x", "no_such_kind", 1, {})


def test_global_config_resource_applies_to_the_bridge():
    from mlbridge_worker.echo import EchoBridge

    b = EchoBridge()
    b._initialize_framework()
    b.define_resource("settings", "config", 1, {"greeting": "hola"}, is_global=True)
    assert b.settings["greeting"] == "hola"


def test_generic_resource_ops():
    from mlbridge_worker.echo import EchoBridge
    from mlbridge_worker.errors import InvalidArgument, NotFound

    b = EchoBridge()
    b._initialize_framework()
    b.define_resource("g", "greeting", 3, {"prefix": "hi"})
    b.define_resource("settings", "config", 1, {"x": 1}, is_global=True)
    assert b.execute("g", {"name": "ada"}) == "hi ada"
    assert b.describe("g") == {"id": "g", "kind": "greeting", "version": 3, "prefix": "hi"}
    assert b.list_resources() == [{"id": "g", "kind": "greeting", "version": 3},
                                  {"id": "settings", "kind": "config", "version": 1}]
    assert b.list_resources("config") == [{"id": "settings", "kind": "config", "version": 1}]
    with pytest.raises(InvalidArgument, match="cannot execute resources of kind 'config'"):
        b.execute("settings", {})
    with pytest.raises(NotFound):
        b.execute("nope", {})
    with pytest.raises(NotFound):
        b.describe("nope")
    with pytest.raises(NotFound):
        b.resource("g", kind="config")

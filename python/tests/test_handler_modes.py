"""Per-op sync/async switch: one op, two implementations, switched at runtime or by the bridge
options, with the wire unchanged."""

from __future__ import annotations

import pytest

from mlbridge_worker import BaseBridge, alternative, handler

MIGRATING = "bridges:MigratingBridge"


@pytest.fixture
def w(make_worker):
    w = make_worker(MIGRATING)
    w.hello()
    return w


def test_switch_and_switch_back(w):
    args = {"text": "a long text"}
    first = w.ok("summarize", args)
    assert (first["impl"], first["summary"], first["op"]) == ("sync", "a lon", "summarize")
    assert first["thread"].startswith("mlbridge-sync")
    assert w.ok("handler_modes")["summarize"] == {"active": "sync", "available": ["async", "sync"]}

    assert w.ok("set_handler_mode", {"op": "summarize", "mode": "async"}) == {"op": "summarize", "mode": "async"}
    second = w.ok("summarize", args)  # same op, same arguments, same result shape
    assert (second["impl"], second["summary"], second["thread"]) == ("async", "a lon", "MainThread")
    assert w.ok("handler_modes")["summarize"]["active"] == "async"

    w.ok("set_handler_mode", {"op": "summarize", "mode": "sync"})  # the rollback
    assert w.ok("summarize", args)["impl"] == "sync"


def test_in_flight_calls_finish_where_they_started(w):
    slow = w.request("summarize", {"text": "x", "seconds": 0.3})
    w.ok("set_handler_mode", {"op": "summarize", "mode": "async"})
    assert w.next_for(slow)["result"]["impl"] == "sync"
    assert w.ok("summarize", {"text": "x"})["impl"] == "async"


def test_bad_switches(w):
    err = w.call("set_handler_mode", {"op": "summarize", "mode": "async_gen"})["error"]
    assert err["category"] == "invalid_argument" and "have: sync, async" in err["message"]
    err = w.call("set_handler_mode", {"op": "echo", "mode": "sync"})["error"]
    assert err["category"] == "invalid_argument" and "no alternative" in err["message"]


def test_options_choose_the_mode(w):
    w.ok("define_resource", {"id": "bridge_options", "kind": "options", "version": 1, "is_global": True,
                             "spec": {"handler_modes": {"summarize": "async"}}})
    assert w.ok("summarize", {"text": "x"})["impl"] == "async"
    err = w.call("define_resource", {"id": "bridge_options", "kind": "options", "version": 2, "is_global": True,
                                     "spec": {"handler_modes": {"summarize": "sync_gen"}}})["error"]
    assert err["category"] == "invalid_argument"


def test_misdeclared_alternatives():
    class SameKind(BaseBridge):
        def _initialize_framework(self):
            pass

        @handler
        def op(self):
            return 1

        @alternative("op")
        def op2(self):
            return 2

    class NoSuchOp(BaseBridge):
        def _initialize_framework(self):
            pass

        @alternative("missing")
        async def x(self):
            return 1

    with pytest.raises(TypeError, match="another kind"):
        SameKind()
    with pytest.raises(TypeError, match="not a handler"):
        NoSuchOp()


def test_migration_metrics_follow_the_switch(w):
    """Calls and errors count per handler kind, so the two implementations of a switched op
    stay apart; the modes and the kinds leave the runtime's own ops out."""
    for _ in range(3):
        w.ok("summarize", {"text": "x"})
    assert w.call("summarize", {"text": 5})["error"]  # a handler error, on the sync side
    w.ok("set_handler_mode", {"op": "summarize", "mode": "async"})
    w.ok("summarize", {"text": "y"})
    w.ok("echo", {"value": 1})

    h = w.ok("health_check")["handlers"]
    assert h["modes"]["summarize"] == "async"
    assert "ping" not in h["modes"] and "set_handler_mode" not in h["modes"]
    kinds = h["kinds"]
    assert kinds["sync"] == {"calls": 4, "errors": 1}
    # summarize (async) + echo, whichever kind echo is
    echo_kind = w.info["handlers"]["echo"]
    assert sum(k["calls"] for k in kinds.values()) == 6
    assert kinds["async"]["calls"] == 1 + (echo_kind == "async")

    merged = w.ok("get_stats")["ops"]["summarize"]
    assert (merged["kind"], merged["calls"], merged["errors"]) == ("async", 5, 1)
    assert w.ok("get_stats")["handlers"] == w.ok("health_check")["handlers"]

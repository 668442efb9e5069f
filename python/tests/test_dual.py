"""dual.py: a coroutine function written once, awaited from async handlers and called from sync
handler threads on the worker's one loop, through a real worker process."""

from __future__ import annotations

import pytest

from mlbridge_worker.dual import dual, run_sync

DUAL = "bridges:DualBridge"


@pytest.fixture
def w(make_worker):
    w = make_worker(DUAL)
    w.hello()
    return w


def test_sync_handler_runs_the_coroutine_on_the_loop(w):
    out = w.ok("sync_where", {"x": 3})
    assert out["x"] == 3
    assert out["op"] == "sync_where"  # contextvars (current_request) reach the coroutine
    assert out["caller"].startswith("mlbridge-sync")  # called from a pool thread...
    assert out["thread"] == "MainThread"  # ...it ran on the worker's one loop


def test_async_handler_awaits_the_same_function(w):
    out = w.ok("async_where", {"x": 4})
    assert out == {"x": 4, "op": "async_where", "thread": "MainThread", "caller": "MainThread"}


def test_no_mode_sticks(w):
    for _ in range(3):  # alternate: neither call changes how the next one runs
        assert w.ok("sync_where", {"x": 1})["caller"].startswith("mlbridge-sync")
        assert w.ok("async_where", {"x": 1})["caller"] == "MainThread"


def test_exception_reaches_the_caller(w):
    err = w.call("sync_explode")["error"]
    assert (err["type"], err["message"]) == ("ValueError", "from the coroutine")


def test_calling_sync_on_the_loop_is_refused_not_a_deadlock(w):
    assert "await the coroutine instead" in w.ok("sync_on_loop")


def test_timeout_cancels_the_coroutine(w):
    w.ok("sync_timeout")
    assert w.ok("cancellations") == 1


def test_outside_a_worker_and_not_a_coroutine():
    @dual
    async def f() -> int:
        return 1

    with pytest.raises(RuntimeError, match="inside an mlbridge worker"):
        f.sync()
    with pytest.raises(TypeError):
        dual(lambda: 1)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError):
        run_sync(f())

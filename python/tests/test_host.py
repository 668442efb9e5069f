"""Host calls (mlbridge_worker.host) against the protocol: a test plays the Go host, answering
the worker's ``hcall`` frames by hand (spec/protocol.md, "Host calls")."""

from __future__ import annotations

import asyncio
import http.server
import importlib.util
import threading
import time

import pytest

from client import Worker
from mlbridge_worker import host as host_mod
from mlbridge_worker.errors import InvalidConfiguration

FUNCS = {"weather": {"description": "Weather in a city", "schema": {"type": "object"}}}


@pytest.fixture
def hw():
    """An echo worker whose host announced one host function."""
    w = Worker()
    try:
        w.send({"t": "hello", "versions": [1], "host_funcs": FUNCS})
        h = w.recv()
        assert h["t"] == "hello", h
        yield w
    finally:
        w.kill()


def recv_t(w: Worker, *types: str) -> dict:
    m = w.recv()
    assert m is not None and m["t"] in types, m
    return m


def hcall_of(w: Worker, req_id: int) -> dict:
    m = recv_t(w, "hcall")
    assert m["parent"] == req_id and m["fn"] == "weather", m
    return m


@pytest.mark.parametrize("op", ["host_call", "host_call_sync", "host_call_request"])
def test_call_and_answer(hw, op):
    id = hw.request(op, {"fn": "weather", "args": {"city": "Paris"}})
    hc = hcall_of(hw, id)
    assert hc["args"] == {"city": "Paris"}
    hw.send({"t": "hres", "id": hc["id"], "ok": True, "result": {"temp_c": 21.5}})
    res = recv_t(hw, "res")
    assert res == {"t": "res", "id": id, "ok": True, "result": {"temp_c": 21.5}}


def test_call_ids_are_the_workers_own(hw):
    a = hw.request("host_call", {"fn": "weather"})
    b = hw.request("host_call", {"fn": "weather"})
    h1, h2 = hcall_of(hw, a), hcall_of(hw, b)
    assert h1["id"] != h2["id"] and "args" not in h1
    # answered out of order: each reaches its own caller
    hw.send({"t": "hres", "id": h2["id"], "ok": True, "result": "b"})
    hw.send({"t": "hres", "id": h1["id"], "ok": True, "result": "a"})
    got = {m["id"]: m["result"] for m in (recv_t(hw, "res"), recv_t(hw, "res"))}
    assert got == {a: "a", b: "b"}


@pytest.mark.parametrize(
    "category,cls",
    [("not_found", "NotFound"), ("invalid_argument", "InvalidArgument"), ("rate_limit", "RateLimit"),
     ("internal", "HostCallError"), ("cancelled", "HostCallCancelled")],
)
def test_error_category_becomes_exception(hw, category, cls):
    id = hw.request("host_call_catch", {"fn": "weather"})
    hc = hcall_of(hw, id)
    hw.send({"t": "hres", "id": hc["id"], "ok": False,
             "error": {"category": category, "type": "HostError", "message": "from go"}})
    res = recv_t(hw, "res")
    assert res["result"] == {"class": cls, "category": category, "type": "HostError", "message": "from go"}


def test_uncaught_error_keeps_category_and_type(hw):
    id = hw.request("host_call", {"fn": "weather"})
    hc = hcall_of(hw, id)
    hw.send({"t": "hres", "id": hc["id"], "ok": False,
             "error": {"category": "not_found", "type": "HostError", "message": "no such city"}})
    res = recv_t(hw, "res")
    assert not res["ok"] and res["error"]["category"] == "not_found" and res["error"]["type"] == "HostError"
    assert res["error"]["message"] == "no such city"


def test_depth_error_is_its_own_class(hw):
    id = hw.request("host_call_catch", {"fn": "weather"})
    hc = hcall_of(hw, id)
    hw.send({"t": "hres", "id": hc["id"], "ok": False,
             "error": {"category": "invalid_argument", "type": "CallbackDepthExceeded", "message": "too deep"}})
    assert recv_t(hw, "res")["result"]["class"] == "CallbackDepthExceeded"


@pytest.mark.parametrize("op", ["host_call", "host_call_sync"])
def test_cancel_cancels_the_host_call(hw, op):
    id = hw.request(op, {"fn": "weather", "token": f"t-{op}"})
    hc = hcall_of(hw, id)
    hw.send({"t": "cancel", "id": id})
    got = {}
    for _ in range(2):
        m = recv_t(hw, "res", "hcancel")
        got[m["t"]] = m
    assert got["res"]["error"]["category"] == "cancelled"
    assert got["hcancel"] == {"t": "hcancel", "id": hc["id"]}
    # a late answer to the abandoned call is dropped; the worker serves on
    hw.send({"t": "hres", "id": hc["id"], "ok": True, "result": 1})
    deadline = time.monotonic() + 5
    while f"hcall_cancelled:t-{op}" not in hw.ok("cancelled_tokens"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert hw.ok("echo", {"value": 3}) == 3


def test_a_handler_calls_the_host_three_times_in_a_row(hw):
    # each answer wakes the handler's task where it waits; it may wait for the next call
    id = hw.request("host_call_chain", {"fn": "weather", "n": 3})
    for k in range(3):
        hc = hcall_of(hw, id)
        assert hc["args"] == {"i": k}
        hw.send({"t": "hres", "id": hc["id"], "ok": True, "result": k * 10})
    assert recv_t(hw, "res") == {"t": "res", "id": id, "ok": True, "result": [0, 10, 20]}


def test_a_handler_that_swallows_the_cancel_goes_on_unanswered(hw):
    # The cancel is thrown into the handler's task; it catches it and awaits something else.
    # The request stays answered as cancelled; the worker serves on.
    id = hw.request("host_call_shrug", {"fn": "weather", "token": "s"})
    hcall_of(hw, id)
    hw.send({"t": "cancel", "id": id})
    got = {}
    for _ in range(2):
        m = recv_t(hw, "res", "hcancel")
        got[m["t"]] = m
    assert got["res"]["error"]["category"] == "cancelled"
    deadline = time.monotonic() + 5
    while "shrugged:s" not in hw.ok("cancelled_tokens"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert hw.ok("echo", {"value": 4}) == 4


@pytest.fixture
def http_url():
    """A loopback HTTP server in a thread that answers every GET with ``ok``."""

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/"
    finally:
        srv.shutdown()
        srv.server_close()


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def test_code_after_a_host_call_runs_in_a_task(hw, http_url):
    # A Go tool call followed by an LM call (dspy_tools.HostTool.acall, langchain_tools.acall):
    # the code after the host call needs a current task (asyncio.timeout; sniffio and anyio,
    # under httpx and the OpenAI/LiteLLM clients).
    url = http_url if _has("httpx") else ""
    id = hw.request("host_call_then_task_state", {"fn": "weather", "url": url})
    hc = hcall_of(hw, id)
    hw.send({"t": "hres", "id": hc["id"], "ok": True, "result": 1})
    res = recv_t(hw, "res")
    assert res["ok"], res
    got = res["result"]
    assert got["task"] is True and got["asyncio_timeout"] == "ok", got
    assert got["sniffio"] == ("asyncio" if _has("sniffio") else None), got
    if url:
        assert got["http"] == "ok", got


@pytest.mark.skipif(not _has("httpx"), reason="httpx is not installed")
def test_the_eager_first_step_has_no_task_until_it_yields(hw, http_url):
    # Pinned limitation (eager.py): the first step runs before any task exists, so code that
    # needs one fails there: asyncio.timeout, and httpx (sniffio finds no async library; told
    # "asyncio" through its cvar, anyio fails next on the missing task). One
    # ``await asyncio.sleep(0)`` first moves the handler into its task and all of it works.
    got = hw.ok("first_step_task_state", {"url": http_url})
    assert got["task"] is False, got
    assert got["asyncio_timeout"].startswith("RuntimeError"), got
    assert got["http"] != "ok", got
    got = hw.ok("first_step_task_state", {"url": http_url, "yield_first": True})
    assert got["task"] is True and got["asyncio_timeout"] == "ok" and got["http"] == "ok", got
    assert got["sniffio"] == ("asyncio" if _has("sniffio") else None), got


def test_deadline_cancels_the_host_call(hw):
    id = hw.request("host_call", {"fn": "weather"}, deadline_ms=200)
    hc = hcall_of(hw, id)
    got = {}
    for _ in range(2):
        m = recv_t(hw, "res", "hcancel")
        got[m["t"]] = m
    assert got["res"]["error"]["category"] == "timeout"
    assert got["hcancel"]["id"] == hc["id"]


def test_functions_from_the_hello(hw):
    assert hw.ok("host_funcs") == FUNCS


def test_many_concurrent_calls_from_one_handler(hw):
    id = hw.request("host_call_many", {"fn": "weather", "n": 20})
    calls = [hcall_of(hw, id) for _ in range(20)]
    for hc in reversed(calls):
        hw.send({"t": "hres", "id": hc["id"], "ok": True, "result": hc["args"]["i"]})
    assert recv_t(hw, "res")["result"] == list(range(20))


def test_outside_a_worker_or_request():
    with pytest.raises(InvalidConfiguration):
        asyncio.run(host_mod.host.call("weather"))
    with pytest.raises(InvalidConfiguration):
        host_mod.host.call_sync("weather")


def test_arguments_over_the_hosts_max_frame_are_refused_unsent(make_worker):
    w = make_worker()
    w.hello(max_frame=4096)
    res = w.call("host_call_catch", {"fn": "weather", "args": {"blob": "x" * 5000}})
    assert res["result"]["class"] == "InvalidArgument" and "max frame" in res["result"]["message"]
    assert w.ok("echo", {"value": 1}) == 1  # nothing broke the stream

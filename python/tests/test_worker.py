"""End to end: a real worker subprocess driven through the protocol by tests/client.py."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time

import pytest

from client import ECHO, TIMEOUT, Worker, worker_env
from mlbridge_worker.protocol import encode_frame

# ---------------------------------------------------------------- handshake


def test_handshake(worker):
    h = worker.info
    assert h["version"] == 1
    assert h["pid"] == worker.proc.pid
    assert h["framework"] == {"name": "echo", "version": "0.1.0"}
    assert {"cancel", "deadline", "streaming", "echo"} <= set(h["capabilities"])
    hs = h["handlers"]
    assert hs["noop"] == "async" and hs["sync_echo"] == "sync"
    assert hs["count"] == "async_gen" and hs["sync_count"] == "sync_gen"
    assert {"ping", "get_info", "get_stats", "health_check", "list_handlers", "cleanup", "shutdown"} <= set(hs)
    assert h["max_frame"] == 64 * 1024 * 1024
    assert h["runtime"]["threads"] == 8
    assert h["runtime"]["python"] == sys.version.split()[0]
    assert worker.ok("noop") is None


def test_highest_common_version_chosen(make_worker):
    w = make_worker()
    assert w.hello(versions=[0, 1, 5])["version"] == 1


def test_version_mismatch_hello_error_exit_1(make_worker):
    w = make_worker()
    h = w.hello(versions=[2, 3])
    assert h["error"]["category"] == "protocol"
    assert "version" in h["error"]["message"]
    assert w.wait() == 1


def test_first_frame_not_hello(make_worker):
    w = make_worker()
    w.send({"t": "req", "id": 1, "op": "noop"})
    h = w.recv()
    assert h["t"] == "hello" and h["error"]["category"] == "protocol"
    assert w.wait() == 1


def test_initialize_framework_failure_hello_error(make_worker):
    w = make_worker("bridges:FailingBridge")
    h = w.hello()
    err = h["error"]
    assert err["category"] == "invalid_configuration"
    assert err["type"] == "RuntimeError"
    assert "framework exploded" in err["message"] and "framework exploded" in err["traceback"]
    assert w.wait() == 1


@pytest.mark.parametrize("spec", ["no_such_module_xyz:Bridge", "bridges:NotABridge", "bridges:Missing", "nocolon"])
def test_bad_bridge_spec_hello_error(make_worker, spec):
    w = make_worker(spec)
    h = w.hello()
    assert h["error"]["category"] == "invalid_configuration"
    assert w.wait() == 1


def test_host_max_frame_bounds_results(make_worker):
    w = make_worker()
    w.hello(max_frame=100_000)
    assert len(w.ok("big", {"n": 50_000})) == 50_000
    err = w.call("big", {"n": 200_000})["error"]
    assert err["category"] == "serialization"
    assert "100000" in err["message"] and "200" in err["message"]
    assert w.ok("noop") is None  # the worker survives


def test_missing_magic_exits_2():
    env = worker_env()
    del env["MLBRIDGE_MAGIC"]
    p = subprocess.run([sys.executable, "-m", "mlbridge_worker", "--bridge", ECHO], env=env,
                       capture_output=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    assert p.returncode == 2
    assert b"started by an mlbridge host" in p.stderr
    assert p.stdout == b""


# ---------------------------------------------------------------- values

VALUES = [
    None, True, False, 0, 1, -1, 127, 128, -33, 2**31, -(2**31) - 1, 2**63 - 1, 2**64 - 1, -(2**63),
    0.0, 1.5, -2.25, 3.141592653589793, 1e300,
    "", "hello", "héllo wörld ✓ 日本語 🚀", "x" * 100_000,
    b"", b"\x00\xff\x10", bytes(range(256)) * 10,
    [], {}, [1, "a", None, [2, [3, {}]]], {"a": {"b": {"c": [b"x", 1.0]}}},
    {"k" + str(i): i for i in range(100)},
]


@pytest.mark.parametrize("op", ["echo", "sync_echo"])
def test_echo_every_type(worker, op):
    for v in VALUES:
        got = worker.ok(op, {"value": v})
        assert got == v and type(got) is type(v), (op, v)


def test_large_value_round_trip(worker):
    blob = os.urandom(10 * 1024 * 1024)
    assert worker.ok("echo", {"value": blob}) == blob


def test_add(worker):
    assert worker.ok("add", {"a": 2, "b": 40}) == 42


# ---------------------------------------------------------------- errors


def err(worker, op, args=None, **kw):
    m = worker.call(op, args, **kw)
    assert m["ok"] is False, m
    return m["error"]


def test_missing_and_unexpected_arguments_are_invalid_argument(worker):
    e = err(worker, "add", {"a": 1})
    assert e["category"] == "invalid_argument" and e["type"] == "TypeError" and "'b'" in e["message"]
    e = err(worker, "add", {"a": 1, "b": 2, "c": 3})
    assert e["category"] == "invalid_argument"
    e = err(worker, "sleep", {"secs": 1})  # async handler: binding fails before the coroutine exists
    assert e["category"] == "invalid_argument"
    e = err(worker, "count", {"m": 1}, stream=True)
    assert e["category"] == "invalid_argument"
    e = err(worker, "sync_count", {"m": 1}, stream=True)
    assert e["category"] == "invalid_argument"


def test_type_error_inside_handler_is_internal(worker):
    e = err(worker, "fail", {"type": "TypeError", "message": "inner"})
    assert e == {**e, "category": "internal", "type": "TypeError", "message": "inner"}
    assert "Traceback" in e["traceback"]


def test_bridge_error_raised_by_handler(worker):
    e = err(worker, "add", {"a": 1, "b": "2"})
    assert e["category"] == "invalid_argument" and e["type"] == "InvalidArgument"


@pytest.mark.parametrize("exc, category", [
    ("ValueError", "internal"), ("RuntimeError", "internal"), ("KeyError", "internal"),
    ("NotFound", "not_found"), ("ModelError", "model_error"), ("RateLimit", "rate_limit"),
    ("Unavailable", "unavailable"), ("InvalidConfiguration", "invalid_configuration"),
    ("InvalidArgument", "invalid_argument"), ("TimeoutError", "timeout"),
])
def test_error_categories(worker, exc, category):
    e = err(worker, "fail", {"type": exc, "message": "m"})
    assert e["category"] == category and e["type"] == exc
    assert worker.ok("noop") is None


def test_unknown_op(worker):
    e = err(worker, "no_such_op")
    assert e["category"] == "unknown_op" and "no_such_op" in e["message"]


def test_unserializable_result_worker_survives(worker):
    e = err(worker, "unserializable")
    assert e["category"] == "serialization"
    assert worker.ok("echo", {"value": 1}) == 1


def test_unary_call_of_generator_and_stream_of_plain_handler(worker):
    assert err(worker, "count", {"n": 2})["category"] == "invalid_argument"
    assert err(worker, "echo", {"value": 1}, stream=True)["category"] == "invalid_argument"


def test_bad_request_with_readable_id_gets_protocol_error(worker):
    worker.send({"t": "req", "id": 77, "op": 5})
    m = worker.next_for(77)
    assert m["ok"] is False and m["error"]["category"] == "protocol"
    worker.send({"t": "req", "id": 78, "op": "echo", "args": [1]})
    assert worker.next_for(78)["error"]["category"] == "protocol"
    # unreadable id, unknown type: logged and skipped, the stream stays in sync
    worker.send({"t": "req", "id": "x", "op": "noop"})
    worker.send({"t": "bogus"})
    assert worker.ok("noop") is None
    worker.wait_stderr("bogus")


def test_duplicate_in_flight_id(worker):
    worker.request("sleep", {"seconds": 0.3}, id=500)
    worker.send({"t": "req", "id": 500, "op": "noop"})
    m = worker.next_for(500)
    assert m["ok"] is False and m["error"]["category"] == "protocol"
    assert worker.next_for(500)["ok"] is True  # the original still answers


# ---------------------------------------------------------------- deadline and cancel


def test_deadline_async_cancels_the_task(worker):
    e = err(worker, "sleep", {"seconds": 30, "token": "dl-async"}, deadline_ms=150)
    assert e["category"] == "timeout"
    assert "dl-async" in worker.ok("cancelled_tokens")


def test_deadline_already_passed(worker):
    e = err(worker, "sleep", {"seconds": 30, "token": "dl-past"}, deadline_ms=-1000)
    assert e["category"] == "timeout"
    assert "dl-past" not in worker.ok("cancelled_tokens")  # never started


def test_deadline_not_reached(worker):
    assert worker.ok("sleep", {"seconds": 0.01}, deadline_ms=5000) == 0.01


def test_deadline_sync_abandons_thread(make_worker):
    w = make_worker(threads=1)
    w.hello()
    e = err(w, "sync_sleep", {"seconds": 0.5}, deadline_ms=100)
    assert e["category"] == "timeout"
    h = w.ok("health_check")
    assert (h["status"], h["in_flight"], h["abandoned"]) == ("degraded", 0, 1)
    # one thread: this call queues behind the abandoned one, so when it answers, that returned
    assert w.ok("sync_echo", {"value": 5}) == 5
    h = w.ok("health_check")
    assert (h["status"], h["in_flight"], h["abandoned"]) == ("ok", 0, 0)


def test_cancel_async(worker):
    i = worker.request("sleep", {"seconds": 30, "token": "c-async"})
    assert worker.ok("noop") is None  # the sleep is surely running now
    worker.send({"t": "cancel", "id": i})
    m = worker.next_for(i)
    assert m["ok"] is False and m["error"]["category"] == "cancelled"
    assert "c-async" in worker.ok("cancelled_tokens")


def test_cancel_in_the_same_read_as_the_request_reaches_the_handler(worker):
    # The request and its cancel arrive in one write, so the cancel lands before the task
    # that continues the eagerly started handler has run a step: the handler itself must
    # still see CancelledError (regression: it used to be dropped with the wrapper task).
    from mlbridge_worker.protocol import encode_frame

    i = worker.new_id()
    worker.send_raw(
        encode_frame({"t": "req", "id": i, "op": "sleep", "args": {"seconds": 30, "token": "same-read"}})
        + encode_frame({"t": "cancel", "id": i})
    )
    assert worker.next_for(i)["error"]["category"] == "cancelled"
    assert "same-read" in worker.ok("cancelled_tokens")


def test_cancel_async_never_completing_future(worker):
    i = worker.request("hang_async")
    worker.send({"t": "cancel", "id": i})
    assert worker.next_for(i)["error"]["category"] == "cancelled"
    assert worker.ok("health_check")["in_flight"] == 0


def test_cancel_sync_counts_abandoned(worker):
    i = worker.request("hang")
    assert worker.ok("noop") is None
    worker.send({"t": "cancel", "id": i})
    assert worker.next_for(i)["error"]["category"] == "cancelled"
    h = worker.ok("health_check")
    assert h["abandoned"] == 1 and h["status"] == "degraded"
    assert worker.ok("get_stats")["process"]["abandoned"] == 1


def test_cancel_unknown_or_finished_id_ignored(worker):
    i = worker.request("noop")
    assert worker.next_for(i)["ok"] is True
    worker.send({"t": "cancel", "id": i})
    worker.send({"t": "cancel", "id": 987654})
    j = worker.request("echo", {"value": "after"})
    m = worker.recv()  # the very next frame is the echo: nothing was sent for the cancels
    assert m["id"] == j and m["result"] == "after"


# ---------------------------------------------------------------- streaming


def test_stream_async_gen(worker):
    items, end = worker.stream("count", {"n": 5})
    assert items == [0, 1, 2, 3, 4] and end == {"t": "end", "id": end["id"]}


def test_stream_sync_gen(worker):
    items, end = worker.stream("sync_count", {"n": 5})
    assert items == [0, 1, 2, 3, 4] and end["t"] == "end"


def test_stream_empty(worker):
    assert worker.stream("count", {"n": 0})[0] == []
    assert worker.stream("sync_count", {"n": 0})[0] == []


def test_stream_many_items(worker):
    items, end = worker.stream("sync_count", {"n": 20000})
    assert items == list(range(20000)) and end["t"] == "end"


def test_stream_cancel_mid_stream_async(worker):
    i = worker.request("count", {"n": 1000, "delay": 0.02, "token": "s-async"}, stream=True)
    assert worker.next_for(i) == {"t": "chunk", "id": i, "data": 0}
    assert worker.next_for(i)["data"] == 1
    worker.send({"t": "cancel", "id": i})
    while (m := worker.next_for(i))["t"] == "chunk":
        pass
    assert m["t"] == "res" and m["error"]["category"] == "cancelled"
    assert "s-async" in worker.ok("cancelled_tokens")
    j = worker.request("noop")
    assert worker.recv()["id"] == j  # no chunk of the cancelled stream after its res


def test_stream_cancel_mid_stream_sync(worker):
    i = worker.request("sync_count", {"n": 1000, "delay": 0.02}, stream=True)
    assert worker.next_for(i)["data"] == 0
    worker.send({"t": "cancel", "id": i})
    while (m := worker.next_for(i))["t"] == "chunk":
        pass
    assert m["error"]["category"] == "cancelled"
    j = worker.request("sync_echo", {"value": 1})  # threads free up: the generator thread stopped
    assert worker.next_for(j)["result"] == 1


def test_stream_deadline(worker):
    items, m = worker.stream("count", {"n": 1000, "delay": 0.02, "token": "s-dl"}, deadline_ms=200)
    assert 0 < len(items) < 1000
    assert m["t"] == "res" and m["error"]["category"] == "timeout"
    assert "s-dl" in worker.ok("cancelled_tokens")


def test_stream_unencodable_item(make_worker):
    w = make_worker("bridges:StdinBridge")
    w.hello()
    items, m = w.stream("stream_bad_item")
    assert items == [1]
    assert m["t"] == "res" and m["error"]["category"] == "serialization"
    assert w.ok("noop") is None


# ---------------------------------------------------------------- concurrency


def test_out_of_order_responses(worker):
    slow = worker.request("sleep", {"seconds": 0.5})
    fast = worker.request("noop")
    first = worker.recv()
    assert first["id"] == fast
    assert worker.next_for(slow)["result"] == 0.5


def test_sync_handlers_run_concurrently(make_worker):
    w = make_worker(threads=4)
    w.hello()
    t0 = time.monotonic()
    ids = [w.request("sync_sleep", {"seconds": 0.4}) for _ in range(4)]
    for i in ids:
        assert w.next_for(i)["ok"]
    assert time.monotonic() - t0 < 1.2  # 4 x 0.4 s in parallel, not 1.6 s in series


def test_many_in_flight(worker):
    ids = {}
    for k in range(300):
        op = ("echo", "sync_echo", "noop")[k % 3]
        ids[worker.request(op, None if op == "noop" else {"value": k})] = (op, k)
    for i, (op, k) in ids.items():
        m = worker.next_for(i)
        assert m["ok"] and m["result"] == (None if op == "noop" else k)


def test_ping_answered_while_sync_handler_blocks(make_worker):
    w = make_worker(threads=1)
    w.hello()
    w.request("hang")
    w.request("sync_echo", {"value": 1})  # queued behind the hang
    w.send({"t": "ping", "seq": 41})
    m = w.recv()
    assert m == {"t": "pong", "seq": 41}
    assert w.ok("noop") is None  # async handlers still run


def test_contextvars_flow_into_handlers(worker):
    i = worker.request("sync_ctxvar")
    r = worker.next_for(i)["result"]
    assert r["init"] == "initialized"  # set by _initialize_framework
    assert r["id"] == i and r["op"] == "sync_ctxvar"
    assert r["thread"].startswith("mlbridge-sync")
    j = worker.request("ctxvar")
    assert worker.next_for(j)["result"] == {"init": "initialized", "id": j, "op": "ctxvar"}


# ---------------------------------------------------------------- stdio hygiene


def test_print_stdout_does_not_corrupt_protocol(worker):
    assert worker.ok("print_stdout", {"text": "PRINTED-BY-HANDLER"}) == "ok"
    assert worker.ok("echo", {"value": "still in sync"}) == "still in sync"
    # all three writes (print, os.write(1, ...), sys.stdout.write) went to stderr
    worker.wait_stderr("PRINTED-BY-HANDLER", count=3)
    assert worker.decode_error is None


def test_user_code_reading_stdin_gets_nothing(make_worker):
    w = make_worker("bridges:StdinBridge")
    w.hello()
    assert w.ok("read_stdin") == ""
    assert w.ok("noop") is None


# ---------------------------------------------------------------- built-ins, stats


def test_builtins(worker):
    assert worker.ok("ping") == "pong"
    info = worker.ok("get_info")
    assert info["framework"]["name"] == "echo" and info["pid"] == worker.proc.pid
    assert worker.ok("list_handlers") == worker.info["handlers"]
    h = worker.ok("health_check")
    assert (h["status"], h["in_flight"], h["abandoned"]) == ("ok", 0, 0)
    assert "gc_collected" in worker.ok("cleanup")
    assert worker.ok("pid") == worker.proc.pid


def test_stats(worker):
    for _ in range(20):
        worker.ok("noop")
    worker.call("fail")
    i = worker.request("sleep", {"seconds": 5})
    s = worker.ok("get_stats")
    noop = s["ops"]["noop"]
    assert noop["kind"] == "async" and noop["calls"] == 20 and noop["errors"] == 0
    assert noop["p50_us"] >= 1 and noop["p99_us"] >= noop["p50_us"]
    assert sum(c for _, c in noop["histogram_us"]) == 20
    assert s["ops"]["fail"]["errors"] == 1
    assert s["ops"]["sleep"]["in_flight"] == 1
    p = s["process"]
    assert p["pid"] == worker.proc.pid and p["in_flight"] == 1 and p["rss_bytes"] > 1_000_000
    assert p["uptime_s"] >= 0 and p["threads"] >= 1
    worker.send({"t": "cancel", "id": i})
    worker.next_for(i)


def test_alloc_grows_rss(worker):
    before = worker.ok("get_stats")["process"]["rss_bytes"]
    after = worker.ok("alloc", {"mb": 50})
    assert after - before > 40 * 1024 * 1024


# ---------------------------------------------------------------- lifecycle


def test_shutdown_frame_lets_in_flight_finish(worker):
    i = worker.request("sleep", {"seconds": 0.3})
    worker.send({"t": "shutdown", "grace": 5000})
    m = worker.next_for(i)
    assert m["ok"] is True and m["result"] == 0.3
    assert worker.wait() == 0


def test_shutdown_grace_expires(worker):
    i = worker.request("hang_async")
    j = worker.request("hang")
    t0 = time.monotonic()
    worker.send({"t": "shutdown", "grace": 200})
    assert worker.next_for(i)["error"]["category"] == "unavailable"
    assert worker.next_for(j)["error"]["category"] == "unavailable"
    assert worker.wait() == 0  # the hung thread does not keep the process alive
    assert time.monotonic() - t0 < 5


def test_requests_after_shutdown_refused(worker):
    i = worker.request("sleep", {"seconds": 0.3})
    worker.send({"t": "shutdown", "grace": 5000})
    j = worker.request("noop")
    assert worker.next_for(j)["error"]["category"] == "unavailable"
    assert worker.next_for(i)["ok"] is True
    assert worker.wait() == 0


def test_shutdown_builtin_op(worker):
    m = worker.call("shutdown", {"grace": 1000})
    assert m["ok"] and m["result"]["shutting_down"] is True
    assert worker.wait() == 0


def test_eof_exits_0(worker):
    i = worker.request("hang")
    worker.close_stdin()
    assert worker.next_for(i)["error"]["category"] == "unavailable"
    assert worker.wait() == 0


def test_eof_right_after_hello(make_worker):
    w = make_worker()
    w.send({"t": "hello", "versions": [1]})
    w.send({"t": "req", "id": 1, "op": "echo", "args": {"value": 1}})
    w.close_stdin()
    assert w.recv()["t"] == "hello"
    assert w.recv()["result"] == 1  # what came before EOF is served
    assert w.wait() == 0


@pytest.mark.parametrize("garbage", [
    b"\x00\x00\x00\x05\xc1\xc1\xc1\xc1\xc1",  # malformed
    b"\x00\x00\x00\x02\x92\x01",  # an array of 2 holding 1 item: malformed
    b"\x00\x00\x00\x00",  # empty frame
    encode_frame([1, 2]),  # not a map
])
def test_frame_garbage_exits_3(worker, garbage):
    worker.send_raw(garbage)
    assert worker.wait() == 3
    assert "protocol error" in worker.stderr


def test_truncated_stream_exits_3(worker):
    worker.send_raw(encode_frame({"t": "req", "id": 1, "op": "noop"})[:-2])
    worker.close_stdin()
    assert worker.wait() == 3


def test_frame_too_large_refused_from_header(make_worker):
    w = make_worker(max_frame=1024)
    assert w.hello()["max_frame"] == 1024
    w.send_raw(struct.pack(">I", 1 << 30))  # no payload follows: the header alone is refused
    assert w.wait() == 3
    assert "frame_too_large" in w.stderr


def test_crash_simulation(worker):
    worker.request("exit", {"code": 7})
    assert worker.wait() == 7
    assert worker.recv() is None  # stdout closed


def test_parent_watch(make_worker):
    """The worker's parent (an intermediate process) exits while the worker's stdin stays open:
    the worker notices through MLBRIDGE_PARENT_PID and exits."""
    code = (
        "import os, subprocess, sys\n"
        "env = dict(os.environ, MLBRIDGE_PARENT_PID=str(os.getpid()))\n"
        f"subprocess.Popen([sys.executable, '-m', 'mlbridge_worker', '--bridge', {ECHO!r}], env=env)\n"
    )
    w = make_worker(cmd=[sys.executable, "-c", code])
    h = w.hello()  # the worker inherited the intermediate's stdin/stdout: our pipes
    worker_pid = h["pid"]
    assert worker_pid != w.proc.pid
    assert w.proc.wait(TIMEOUT) == 0  # the intermediate is gone; we still hold the worker's stdin
    t0 = time.monotonic()
    assert w.stdout_closed.wait(TIMEOUT), "worker did not exit"
    assert time.monotonic() - t0 < 2.0
    w.wait_stderr("parent process")


def test_runs_from_any_directory(tmp_path):
    env = worker_env()
    env.pop("PYTHONPATH", None)
    w = Worker(env=env, cwd=str(tmp_path))
    try:
        assert w.hello()["version"] == 1
    finally:
        w.kill()


def test_small_max_frame_enforced_on_whole_frames(make_worker):
    w = make_worker(max_frame=1024)
    w.hello()
    assert w.ok("echo", {"value": "x" * 900}) == "x" * 900
    w.send({"t": "req", "id": 99, "op": "echo", "args": {"value": "y" * 2000}})  # one whole frame
    assert w.wait() == 3
    assert "frame_too_large" in w.stderr


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_both_event_loops(make_worker, loop):
    w = make_worker(env=worker_env(MLBRIDGE_LOOP=loop))
    assert w.hello()["runtime"]["loop"] == loop
    assert w.ok("echo", {"value": b"\x00"}) == b"\x00"
    assert err(w, "sleep", {"seconds": 30, "token": f"loop-{loop}"}, deadline_ms=100)["category"] == "timeout"
    assert f"loop-{loop}" in w.ok("cancelled_tokens")
    assert w.stream("count", {"n": 3})[0] == [0, 1, 2]
    assert w.ok("sync_ctxvar")["init"] == "initialized"
    w.send({"t": "shutdown", "grace": 1000})
    assert w.wait() == 0


def test_spin_mode(make_worker):
    """--spin-us: the reader polls between requests; everything else must still progress."""
    w = make_worker(ECHO, "--spin-us", "5000")
    assert w.hello()["runtime"]["spin_us"] == 5000
    for k in range(200):
        assert w.ok("echo", {"value": k}) == k
    slow = w.request("sleep", {"seconds": 0.05})  # a task: needs the loop
    assert w.ok("sync_echo", {"value": 1}) == 1  # a thread: needs the loop
    assert w.next_for(slow)["ok"]
    assert err(w, "hang_async", deadline_ms=50)["category"] == "timeout"  # a timer fires
    w.send({"t": "ping", "seq": 5})
    assert w.recv() == {"t": "pong", "seq": 5}
    w.close_stdin()  # EOF seen while spinning
    assert w.wait() == 0


def test_sync_handler_returning_coroutine_is_a_bridge_bug(make_worker):
    w = make_worker("bridges:MisdeclaredBridge")
    assert w.hello()["handlers"]["returns_coroutine"] == "sync"
    e = err(w, "returns_coroutine")
    assert e["category"] == "invalid_configuration" and "async def" in e["message"]


def test_values_with_any_map_keys_and_raw_strings(worker):
    # maps inside values may have non-string keys
    assert worker.ok("echo", {"value": {1: "one", 2: [3]}}) == {1: "one", 2: [3]}
    # a str that is not valid UTF-8 inside args does not break the stream; it cannot be
    # encoded back as msgpack str, so echoing it is a serialization error
    payload = (b"\x84\xa1t\xa3req\xa2id\x05\xa2op\xa4echo\xa4args\x81\xa5value\xa2\xff\xfe")
    worker.send_raw(struct.pack(">I", len(payload)) + payload)
    m = worker.next_for(5)
    assert m["ok"] is False and m["error"]["category"] == "serialization"
    # an envelope string that is not valid UTF-8: protocol error for that request only
    payload = b"\x83\xa1t\xa3req\xa2id\x06\xa2op\xa2\xc3\x28"
    worker.send_raw(struct.pack(">I", len(payload)) + payload)
    assert worker.next_for(6)["error"]["category"] == "protocol"
    assert worker.ok("noop") is None

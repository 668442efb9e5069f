"""Trace continuation in the worker (mlbridge_worker/tracing.py): a req's traceparent (the
host's handler span) is the current span while the handler runs, for every handler kind,
through real workers, so the spans its code starts are children of it and log records made
during the call carry its ids; the worker starts no span of its own per request, whatever the
outcome; without OpenTelemetry (or without a traceparent) nothing changes."""

from __future__ import annotations

import json
import os
import pathlib
import sys

import pytest

from client import worker_env

from mlbridge_worker import log as wlog
from mlbridge_worker import tracing

TESTS = pathlib.Path(__file__).resolve().parent
TRACE = "trace_bridges:TraceBridge"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
TP = f"00-{TRACE_ID}-{PARENT}-01"


def traced(w, op: str, args: dict | None = None, *, stream: bool = False, tp: str = TP,
           tracestate: str | None = None, deadline_ms: float | None = None) -> int:
    """Send a req carrying a trace context; its id."""
    import time

    id = w.new_id()
    msg: dict = {"t": "req", "id": id, "op": op, "traceparent": tp}
    if args is not None:
        msg["args"] = args
    if stream:
        msg["stream"] = True
    if tracestate is not None:
        msg["tracestate"] = tracestate
    if deadline_ms is not None:
        msg["deadline"] = int(time.time() * 1000 + deadline_ms)
    w.send(msg)
    return id


def answer(w, id: int) -> list:
    """Every frame of request id up to its terminal one."""
    frames = []
    while True:
        m = w.next_for(id)
        frames.append(m)
        if m["t"] in ("res", "end"):
            return frames


def server_spans(w) -> list[dict]:
    """Spans of kind SERVER the worker recorded: the handler spans are the host's, never its."""
    return [s for s in w.ok("spans") if s["kind"] == "SERVER"]


def records(w) -> list[dict]:
    return [json.loads(line[len(wlog.MARKER):]) for line in w.stderr.splitlines() if line.startswith(wlog.MARKER)]


@pytest.fixture
def tw(make_worker):
    w = make_worker(TRACE)
    w.hello()
    return w


@pytest.mark.parametrize("op,stream", [
    ("inner_eager", False),
    ("inner_async", False),
    ("inner_sync", False),
    ("inner_sync_gen", True),
    ("inner_async_gen", True),
])
def test_handler_runs_in_the_host_span(tw, op, stream):
    id = traced(tw, op, stream=stream, tracestate="rojo=00f067aa0ba902b7")
    frames = answer(tw, id)
    assert frames[-1].get("ok", True), frames
    seen = frames[0]["data"] if stream else frames[0]["result"]
    # the handler's own code runs in the host's span: its ids are current, its spans children
    assert seen == {"trace_id": TRACE_ID, "span_id": PARENT}
    (inner,) = [s for s in tw.ok("spans") if s["name"] == op]
    assert inner["kind"] == "INTERNAL" and inner["trace_id"] == TRACE_ID
    assert inner["parent_id"] == PARENT and inner["remote_parent"]
    assert server_spans(tw) == []  # no span of the worker's own per request
    # a log record made during the call carries the ids of the span current there
    tw.wait_stderr(f'"msg":"inside {op}"')
    (rec,) = [r for r in records(tw) if r["msg"] == f"inside {op}"]
    assert rec["trace_id"] == TRACE_ID and rec["span_id"] == inner["span_id"]


def test_not_sampled_parent_records_nothing_but_ids_still_flow(tw):
    tp = f"00-{TRACE_ID}-{PARENT}-00"
    id = traced(tw, "inner_sync", tp=tp)
    (res,) = answer(tw, id)
    assert res["ok"] and res["result"] == {"trace_id": TRACE_ID, "span_id": PARENT}
    assert tw.ok("spans") == []  # the default sampler follows the host's decision


def test_untraced_and_unparsable_requests_have_no_parent(tw):
    assert tw.ok("inner_sync") == {}
    (res,) = answer(tw, traced(tw, "inner_sync", tp="not-a-traceparent"))
    assert res["ok"] and res["result"] == {}
    assert [s["name"] for s in tw.ok("spans")] == ["inner_sync", "inner_sync"]  # the app's spans only
    assert all(s["kind"] == "INTERNAL" and s["parent_id"] is None for s in tw.ok("spans"))


@pytest.mark.parametrize("op,stream", [("kind_async", False), ("kind_sync", False),
                                       ("kind_async_gen", True), ("kind_sync_gen", True)])
def test_a_cancel_a_deadline_and_an_exception_start_no_span(tw, op, stream):
    """The host's handler span records the outcome (pool_trace_test.go); the worker answers
    as untraced and records nothing per request."""
    id = traced(tw, op, {"outcome": "wait"}, stream=stream)
    if stream:
        assert tw.next_for(id)["t"] == "chunk"
    tw.send({"t": "cancel", "id": id})
    assert answer(tw, id)[-1]["error"]["category"] == "cancelled"
    assert answer(tw, traced(tw, op, {"outcome": "raise"}, stream=stream))[-1]["ok"] is False
    if not stream:
        (res,) = answer(tw, traced(tw, "sync_sleep" if op == "kind_sync" else "sleep", {"seconds": 0.5}, deadline_ms=50))
        assert res["error"]["category"] == "timeout"
    assert tw.ok("spans") == []


def test_without_opentelemetry_a_traced_request_is_served_as_before(make_worker):
    env = worker_env()
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS / "no_otel"), str(TESTS)])
    w = make_worker("mlbridge_worker.echo:EchoBridge", env=env)
    w.hello()
    (res,) = answer(w, traced(w, "echo", {"value": 1}))
    assert res == {"t": "res", "id": res["id"], "ok": True, "result": 1}
    items, end = w.stream("kind_async_gen", {"outcome": "ok"})
    assert end["t"] == "end"
    assert all("trace_id" not in r for r in records(w))


def test_import_guard_makes_tracing_a_no_op(monkeypatch):
    """In-process: with `opentelemetry` unimportable, start() does nothing and ids stay unset."""
    import contextvars

    for name in [m for m in sys.modules if m == "opentelemetry" or m.startswith("opentelemetry.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # `import opentelemetry` raises ImportError
    for attr in ("_loaded", "_trace", "_context", "_provider", "_tracer"):
        monkeypatch.setattr(tracing, attr, False if attr == "_loaded" else None)
    monkeypatch.setattr(wlog, "_current_ids", None)
    ctx = contextvars.copy_context()
    tracing.start(TP, None, ctx)
    assert tracing._loaded and tracing._trace is None
    assert ctx.run(tracing.current_ids) is None
    assert tracing.setup("b:B", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}) is False
    tracing.flush()
    assert "trace_id" not in wlog.format_record(20, "a", "m")


def test_setup_reads_otel_settings(monkeypatch):
    """Which OTEL_* settings install the exporter (without installing one: a provider is set)."""
    from opentelemetry import trace

    calls = []
    monkeypatch.setattr(trace, "set_tracer_provider", lambda tp: calls.append(tp))
    monkeypatch.setattr(tracing, "use_provider", lambda tp: None)
    for env, want in [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, False),
        ({"OTEL_TRACES_EXPORTER": "console"}, False),  # stdout is the protocol's pipe
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, False),
    ]:
        calls.clear()
        assert tracing.setup("b:B", env) is want, env
        assert len(calls) == int(want)
        for tp in calls:
            tp.shutdown()


def test_without_a_provider_the_host_span_is_current(make_worker):
    """The API installed, no SDK set up: no span is started, the host's span is current, so a
    log record made during the call carries the host span's ids."""
    w = make_worker("mlbridge_worker.echo:EchoBridge")
    w.hello()
    (res,) = answer(w, traced(w, "log_record", {"level": "warning", "msg": "no provider"}))
    assert res["ok"]
    w.wait_stderr('"msg":"no provider"')
    (rec,) = [r for r in records(w) if r["msg"] == "no provider"]
    assert rec["trace_id"] == TRACE_ID and rec["span_id"] == PARENT


@pytest.mark.parametrize("tp,ok", [
    (TP, True),
    (f"00-{TRACE_ID}-{PARENT}-00", True),
    (f"01-{TRACE_ID}-{PARENT}-01-future", True),
    (f"00-{TRACE_ID}-{PARENT}-01-extra", False),  # version 00 has exactly four fields
    (f"ff-{TRACE_ID}-{PARENT}-01", False),
    (f"00-{'0' * 32}-{PARENT}-01", False),
    (f"00-{TRACE_ID}-{'0' * 16}-01", False),
    (f"00-{TRACE_ID.upper()}-{PARENT}-01", False),
    (f"00-{TRACE_ID}-{PARENT}-1", False),
    ("", False),
])
def test_traceparent_rules(tp, ok):
    """tracing._parent accepts what OpenTelemetry's W3C propagator accepts."""
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    assert tracing._load()
    mine = tracing._parent(tp, "rojo=00f067aa0ba902b7")
    theirs = TraceContextTextMapPropagator().extract({"traceparent": tp, "tracestate": "rojo=00f067aa0ba902b7"})
    assert (mine is not None) is ok
    want = trace.get_current_span(theirs).get_span_context()
    assert want.is_valid is ok
    if ok:
        got = trace.get_current_span(mine).get_span_context()
        assert got == want


def test_a_provider_the_bridge_installs_wins(make_worker):
    """OTEL_* settings present, but the bridge set the global provider itself: spans the
    handler starts are recorded there, under the host's span, and the worker installs no
    exporter of its own."""
    env = worker_env(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://127.0.0.1:9/v1/traces")
    env["PYTHONPATH"] = str(TESTS)
    w = make_worker("trace_global_bridge:GlobalTraceBridge", env=env)
    w.hello()
    (res,) = answer(w, traced(w, "app_span", {"name": "mine"}))
    assert res["ok"]
    assert w.ok("provider_is_mine") is True
    (span,) = [s for s in w.ok("spans") if s["name"] == "mine"]
    assert span["trace_id"] == TRACE_ID and span["parent_id"] == PARENT


@pytest.mark.parametrize("op", ["broken_async", "broken_eager", "broken_sync"])
def test_an_unprintable_exception_is_answered(make_worker, op):
    """A traced request whose exception's __str__ raises is answered like an untraced one,
    and the worker serves the next call."""
    w = make_worker("trace_bridges:BrokenBridge")
    w.hello()
    res = answer(w, traced(w, op))[-1]
    assert res["t"] == "res" and res["ok"] is False and res["error"]["type"] == "_Broken"
    assert w.ok("echo", {"value": 1}) == 1


@pytest.mark.parametrize("sampled", [True, False])
def test_start_makes_the_host_span_current_in_process(sampled):
    """tracing.start, in-process: the request's context holds the host's span (its ids and
    sampled flag, the tracestate), a remote non-recording span; the caller's context is
    untouched."""
    import contextvars

    from opentelemetry import trace

    assert tracing._load()
    ctx = contextvars.Context()
    tracing.start(f"00-{TRACE_ID}-{PARENT}-0{int(sampled)}", "rojo=00f067aa0ba902b7", ctx)
    span = ctx.run(trace.get_current_span)
    sc = span.get_span_context()
    assert f"{sc.trace_id:032x}" == TRACE_ID and f"{sc.span_id:016x}" == PARENT
    assert sc.is_remote and sc.trace_flags.sampled is sampled and not span.is_recording()
    assert sc.trace_state.get("rojo") == "00f067aa0ba902b7"
    assert ctx.run(tracing.current_ids) == (TRACE_ID, PARENT)
    assert not trace.get_current_span().get_span_context().is_valid


def test_the_host_span_is_parsed_on_first_read():
    """tracing.start attaches the traceparent unparsed (HostContext); the first read of the
    context — through the API, a copy, a dict view — parses it, and an unparsable one reads
    as an empty context (the request untraced)."""
    import contextvars

    from opentelemetry import context, trace
    from opentelemetry.sdk.trace import TracerProvider

    assert tracing._load()
    ctx = contextvars.Context()
    tracing.start(TP, None, ctx)
    held = ctx.run(context.get_current)
    assert dict.__len__(held) == 0  # not parsed yet
    assert {**held} != {} and dict.__len__(held) == 1  # a merge reads through keys(): parsed
    for read in (dict, lambda c: c.copy(), lambda c: context.Context(c), lambda c: list(c.values())):
        fresh = contextvars.Context()
        tracing.start(TP, None, fresh)
        got = read(fresh.run(context.get_current))
        assert len(got) == 1, read
    # a span the handler starts is a child of the host's span
    span = ctx.run(lambda: TracerProvider().get_tracer("t").start_span("child"))
    assert span.parent.span_id == int(PARENT, 16) and span.parent.is_remote
    span.end()
    junk = contextvars.Context()
    tracing.start("00-not-a-traceparent", None, junk)
    assert junk.run(tracing.current_ids) is None and dict(junk.run(context.get_current)) == {}
    assert not junk.run(trace.get_current_span).get_span_context().is_valid

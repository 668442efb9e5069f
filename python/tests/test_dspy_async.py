"""The async implementation of DSPy execution (`execute`, `execute_program`) behind the per-op
switch: the same outputs and the same error categories as the sync one, with DSPy's DummyLM, a
local OpenAI-compatible endpoint for provider errors, and the local model for the event loop."""

from __future__ import annotations

import asyncio
import socket

import pytest

from client import Worker
from mlbridge_worker.errors import exception_to_error
from mlbridge_worker.frameworks.dspy_bridge import DSPyBridge
from dspy_cases import CASES, DSPY
from openai_stub import serving


def dspy_bridge(lm: dict | None = None, **programs: tuple[str, str]) -> DSPyBridge:
    b = DSPyBridge()
    b._initialize_framework()
    if lm is not None:
        b.configure_lm(lm)
    for pid, (signature, module) in programs.items():
        b.create_program(pid, signature, module=module)
    return b


def dummy(answers: list[dict]) -> dict:
    return {"provider": "dummy", "answers": answers}


def outcome(fn) -> dict:
    """What the caller sees: the result, or the error's category, type and message."""
    try:
        return {"result": fn()}
    except Exception as e:
        err = exception_to_error(e)
        return {"error": (err["category"], err["type"], err["message"])}


@pytest.mark.parametrize("module,signature,answers,inputs", CASES)
def test_async_execution_gives_the_sync_outputs(module, signature, answers, inputs):
    sync = dspy_bridge(dummy(answers), p=(signature, module))
    asynchronous = dspy_bridge(dummy(answers), p=(signature, module))
    want = [sync.execute_program("p", i) for i in inputs]
    got = [asyncio.run(asynchronous.execute_program_async("p", i)) for i in inputs]
    assert got == want
    assert all(v is not None for out in got for v in out.values())


def test_generic_execute_op_async():
    answers = [{"answer": "Paris"}]
    sync, asynchronous = (dspy_bridge(dummy(answers), p=("question -> answer", "Predict")) for _ in range(2))
    inputs = {"question": "capital of France?"}
    assert asyncio.run(asynchronous.execute_async("p", inputs)) == sync.execute("p", inputs) == {"answer": "Paris"}
    for b in (sync, asynchronous):
        b.define_resource("opts", "options", 1, {})
    for args in (("nope", inputs), ("lm", {}), ("opts", {})):  # unknown id; resources that do not run
        want = outcome(lambda: sync.execute(*args))
        assert "error" in want
        assert outcome(lambda: asyncio.run(asynchronous.execute_async(*args))) == want


BAD_INPUTS = [
    ("p", {"question": "q"}),  # missing context
    ("p", {"question": "q", "context": [], "extra": 1}),
    ("p", {"question": "q", "context": "not a list"}),
    ("p", {"question": 42, "context": []}),
    ("nope", {"question": "q"}),
]


@pytest.mark.parametrize("program_id,inputs", BAD_INPUTS)
def test_input_errors_are_the_same(program_id, inputs):
    sig = ("context: list[str], question: str -> answer", "Predict")
    sync = dspy_bridge(dummy([{"answer": "x"}]), p=sig)
    asynchronous = dspy_bridge(dummy([{"answer": "x"}]), p=sig)
    want = outcome(lambda: sync.execute_program(program_id, inputs))
    assert want["error"][0] in ("invalid_argument", "not_found")
    assert outcome(lambda: asyncio.run(asynchronous.execute_program_async(program_id, inputs))) == want


def test_no_lm_and_unparseable_output_are_the_same():
    sig = ("question -> answer", "Predict")
    sync, asynchronous = dspy_bridge(None, p=sig), dspy_bridge(None, p=sig)
    want = outcome(lambda: sync.execute_program("p", {"question": "q"}))
    assert want["error"][0] == "invalid_configuration"
    assert outcome(lambda: asyncio.run(asynchronous.execute_program_async("p", {"question": "q"}))) == want

    # An LM whose output has none of the declared fields: DSPy's AdapterParseError.
    sync, asynchronous = (dspy_bridge(dummy([{"unrelated": "x"}] * 3), p=sig) for _ in range(2))
    want = outcome(lambda: sync.execute_program("p", {"question": "q"}))
    assert want["error"][:2] == ("model_error", "AdapterParseError")
    got = outcome(lambda: asyncio.run(asynchronous.execute_program_async("p", {"question": "q"})))
    assert got["error"][:2] == want["error"][:2]


def provider_bridge(url: str) -> DSPyBridge:
    return dspy_bridge({"provider": "openai_compatible", "model": "my-model", "base_url": url,
                        "api_key_env": "MLBRIDGE_TEST_KEY", "num_retries": 0}, p=("question -> answer", "Predict"))


@pytest.mark.parametrize("status,category,dspy_type", [
    (200, None, None),
    (429, "rate_limit", "LMRateLimitError"),
    (401, "invalid_configuration", "LMAuthError"),
    (400, "invalid_argument", "LMInvalidRequestError"),
    (500, "model_error", "LMServerError"),
])
def test_provider_answers_and_errors_are_the_same(monkeypatch, status, category, dspy_type):
    """DSPy's real async client against an OpenAI-compatible endpoint: the answer, or the
    provider's refusal mapped to the category the sync path gives."""
    monkeypatch.setenv("MLBRIDGE_TEST_KEY", "sk-test-123")
    with serving("[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]") as srv:
        srv.status = status
        b = provider_bridge(srv.url)
        want = outcome(lambda: b.execute_program("p", {"question": "q"}))
        got = outcome(lambda: asyncio.run(b.execute_program_async("p", {"question": "q"})))
    if category is None:
        assert got == want == {"result": {"answer": "Paris"}}
    else:
        assert got["error"][:2] == want["error"][:2] == (category, dspy_type)


def test_unreachable_provider_is_the_same(monkeypatch):
    monkeypatch.setenv("MLBRIDGE_TEST_KEY", "sk-test-123")
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = provider_bridge(f"http://127.0.0.1:{port}/v1")
    want = outcome(lambda: b.execute_program("p", {"question": "q"}))
    got = outcome(lambda: asyncio.run(b.execute_program_async("p", {"question": "q"})))
    assert got["error"][:2] == want["error"][:2] == ("model_error", "LMTransportError")


# ---------------------------------------------------------------- through a worker process

def define(w: Worker, answers: list[dict] | None, signature: str = "question -> answer", module: str = "Predict",
           lm: dict | None = None) -> None:
    w.ok("define_resource", {"id": "lm", "kind": "lm", "version": 1, "is_global": True,
                             "spec": lm if lm is not None else dummy(answers or [])})
    w.ok("define_resource", {"id": "p", "kind": "program", "version": 1,
                             "spec": {"signature": signature, "module": module}})


def without_traceback(err: dict) -> dict:
    return {k: v for k, v in err.items() if k != "traceback"}  # it names the runtime's own frames


@pytest.mark.parametrize("op,args", [
    ("execute_program", lambda i: {"program_id": "p", "inputs": i}),
    ("execute", lambda i: {"id": "p", "inputs": i}),
])
def test_worker_switches_execution_modes(op, args):
    module, signature, answers, inputs = CASES[1]
    with Worker(DSPY) as w:
        w.hello()
        define(w, answers + answers, signature, module)
        assert w.ok("handler_modes")[op] == {"active": "sync", "available": ["async", "sync"]}
        sync = [w.ok(op, args(i)) for i in inputs]
        w.ok("set_handler_mode", {"op": op, "mode": "async"})
        assert w.ok("handler_modes")[op]["active"] == "async"
        asynchronous = [w.ok(op, args(i)) for i in inputs]
        bad = without_traceback(w.call(op, args({"question": "q"}))["error"])
        w.ok("set_handler_mode", {"op": op, "mode": "sync"})
        assert bad == without_traceback(w.call(op, args({"question": "q"}))["error"])
        kinds = w.ok("health_check")["handlers"]["kinds"]
    assert asynchronous == sync
    assert bad["category"] == "invalid_argument"
    assert kinds["async"]["calls"] >= len(inputs) + 1 and kinds["sync"]["calls"] >= len(inputs) + 1


def test_worker_options_choose_async_execution():
    with Worker(DSPY) as w:
        w.hello()
        w.ok("define_resource", {"id": "bridge_options", "kind": "options", "version": 1, "is_global": True,
                                 "spec": {"handler_modes": {"execute": "async", "execute_program": "async"}}})
        define(w, [{"answer": "Paris"}])
        assert w.ok("execute", {"id": "p", "inputs": {"question": "q"}}) == {"answer": "Paris"}
        modes = w.ok("handler_modes")
    assert modes["execute"]["active"] == modes["execute_program"]["active"] == "async"


SENTENCES = ("The sea covers most of the planet. Sailors crossed it in wooden ships, guided by stars, currents "
             "and the shapes of coasts. Harbors grew into cities, lighthouses warned of rocks, and fishermen "
             "learned the seasons of every bay and river mouth along the shore.")


def test_worker_answers_pings_while_the_local_model_generates():
    """Async mode with the local model: the worker's loop keeps answering while one generation
    runs. Each round sends a ping, then a describe of the LM (its token count); the pongs that
    come back after a describe showed the generation started, and before the call's result, are
    counted. Were llama.cpp run on the loop, nothing could be answered between the first token
    and the last: only the few turns of the loop around the generation would be left."""
    with Worker(DSPY) as w:
        w.hello()
        w.ok("define_resource", {"id": "lm", "kind": "lm", "version": 1, "is_global": True,
                                 "spec": {"provider": "local", "max_tokens": 120}})
        w.ok("define_resource", {"id": "p", "kind": "program", "version": 1, "spec": {
            "signature": "text -> sentences: list[str]", "instructions": "Split the text into its sentences."}})
        w.ok("set_handler_mode", {"op": "execute_program", "mode": "async"})
        base = w.ok("describe", {"id": "lm"})["tokens_generated"]
        call = w.request("execute_program", {"program_id": "p", "inputs": {"text": SENTENCES}})
        started, pongs_while_generating, result = False, 0, None
        while result is None:
            ping, desc = w.request("ping"), w.request("describe", {"id": "lm"})
            waiting = {ping, desc}
            while waiting and result is None:
                m = w.recv()
                assert m is not None, w.stderr
                if m["id"] == call:
                    result = m
                elif m["id"] == desc:
                    started = started or m["result"]["tokens_generated"] > base
                    waiting.discard(desc)
                elif m["id"] == ping:
                    pongs_while_generating += started
                    waiting.discard(ping)
        assert result["ok"], result
        total = w.ok("describe", {"id": "lm"})["tokens_generated"] - base
    assert total > 20  # a generation long enough to tell
    assert pongs_while_generating >= 10, (pongs_while_generating, total)

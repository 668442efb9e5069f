"""`stream_program`: a program's output fields streamed token by token (dspy.streamify with one
stream listener per output field), then the prediction; and a stream whose consumer goes away
stops the local model at the next token.

DummyLM answers in one piece, so its streams are the prediction alone; the token-level tests run
the real local model (SmolLM2-135M on llama.cpp) and check structure, never wording. Greedy
decoding still varies a little from call to call (llama.cpp reuses the previous prompt's cache),
so nothing here compares two generations' text.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest

from client import Worker
from mlbridge_worker.errors import exception_to_error
from mlbridge_worker.frameworks.dspy_bridge import DSPyBridge
from mlbridge_worker.frameworks.dspy_stream import FieldListener
from openai_stub import serving

DSPY = "mlbridge_worker.frameworks.dspy_bridge:DSPyBridge"

SENTENCES = ("The sea covers most of the planet. Sailors crossed it in wooden ships, guided by stars, currents "
             "and the shapes of coasts. Harbors grew into cities, lighthouses warned of rocks, and fishermen "
             "learned the seasons of every bay and river mouth along the shore.")
# A program the small model answers at length (it copies the text, ~100 tokens): long enough that
# a stream stopped after its first pieces is told apart from one that ran on.
LONG = {"signature": "text -> rewritten", "instructions": "Repeat the text word for word."}


async def collect(agen: AsyncIterator[dict]) -> list[dict]:
    return [chunk async for chunk in agen]


def fields_and_prediction(chunks: list[dict]) -> tuple[list[dict], dict]:
    *pieces, last = chunks
    assert set(last) == {"prediction"}, last
    assert all(set(c) == {"field", "text"} and isinstance(c["text"], str) and c["text"] for c in pieces), pieces
    return pieces, last["prediction"]


def joined(pieces: list[dict], field: str) -> str:
    return "".join(c["text"] for c in pieces if c["field"] == field)


# ---------------------------------------------------------------- DummyLM: shape and errors

@pytest.mark.parametrize("module,signature,answer,inputs", [
    ("Predict", "question -> answer", {"answer": "Paris"}, {"question": "capital of France?"}),
    ("ChainOfThought", "context: list[str], question: str -> answer: str, confidence: float",
     {"reasoning": "stated", "answer": "Paris", "confidence": "0.9"},
     {"context": ["Paris is in France."], "question": "capital?"}),
])
def test_dummy_lm_stream_is_the_prediction(module, signature, answer, inputs):
    """DummyLM's answer comes in one piece: DSPy's listener sees no field being written, and the
    stream is the prediction alone, equal to what execute_program returns."""
    with Worker(DSPY) as w:
        w.hello()
        w.ok("define_resource", {"id": "lm", "kind": "lm", "version": 1, "is_global": True,
                                 "spec": {"provider": "dummy", "answers": [answer, answer]}})
        w.ok("define_resource", {"id": "p", "kind": "program", "version": 1,
                                 "spec": {"signature": signature, "module": module}})
        want = w.ok("execute_program", {"program_id": "p", "inputs": inputs})
        chunks, end = w.stream("stream_program", {"program_id": "p", "inputs": inputs})
    assert end["t"] == "end", end
    assert chunks == [{"prediction": want}]
    assert None not in want.values()


def stream_error(b: DSPyBridge, program_id: str, inputs: dict) -> tuple[str, str]:
    with pytest.raises(Exception) as info:
        asyncio.run(collect(b.stream_program(program_id, inputs)))
    err = exception_to_error(info.value)
    return err["category"], err["type"]


def test_stream_errors_are_categorised():
    b = DSPyBridge()
    b._initialize_framework()
    b.create_program("p", "context: list[str], question: str -> answer")
    assert stream_error(b, "p", {"question": "q", "context": []})[0] == "invalid_configuration"  # no LM
    b.configure_lm({"provider": "dummy", "answers": [{"unrelated": "x"}] * 3})
    assert stream_error(b, "nope", {})[0] == "not_found"
    assert stream_error(b, "p", {"question": "q"})[0] == "invalid_argument"
    assert stream_error(b, "p", {"question": 1, "context": []})[0] == "invalid_argument"
    assert stream_error(b, "p", {"question": "q", "context": []}) == ("model_error", "AdapterParseError")


@pytest.mark.parametrize("status,category,dspy_type", [
    (429, "rate_limit", "LMRateLimitError"),
    (401, "invalid_configuration", "LMAuthError"),
    (500, "model_error", "LMServerError"),
])
def test_streamed_provider_errors_map_like_execute(monkeypatch, status, category, dspy_type):
    monkeypatch.setenv("MLBRIDGE_TEST_KEY", "sk-test-123")
    with serving() as srv:
        srv.status = status
        b = DSPyBridge()
        b._initialize_framework()
        b.configure_lm({"provider": "openai_compatible", "model": "my-model", "base_url": srv.url,
                        "api_key_env": "MLBRIDGE_TEST_KEY", "num_retries": 0})
        b.create_program("p", "question -> answer")
        assert stream_error(b, "p", {"question": "q"}) == (category, dspy_type)
        assert srv.seen[-1][2].get("stream") is True  # it was a streaming request


def test_unreachable_provider_while_streaming(monkeypatch):
    monkeypatch.setenv("MLBRIDGE_TEST_KEY", "sk-test-123")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = DSPyBridge()
    b._initialize_framework()
    b.configure_lm({"provider": "openai_compatible", "model": "my-model", "base_url": f"http://127.0.0.1:{port}/v1",
                    "api_key_env": "MLBRIDGE_TEST_KEY", "num_retries": 0})
    b.create_program("p", "question -> answer")
    assert stream_error(b, "p", {"question": "q"}) == ("model_error", "LMTransportError")


# ---------------------------------------------------------------- the JSON field listener

def lm_chunk(text: str):
    """A chunk as DSPy hands it to listeners: an engine text event through DSPy's ListenerBridge."""
    from dspy.clients.engines.streaming import ListenerBridge
    from dspy.lm15 import StreamDeltaEvent, TextDelta

    return ListenerBridge("local/test").chunk(StreamDeltaEvent(delta=TextDelta(text=text)))


@pytest.mark.parametrize("cut", [1, 2, 3, 7])
def test_json_listener_splits_fields_at_any_token_boundary(cut):
    """Whatever the tokenization, each field's pieces join to its value — no JSON syntax, no
    text of another field — and a non-string value comes once, complete."""
    import dspy

    raw = ('{"reasoning": "a \\"quoted\\" word, then: {braces}", "answer": "Paris", '
           '"confidence": 0.75, "tags": ["x", "y"]}')
    names = ["reasoning", "answer", "confidence", "tags"]
    listeners = {n: FieldListener(n) for n in names}
    got: dict[str, list[tuple[str, bool]]] = {n: [] for n in names}
    with dspy.context(adapter=dspy.JSONAdapter()):
        for i in range(0, len(raw), cut):
            for n, listener in listeners.items():
                if (r := listener.receive(lm_chunk(raw[i:i + cut]))) is not None:
                    got[n].append((r.chunk, r.is_last_chunk))
        for listener in listeners.values():
            assert listener.finalize() is None  # everything was said
    want = json.loads(raw)
    assert "".join(t for t, _ in got["reasoning"]) == want["reasoning"]
    assert "".join(t for t, _ in got["answer"]) == "Paris"
    assert got["confidence"] == [("0.75", True)]
    assert got["tags"] == [('["x", "y"]', True)]
    assert all(last for n in names for _, last in got[n][-1:])
    if cut == 1:
        assert len(got["reasoning"]) > 10  # one character at a time, as it came


# ---------------------------------------------------------------- the local model

@pytest.fixture(scope="module")
def local():
    b = DSPyBridge()
    b._initialize_framework()
    b.configure_lm({"provider": "local", "max_tokens": 200})
    b.create_program("qa", "question -> answer")
    b.create_program("cot", "question: str -> answer: str, confidence: float", module="ChainOfThought")
    b.define_resource("long", "program", 1, LONG)
    return b


def test_local_model_streams_a_field_token_by_token(local):
    pieces, prediction = fields_and_prediction(asyncio.run(collect(
        local.stream_program("qa", {"question": "What is the capital of France?"}))))
    assert set(prediction) == {"answer"} and isinstance(prediction["answer"], str)
    assert len(pieces) >= 2 and {c["field"] for c in pieces} == {"answer"}
    assert joined(pieces, "answer") == prediction["answer"]


def test_local_model_streams_chain_of_thought_fields_in_order(local):
    pieces, prediction = fields_and_prediction(asyncio.run(collect(
        local.stream_program("cot", {"question": "Why is the sky blue?"}))))
    assert set(prediction) == {"reasoning", "answer", "confidence"}
    order = [c["field"] for c in pieces]
    firsts = sorted(set(order), key=order.index)
    assert firsts == ["reasoning", "answer", "confidence"]
    assert order == sorted(order, key=firsts.index)  # one field after the other, never interleaved
    assert joined(pieces, "reasoning") == prediction["reasoning"]
    assert joined(pieces, "answer") == prediction["answer"]
    assert json.loads(joined(pieces, "confidence")) == prediction["confidence"]


@pytest.mark.parametrize("how", ["cancel", "aclose"])
def test_a_stream_left_behind_stops_the_model_at_the_next_token(local, how):
    """The consumer goes away after two pieces: its task is cancelled (what the worker does on the
    host's cancel) or it closes the generator (a consumer that stops reading). The model must
    stop within a token or two of that moment, free itself for the next call, and the next call
    must work. A reference run first shows the generation would have gone on much longer."""
    engine = local.lm.engine
    inputs = {"text": SENTENCES}
    start = engine.tokens_generated
    asyncio.run(collect(local.stream_program("long", inputs)))
    reference = engine.tokens_generated - start
    assert reference >= 40, f"the reference run is too short ({reference} tokens) to tell a stop"

    async def run() -> tuple[int, int]:
        agen = local.stream_program("long", inputs)
        two = asyncio.Event()
        pieces: list[dict] = []

        async def consume() -> None:
            async for chunk in agen:
                pieces.append(chunk)
                if len(pieces) == 2:
                    two.set()
                    if how == "aclose":
                        return

        task = asyncio.create_task(consume())
        await two.wait()
        at_stop = engine.tokens_generated
        if how == "cancel":
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        else:
            await task
            await agen.aclose()
        assert await asyncio.to_thread(engine.idle, 60), "the generation never let go of the model"
        return at_stop, engine.tokens_generated

    before = engine.tokens_generated
    at_stop, after = asyncio.run(run())
    assert at_stop - before < reference - 10  # it was stopped part-way
    assert after - at_stop <= 3, f"{after - at_stop} tokens generated after the consumer left"

    pieces, prediction = fields_and_prediction(asyncio.run(collect(local.stream_program("qa", {"question": "Hi?"}))))
    assert set(prediction) == {"answer"}


def _long_program_on_the_local_lm(w: Worker):
    """A started worker with the local LM and the LONG program: the arguments of a long run, and
    a function reading how many tokens the model has generated so far."""
    w.hello()
    w.ok("define_resource", {"id": "lm", "kind": "lm", "version": 1, "is_global": True,
                             "spec": {"provider": "local", "max_tokens": 200}})
    w.ok("define_resource", {"id": "long", "kind": "program", "version": 1, "spec": LONG})
    return {"program_id": "long", "inputs": {"text": SENTENCES}}, lambda: w.ok("describe", {"id": "lm"})["tokens_generated"]


def test_worker_cancel_mid_stream_then_the_next_call_works():
    """Through a worker process: the host cancels a stream after two pieces; the worker answers
    `cancelled`, and the model is free for the next call. Describe reports the model's token
    count; between just before the cancel and the next stream's first piece, only a few tokens
    pass — the cancelled generation did not run on (the model serves one generation at a time)."""
    with Worker(DSPY) as w:
        args, tokens = _long_program_on_the_local_lm(w)

        base = tokens()
        chunks, end = w.stream("stream_program", args, timeout=120)
        reference = tokens() - base
        assert end["t"] == "end" and "prediction" in chunks[-1], (chunks, end)
        assert reference >= 40, f"the reference run is too short ({reference} tokens) to tell a stop"

        sid = w.request("stream_program", args, stream=True)
        for _ in range(2):
            assert w.next_for(sid, 60)["t"] == "chunk"
        at_cancel = tokens()
        w.send({"t": "cancel", "id": sid})
        while (m := w.next_for(sid, 60))["t"] == "chunk":
            pass
        assert m["t"] == "res" and m["error"]["category"] == "cancelled", m

        nid = w.request("stream_program", args, stream=True)
        first = w.next_for(nid, 60)
        assert first["t"] == "chunk" and set(first["data"]) == {"field", "text"}, first
        passed = tokens() - at_cancel
        w.send({"t": "cancel", "id": nid})
        while w.next_for(nid, 60)["t"] == "chunk":
            pass
        out = w.ok("execute_program", {"program_id": "long", "inputs": {"text": "One. Two."}}, timeout=60)
    assert passed <= 20 < reference, (passed, reference)
    assert isinstance(out["rewritten"], str)


def test_worker_cancel_of_a_sync_execution_stops_the_model():
    """The sync execute_program (the default) runs llama.cpp on a handler thread, which cannot be
    interrupted: the engine checks the request's `cancelled` flag at every token. After the host
    cancels, only a few tokens pass before the next call's generation starts."""
    with Worker(DSPY) as w:
        args, tokens = _long_program_on_the_local_lm(w)

        base = tokens()
        w.ok("execute_program", args, timeout=120)
        reference = tokens() - base
        assert reference >= 40, f"the reference run is too short ({reference} tokens) to tell a stop"

        base = tokens()
        cid = w.request("execute_program", args)
        while tokens() - base < 5:  # generating
            pass
        at_cancel = tokens()
        w.send({"t": "cancel", "id": cid})
        assert w.next_for(cid, 60)["error"]["category"] == "cancelled"
        sid = w.request("stream_program", args, stream=True)
        first = w.next_for(sid, 120)  # the model is free again: the next generation has begun
        assert first["t"] == "chunk", first
        passed = tokens() - at_cancel
        w.send({"t": "cancel", "id": sid})
        while w.next_for(sid, 60)["t"] == "chunk":
            pass
    assert passed <= 20 < reference, (passed, reference)

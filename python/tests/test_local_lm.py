"""The embedded offline LM (SmolLM2-135M-Instruct on llama.cpp) under real DSPy programs.

The model is small, so these tests check structure — every declared output field present and of
its declared type — never wording. Constrained decoding (the signature's JSON schema compiled to a
llama.cpp grammar) is what makes that hold for a 135M model.
"""

from __future__ import annotations

import pytest

from mlbridge_worker.frameworks.dspy_bridge import DSPyBridge
from mlbridge_worker.frameworks.local_lm import LlamaCppEngine, LocalLM, default_model_path


@pytest.fixture(scope="module")
def bridge():
    b = DSPyBridge()
    b._initialize_framework()
    b.configure_lm({"provider": "local", "max_tokens": 128})
    return b


def test_local_lm_is_a_dspy_lm_on_the_packaged_model():
    import dspy

    assert default_model_path().endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert issubclass(LocalLM, dspy.BaseLM)
    assert LlamaCppEngine.supports_response_schema and "response_format" in LlamaCppEngine.supported_params


def test_chain_of_thought_yields_typed_fields(bridge):
    bridge.create_program("cot", "question: str -> answer: str, confidence: float", module="ChainOfThought")
    out = bridge.execute_program("cot", {"question": "What is the capital of France?"})
    assert set(out) == {"reasoning", "answer", "confidence"}
    assert isinstance(out["reasoning"], str) and isinstance(out["answer"], str)
    assert isinstance(out["confidence"], float)


def test_list_int_and_bool_outputs_parse(bridge):
    bridge.create_program("kw", "text: str -> keywords: list[str], count: int, positive: bool")
    out = bridge.execute_program("kw", {"text": "I love sunny days at the beach with friends."})
    assert set(out) == {"keywords", "count", "positive"}
    assert isinstance(out["keywords"], list) and all(isinstance(k, str) for k in out["keywords"])
    assert isinstance(out["count"], int) and not isinstance(out["count"], bool)
    assert isinstance(out["positive"], bool)


def test_tokens_are_counted(bridge):
    bridge.create_program("p", "question -> answer")
    bridge.execute_program("p", {"question": "Name a color."})
    usage = bridge.lm.history[-1]["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0


# ---------------------------------------------------------------- the engine: tokens, async side

def _request(text: str, max_tokens: int):
    from dspy.lm15 import Config, Message, Request

    return Request(model="local/smollm2-135m-instruct", messages=(Message.user(text),),
                   config=Config(max_tokens=max_tokens, temperature=0.0))


@pytest.mark.parametrize("max_tokens,finish", [(200, "stop"), (6, "length")])
def test_streamed_usage_is_llama_cpps_own(bridge, max_tokens, finish):
    """A completion is assembled from the token stream; its text and usage are what llama.cpp's
    own non-streamed completion reports (greedy decoding: the same tokens)."""
    engine = bridge.lm.engine
    text = "Name three colors."
    got = engine.complete(_request(text, max_tokens))
    ref = engine._llama.create_chat_completion(messages=[{"role": "user", "content": text}], max_tokens=max_tokens,
                                               temperature=0.0)
    assert got.finish_reason == finish == ref["choices"][0]["finish_reason"]
    assert got.text == ref["choices"][0]["message"]["content"]
    assert (got.usage.input_tokens, got.usage.output_tokens) == (ref["usage"]["prompt_tokens"],
                                                                  ref["usage"]["completion_tokens"])


def test_stream_yields_one_event_per_token(bridge):
    engine = bridge.lm.engine
    events = list(engine.stream(_request("Count from one to ten.", 12)))
    types = [e.type for e in events]
    assert types[0] == "start" and types[-1] == "end" and set(types[1:-1]) == {"delta"}
    assert len(types) - 2 == events[-1].usage.output_tokens == 12  # cut by max_tokens: every token a delta


def test_async_engine_gives_the_sync_engines_answer(bridge):
    import asyncio

    lm = bridge.lm
    req = _request("What is the capital of France?", 24)
    sync = lm.engine.complete(req)
    asynchronous = asyncio.run(lm._async_engine_spec.complete(req))
    assert (asynchronous.text, asynchronous.usage) == (sync.text, sync.usage)


def test_async_generation_leaves_the_event_loop_free(bridge):
    """While the local model generates for an awaited `acall`, other coroutines run on the loop:
    a probe sees the model part-way (some tokens, not all) with the call still pending. Were
    llama.cpp called on the loop, the probe could only run before the first or after the last
    token."""
    import asyncio

    import dspy

    bridge.create_program("loop", "question -> answer")
    prog = bridge.program("loop")
    engine = bridge.lm.engine
    seen: list[tuple[int, bool]] = []

    async def main() -> int:
        start = engine.tokens_generated
        with dspy.context(lm=bridge.lm, adapter=bridge.adapter):
            call = asyncio.ensure_future(prog.module.acall(question="Describe the sea in detail."))
            while not call.done():
                n = engine.tokens_generated - start
                if n:
                    seen.append((n, call.done()))
                await asyncio.sleep(0)  # a turn of the loop, no clock involved
            await call
        return engine.tokens_generated - start

    total = asyncio.run(main())
    assert total > 2
    during = [n for n, done in seen if not done and 0 < n < total]
    assert during, f"the loop never ran while the model generated ({total} tokens)"


def test_a_cancelled_async_call_stops_the_model(bridge):
    """An awaited `acall` cancelled part-way (what the worker does when the host cancels an
    async execute) stops llama.cpp at the next token and frees the model; left running, this
    program copies its text for about a hundred tokens."""
    import asyncio

    import dspy

    bridge.define_resource("copy", "program", 1, {"signature": "text -> rewritten",
                                                  "instructions": "Repeat the text word for word."})
    prog = bridge.program("copy")
    engine = bridge.lm.engine
    text = ("The sea covers most of the planet. Sailors crossed it in wooden ships, guided by stars, currents and the "
            "shapes of coasts. Harbors grew into cities, and lighthouses warned of rocks along the shore.")

    async def main() -> tuple[int, int, int]:
        start = engine.tokens_generated
        with dspy.context(lm=bridge.lm, adapter=bridge.adapter):
            call = asyncio.ensure_future(prog.module.acall(text=text))
            while engine.tokens_generated - start < 5 and not call.done():
                await asyncio.sleep(0)
            at_cancel = engine.tokens_generated
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
        assert await asyncio.to_thread(engine.idle, 60), "the generation never let go of the model"
        return start, at_cancel, engine.tokens_generated

    start, at_cancel, after = asyncio.run(main())
    assert at_cancel - start >= 5  # cancelled while generating
    assert after - at_cancel <= 3, f"{after - at_cancel} tokens generated after the cancel"
    assert isinstance(bridge.execute_program("copy", {"text": "One. Two."})["rewritten"], str)  # the model is fine

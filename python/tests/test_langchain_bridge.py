"""LangChainBridge through real langchain-core: LCEL chains on langchain-core's own fake chat
models, the embedded SmolLM2 model on llama.cpp, ChatOpenAI against a local HTTP server that
answers as an OpenAI-compatible provider does, and one worker subprocess end to end.

The local model is small: its tests check shape (a non-empty reply, several streamed chunks),
never wording.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys

import langchain_core
import pytest
from langchain_core import exceptions as lcx
from langchain_core.language_models.chat_models import BaseChatModel

from client import Worker
from openai_stub import serving
from mlbridge_worker.errors import exception_to_error
from mlbridge_worker.frameworks.langchain_bridge import LangChainBridge
from mlbridge_worker.frameworks.langchain_models import LocalChatModel, map_error

BRIDGE = "mlbridge_worker.frameworks.langchain_bridge:LangChainBridge"
QA = [["system", "You answer in one short sentence."], ["human", "{question}"]]


def bridge(*responses: str) -> LangChainBridge:
    b = LangChainBridge()
    b._initialize_framework()
    if responses:
        b.define_resource("m", "model", 1, {"provider": "fake", "responses": list(responses)})
    return b


def collect(b: LangChainBridge, chain_id: str, inputs: dict) -> list[str]:
    async def run() -> list[str]:
        return [c async for c in b.stream(chain_id, inputs)]

    return asyncio.run(run())


def category(exc_info) -> tuple[str, str]:
    err = exception_to_error(exc_info.value)
    return err["category"], err["type"]


# ---------------------------------------------------------------------------- fake models

def test_framework_info():
    info = bridge().get_framework_info()
    assert info == {"name": "langchain", "version": langchain_core.__version__,
                    "capabilities": ["chains", "chat", "stream"]}
    assert {"invoke": "async", "stream": "async_gen", "chat": "async"}.items() <= bridge().handler_kinds().items()
    # each op also has an implementation of the other mode (test_langchain_modes runs both)
    assert asyncio.run(bridge().handler_modes()) == {
        "invoke": {"active": "async", "available": ["async", "sync"]},
        "stream": {"active": "async_gen", "available": ["async_gen", "sync_gen"]},
        "chat": {"active": "async", "available": ["async", "sync"]},
        "execute": {"active": "sync", "available": ["async", "sync"]},
    }


def test_chain_invoke_and_describe():
    b = bridge("Paris.", "Rome.")
    b.define_resource("qa", "chain", 1, {"model": "m", "messages": QA})
    assert asyncio.run(b.invoke("qa", {"question": "Capital of France?"})) == "Paris."
    assert b.execute("qa", {"question": "Capital of Italy?"}) == "Rome."  # the sync generic op
    assert b.describe("qa") == {"model": "m", "input_variables": ["question"], "parser": "str",
                                "id": "qa", "kind": "chain", "version": 1}
    assert b.describe("m") == {"provider": "fake", "model": "fake", "id": "m", "kind": "model", "version": 1}


def test_single_template_and_placeholder_history():
    b = bridge("ok")
    b.define_resource("t", "chain", 1, {"model": "m", "template": "Translate {text} to {lang}."})
    assert b.describe("t")["input_variables"] == ["lang", "text"]
    b.define_resource("h", "chain", 1, {"model": "m", "messages": [["placeholder", "{history}"], ["human", "{q}"]]})
    assert b.describe("h")["input_variables"] == ["q"]  # a placeholder is optional
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert asyncio.run(b.invoke("h", {"q": "again", "history": history})) == "ok"
    with pytest.raises(Exception, match="list of messages") as info:
        asyncio.run(b.invoke("h", {"q": "again", "history": [1, 2]}))
    assert category(info)[0] == "invalid_argument"


def test_role_spellings_and_num_retries_as_the_go_client_sends_them():
    b = bridge("ok")
    b.define_resource("c", "chain", 1, {"model": "m", "messages": [["system", "s"], ["user", "{q}"],
                                                                   ["assistant", "a"], ["human", "{r}"]]})
    assert [type(m).__name__ for m in b.resource("c").prompt.format_messages(q="1", r="2")] == \
        ["SystemMessage", "HumanMessage", "AIMessage", "HumanMessage"]
    assert asyncio.run(b.chat("m", [{"role": "human", "content": "hi"}, {"role": "ai", "content": "yo"},
                                    {"role": "user", "content": "?"}]))["content"] == "ok"
    b.define_resource("gpt", "model", 1, {"provider": "openai_compatible", "model": "x", "num_retries": 5,
                                          "base_url": "http://127.0.0.1:9/v1"})
    assert b.resource("gpt").max_retries == 5


def test_json_parser():
    b = bridge('{"city": "Paris", "population": 2100000}', "not json at all")
    b.define_resource("j", "chain", 1, {"model": "m", "template": "{q}", "parser": "json"})
    assert asyncio.run(b.invoke("j", {"q": "x"})) == {"city": "Paris", "population": 2100000}
    with pytest.raises(Exception) as info:
        asyncio.run(b.invoke("j", {"q": "x"}))
    assert category(info) == ("model_error", "OutputParserException")


def test_missing_inputs_are_reported_before_the_model_runs():
    b = bridge("first", "second")
    b.define_resource("t", "chain", 1, {"model": "m", "template": "{a} and {b} and {c}"})
    with pytest.raises(Exception, match="missing input variables: a, c") as info:
        asyncio.run(b.invoke("t", {"b": 1}))
    assert category(info) == ("invalid_argument", "InvalidArgument")
    with pytest.raises(Exception, match="missing input variables: b"):
        b.execute("t", {"a": 1, "c": 3})
    with pytest.raises(Exception, match="inputs must be a map"):
        asyncio.run(b.invoke("t", ["a"]))
    assert asyncio.run(b.invoke("t", {"a": 1, "b": 2, "c": 3})) == "first"  # the model was not called


@pytest.mark.parametrize("kind,spec,cat,match", [
    ("model", {"provider": "anthropic"}, "invalid_argument", "unknown model provider"),
    ("model", {"provider": "fake", "responses": []}, "invalid_argument", "non-empty list"),
    ("model", {"provider": "local", "n_threads": -1}, "invalid_argument", "non-negative integer"),
    ("model", {"provider": "local", "temperature": "hot"}, "invalid_argument", "non-negative number"),
    ("model", {"provider": "local", "model_path": "/nonexistent/model.gguf"}, "invalid_configuration",
     "does not exist"),
    ("model", {"provider": "openai_compatible"}, "invalid_argument", "needs a model name"),
    ("model", {"provider": "openai_compatible", "model": "m", "base_url": "http://127.0.0.1:9/v1",
               "max_retries": "2"}, "invalid_argument", "non-negative integer"),
    ("model", {"provider": "openai_compatible", "model": "m", "api_key_env": "MLBRIDGE_UNSET_KEY"},
     "invalid_configuration", "MLBRIDGE_UNSET_KEY"),
    ("model", {"provider": "openai_compatible", "model": "m"}, "invalid_configuration", "OPENAI_API_KEY"),
    ("chain", {"model": "m", "template": "{q}", "parser": "xml"}, "invalid_argument", "unknown parser"),
    ("chain", {"model": "m", "messages": [["robot", "{q}"]]}, "invalid_argument", "unknown role"),
    ("chain", {"model": "m", "messages": [["human"]]}, "invalid_argument", "pair of strings"),
    ("chain", {"model": "m", "template": "{unclosed"}, "invalid_argument", "bad prompt template"),
    ("chain", {"model": "m", "messages": [["placeholder", "not a variable"]]}, "invalid_argument",
     "bad prompt template"),
    ("chain", {"model": "m"}, "invalid_argument", "exactly one of"),
    ("chain", {"model": "nope", "template": "{q}"}, "not_found", "'nope'"),
    ("widget", {}, "invalid_argument", "no resources of kind"),
])
def test_bad_specs(monkeypatch, kind, spec, cat, match):
    for name in ("MLBRIDGE_UNSET_KEY", "OPENAI_API_KEY", "OPENAI_ADMIN_KEY"):
        monkeypatch.delenv(name, raising=False)
    b = bridge("x")
    with pytest.raises(Exception, match=match) as info:
        b.define_resource("r", kind, 1, spec)
    assert category(info)[0] == cat
    assert "r" not in {r.id for r in b.resources()}


def test_stream_yields_chunks_that_join_to_the_answer():
    answer = "The capital of France is Paris, on the Seine."
    b = bridge(answer)
    b.define_resource("qa", "chain", 1, {"model": "m", "messages": QA})
    chunks = collect(b, "qa", {"question": "Capital of France?"})
    assert len(chunks) > 3 and all(isinstance(c, str) and c for c in chunks)
    assert "".join(chunks) == answer


def test_stream_of_a_json_chain_is_text_checked_at_the_end():
    b = bridge('{"a": [1, 2]}', "no json here")
    b.define_resource("j", "chain", 1, {"model": "m", "template": "{q}", "parser": "json"})
    assert json.loads("".join(collect(b, "j", {"q": "x"}))) == {"a": [1, 2]}
    with pytest.raises(Exception) as info:
        collect(b, "j", {"q": "x"})
    assert category(info) == ("model_error", "OutputParserException")
    with pytest.raises(Exception, match="missing input variables: q"):
        collect(b, "j", {})


def test_chat_with_history():
    b = bridge("Hello!", "You said your name is Ada.")
    history = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "I am Ada."}]
    reply = asyncio.run(b.chat("m", history))
    assert reply == {"role": "assistant", "content": "Hello!"}
    history += [reply, {"role": "user", "content": "What is my name?"}]
    assert asyncio.run(b.chat("m", history)) == {"role": "assistant", "content": "You said your name is Ada."}


@pytest.mark.parametrize("messages", [
    [], "hi", [{"role": "tool", "content": "x"}], [{"role": "user"}], [{"role": "user", "content": 3}],
    [["user", "hi"]],
])
def test_chat_rejects_bad_messages(messages):
    with pytest.raises(Exception) as info:
        asyncio.run(bridge("x").chat("m", messages))
    assert category(info)[0] == "invalid_argument"


def test_chat_and_invoke_on_missing_resources_are_not_found():
    b = bridge("x")
    for call in (b.chat("nope", [{"role": "user", "content": "hi"}]), b.invoke("nope", {})):
        with pytest.raises(Exception) as info:
            asyncio.run(call)
        assert category(info)[0] == "not_found"


def test_a_redefined_model_is_used_by_existing_chains():
    b = bridge("old")
    b.define_resource("c", "chain", 1, {"model": "m", "template": "{q}"})
    b.define_resource("m", "model", 2, {"provider": "fake", "responses": ["new"]})
    assert asyncio.run(b.invoke("c", {"q": "x"})) == "new"


@pytest.mark.parametrize("exc,cat", [
    (lcx.OutputParserException("bad"), "model_error"),
    (lcx.ContextOverflowError("too long"), "invalid_argument"),
    (lcx.ModelRateLimitError("slow"), "rate_limit"),
    (lcx.ModelTimeoutError("late"), "timeout"),
    (lcx.ModelAuthenticationError("key"), "invalid_configuration"),
    (lcx.ModelAPIError("5xx"), "model_error"),
    (RuntimeError("?"), "unknown"),
])
def test_langchain_error_classes_map_to_categories(exc, cat):
    err = exception_to_error(map_error(exc))
    assert (err["category"], err["type"]) == (cat, type(exc).__name__)


# ---------------------------------------------------------------------------- the local model

@pytest.fixture(scope="module")
def local():
    b = bridge()
    b.define_resource("smol", "model", 1, {"provider": "local", "max_tokens": 24})
    b.define_resource("qa", "chain", 1, {"model": "smol", "messages": QA})
    return b


def test_local_model_is_a_langchain_chat_model(local):
    model = local.resource("smol", kind="model")
    assert isinstance(model, BaseChatModel) and isinstance(model, LocalChatModel)
    d = local.describe("smol")
    assert d["provider"] == "local" and d["busy"] is False and isinstance(d["streamed_tokens"], int)
    assert model._identifying_params["max_tokens"] == 24


def test_local_model_answers_a_chat(local):
    reply = asyncio.run(local.chat("smol", [{"role": "user", "content": "Name a color."}]))
    assert reply["role"] == "assistant"
    assert isinstance(reply["content"], str) and reply["content"].strip()


def test_local_model_streams_a_chain(local):
    chunks = collect(local, "qa", {"question": "What is the capital of France?"})
    assert len(chunks) > 1 and "".join(chunks).strip()


def test_local_model_prompt_too_long_is_invalid_argument():
    b = bridge()
    b.define_resource("tiny", "model", 1, {"provider": "local", "n_ctx": 256, "max_tokens": 4})
    with pytest.raises(Exception) as info:
        asyncio.run(b.chat("tiny", [{"role": "user", "content": "word " * 400}]))
    assert category(info) == ("invalid_argument", "ContextOverflowError")


# ---------------------------------------------------------------------------- openai_compatible

@pytest.fixture
def provider():
    with serving() as srv:
        yield srv


def openai_bridge(url: str, monkeypatch, **extra) -> LangChainBridge:
    monkeypatch.setenv("MLBRIDGE_TEST_KEY", "sk-test-123")
    b = bridge()
    b.define_resource("gpt", "model", 1, {"provider": "openai_compatible", "model": "my-model", "base_url": url,
                                          "api_key_env": "MLBRIDGE_TEST_KEY", "max_retries": 0, **extra})
    b.define_resource("qa", "chain", 1, {"model": "gpt", "messages": QA})
    return b


def test_openai_compatible_endpoint_answers(provider, monkeypatch):
    b = openai_bridge(provider.url, monkeypatch, temperature=0.5, max_tokens=16)
    assert asyncio.run(b.invoke("qa", {"question": "Capital of France?"})) == "Paris."
    path, auth, body = provider.seen[-1]
    assert path == "/v1/chat/completions"
    assert auth == "Bearer sk-test-123"  # the key came from the named variable
    assert body["model"] == "my-model" and body["temperature"] == 0.5
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][1]["content"] == "Capital of France?"
    assert b.describe("gpt")["model"] == "my-model"

    history = [{"role": "system", "content": "s"}, {"role": "user", "content": "u1"},
               {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"}]
    assert asyncio.run(b.chat("gpt", history)) == {"role": "assistant", "content": "Paris."}
    assert [(m["role"], m["content"]) for m in provider.seen[-1][2]["messages"]] == \
        [("system", "s"), ("user", "u1"), ("assistant", "a1"), ("user", "u2")]


def test_base_url_without_key_env_sends_a_placeholder_key(provider):
    b = bridge()
    b.define_resource("gpt", "model", 1, {"provider": "openai_compatible", "model": "m", "base_url": provider.url,
                                          "max_retries": 0})
    asyncio.run(b.chat("gpt", [{"role": "user", "content": "hi"}]))
    assert provider.seen[-1][1] == "Bearer unused"


@pytest.mark.parametrize("status,cat,type_name", [
    (429, "rate_limit", "OpenAIRateLimitError"),
    (401, "invalid_configuration", "OpenAIAuthenticationError"),
    (404, "invalid_configuration", "OpenAIModelNotFoundError"),
    (400, "invalid_argument", "OpenAIInvalidRequestError"),
    (500, "model_error", "OpenAIAPIError"),
])
def test_provider_errors_map_to_categories(provider, monkeypatch, status, cat, type_name):
    # langchain-openai re-raises the SDK's errors as subclasses of both the SDK's class and
    # langchain-core's (OpenAIRateLimitError is an openai.RateLimitError): that class is the type.
    b = openai_bridge(provider.url, monkeypatch)
    provider.status = status
    with pytest.raises(Exception) as info:
        asyncio.run(b.invoke("qa", {"question": "q"}))
    assert category(info) == (cat, type_name)
    assert "refused by the test provider" in exception_to_error(info.value)["message"]
    with pytest.raises(Exception) as info:
        b.execute("qa", {"question": "q"})  # the sync path maps the same way
    assert category(info) == (cat, type_name)
    assert len(provider.seen) == 2  # max_retries 0: one request per call


def test_provider_timeout_is_a_timeout(provider, monkeypatch):
    b = openai_bridge(provider.url, monkeypatch, timeout=0.2)
    provider.delay = 1.0
    with pytest.raises(Exception) as info:
        asyncio.run(b.invoke("qa", {"question": "q"}))
    assert category(info)[0] == "timeout"


def test_unreachable_endpoint_is_a_model_error(monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = openai_bridge(f"http://127.0.0.1:{port}/v1", monkeypatch)
    with pytest.raises(Exception) as info:
        asyncio.run(b.chat("gpt", [{"role": "user", "content": "hi"}]))
    assert category(info) == ("model_error", "OpenAIConnectionError")


# ---------------------------------------------------------------------------- process level

OFFLINE = """
import socket, threading
def refuse(*a, **k):
    raise AssertionError("network access at import or build time")
socket.socket.connect = socket.socket.connect_ex = socket.create_connection = refuse
socket.getaddrinfo = refuse
from mlbridge_worker.frameworks.langchain_bridge import LangChainBridge
assert threading.active_count() == 1, threading.enumerate()  # a zygote forks after import
b = LangChainBridge(); b._initialize_framework()
gpt = {"provider": "openai_compatible", "model": "m", "base_url": "https://api.example.com/v1"}
b.define_resource("gpt", "model", 1, gpt)
b.define_resource("smol", "model", 1, {"provider": "local", "max_tokens": 4})
b.define_resource("fake", "model", 1, {"provider": "fake", "responses": ["x"]})
for m in ("gpt", "smol", "fake"):
    b.define_resource("c-" + m, "chain", 1, {"model": m, "template": "{q}", "parser": "json"})
print("offline ok")
"""


def test_import_and_build_are_offline_and_start_no_threads():
    out = subprocess.run([sys.executable, "-c", OFFLINE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "offline ok" in out.stdout


def test_end_to_end_through_a_worker():
    answer = "Paris is the capital of France."
    with Worker(BRIDGE) as w:
        w.hello()
        info = w.ok("get_info")
        assert info["framework"] == {"name": "langchain", "version": langchain_core.__version__}
        w.ok("define_resource", {"id": "m", "kind": "model", "version": 1,
                                 "spec": {"provider": "fake", "responses": [answer]}})
        w.ok("define_resource", {"id": "qa", "kind": "chain", "version": 1, "spec": {"model": "m", "messages": QA}})
        assert w.ok("invoke", {"chain_id": "qa", "inputs": {"question": "Capital?"}}) == answer
        chunks, final = w.stream("stream", {"chain_id": "qa", "inputs": {"question": "Capital?"}})
        assert final["t"] == "end" and len(chunks) > 1 and "".join(chunks) == answer
        assert w.ok("chat", {"model_id": "m", "messages": [{"role": "user", "content": "hi"}]}) == \
            {"role": "assistant", "content": answer}
        assert w.ok("execute", {"id": "qa", "inputs": {"question": "Capital?"}}) == answer
        assert w.ok("describe", {"id": "qa"})["input_variables"] == ["question"]
        bad = w.call("invoke", {"chain_id": "qa", "inputs": {}})
        assert not bad["ok"] and bad["error"]["category"] == "invalid_argument"
        assert "question" in bad["error"]["message"]


def test_openai_compatible_model_through_a_worker(provider):
    # invoke and chat are async handlers started eagerly, with no task until they first suspend
    # (eager.py); langchain-openai's client is httpx/anyio, which needs one. LangChain suspends
    # before its HTTP request, so the request runs in the handler's task: this pins that.
    with Worker(BRIDGE) as w:
        w.hello()
        w.ok("define_resource", {"id": "gpt", "kind": "model", "version": 1,
                                 "spec": {"provider": "openai_compatible", "model": "m", "base_url": provider.url,
                                          "max_retries": 0}})
        w.ok("define_resource", {"id": "qa", "kind": "chain", "version": 1, "spec": {"model": "gpt", "messages": QA}})
        assert w.ok("invoke", {"chain_id": "qa", "inputs": {"question": "Capital?"}}) == "Paris."
        assert w.ok("chat", {"model_id": "gpt", "messages": [{"role": "user", "content": "hi"}]}) == \
            {"role": "assistant", "content": "Paris."}
        assert [s[0] for s in provider.seen] == ["/v1/chat/completions"] * 2

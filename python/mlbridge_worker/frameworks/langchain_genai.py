"""GenAI spans for LangChain model calls, through LangChain's own callback handlers.

build_model adds :class:`GenAIHandler` to each model it builds (the model's own callbacks:
every chain using it, sync or async, invoked or streamed, reports its calls). The handler runs
inline (``run_inline``): its start hook sees the caller's context, so the span is a child of
the handler span. Streams are seen chunk by chunk (on_llm_new_token): the first one gives the
time to first chunk. Provider and model come from LangChain's standard ``ls_*`` metadata
(``_get_ls_params``), unless the bridge names them (the fake and local models).
"""

from __future__ import annotations

import threading
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseLanguageModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult

from .. import genai

_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool"}


class GenAIHandler(BaseCallbackHandler):
    """One CLIENT span per chat-model (or LLM) run."""

    run_inline = True  # in the caller's context (and thread), not on an executor

    def __init__(self, provider: str | None = None, model: str | None = None) -> None:
        self.provider, self.model = provider, model
        self._runs: dict[UUID, genai.LMCall] = {}
        self._lock = threading.Lock()

    def _start(self, operation: str, run_id: UUID, metadata: dict | None, kwargs: dict,
               messages: list[dict] | None) -> None:
        meta = metadata or {}
        params = dict(kwargs.get("invocation_params") or {})
        for key in ("temperature", "max_tokens"):  # LangChain's normalized ones, when the model's own are absent
            if params.get(key) is None and meta.get(f"ls_{key}") is not None:
                params[key] = meta[f"ls_{key}"]
        model = self.model or meta.get("ls_model_name") or params.get("model_name") or params.get("model") or "unknown"
        provider = self.provider or meta.get("ls_provider") or "unknown"
        call = genai.start(operation, str(model), str(provider), params,
                           messages if genai.capture_content() else None)
        if call is not None:
            with self._lock:
                self._runs[run_id] = call

    def _pop(self, run_id: UUID) -> genai.LMCall | None:
        with self._lock:
            return self._runs.pop(run_id, None)

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[BaseMessage]], *, run_id: UUID,
                            parent_run_id: UUID | None = None, tags: list[str] | None = None,
                            metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        msgs = [genai.message(_ROLES.get(m.type, m.type), m.text) for m in (messages[0] if messages else [])]
        self._start("chat", run_id, metadata, kwargs, msgs)

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID,
                     parent_run_id: UUID | None = None, tags: list[str] | None = None,
                     metadata: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._start("text_completion", run_id, metadata, kwargs, [genai.message("user", p) for p in prompts[:1]])

    def on_llm_new_token(self, token: str, *, run_id: UUID, **kwargs: Any) -> None:
        with self._lock:
            call = self._runs.get(run_id)
        if call is not None:
            call.first_chunk()

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        call = self._pop(run_id)
        if call is not None:
            call.finish(**_facts(response, call.capture))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        call = self._pop(run_id)
        if call is not None:
            call.fail(error)


def _facts(response: LLMResult, capture: bool) -> dict[str, Any]:
    out = response.llm_output or {}
    usage = out.get("token_usage") or out.get("usage") or {}
    inputs, outputs = usage.get("prompt_tokens"), usage.get("completion_tokens")
    model = out.get("model_name") or out.get("model")
    reasons: list[str] = []
    texts: list[dict] = []
    for gen in (response.generations[0] if response.generations else []):
        info = gen.generation_info or {}
        msg = getattr(gen, "message", None)
        meta = getattr(msg, "response_metadata", None) or {}
        reason = meta.get("finish_reason") or meta.get("stop_reason") or info.get("finish_reason")
        if reason:
            reasons.append(str(reason))
        model = model or meta.get("model_name") or meta.get("model")
        um = getattr(msg, "usage_metadata", None)
        if um:  # LangChain's provider-neutral usage, on the message
            inputs = um.get("input_tokens", inputs) if inputs is None else inputs
            outputs = um.get("output_tokens", outputs) if outputs is None else outputs
        if capture:
            texts.append(genai.message("assistant", gen.text, str(reason) if reason else None))
    facts: dict[str, Any] = {"response_model": model, "finish_reasons": reasons, "input_tokens": inputs,
                             "output_tokens": outputs}
    if capture:
        facts["output"] = texts
    return facts


def instrument(model: BaseLanguageModel, provider: str | None = None, name: str | None = None) -> Any:
    """Add the GenAI handler to ``model``'s own callbacks (once); ``provider``/``name`` override
    LangChain's ls_* metadata."""
    cbs = model.callbacks
    if isinstance(cbs, list) or cbs is None:
        cbs = list(cbs or [])
        if not any(isinstance(c, GenAIHandler) for c in cbs):
            cbs.append(GenAIHandler(provider, name))
        model.callbacks = cbs
    return model

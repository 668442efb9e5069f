"""GenAI spans for DSPy's LM calls, through DSPy's own callback hooks (on_lm_start/on_lm_end).

build_lm adds :class:`GenAICallback` to each LM it builds (an instance-level callback: DSPy's
global callbacks stay the application's). DSPy runs both hooks in the call's own context, so
the span is current during the call: the local engine marks a stream's first chunk on it.

on_lm_end receives the call's outputs, not the response: the usage, response model and finish
reasons come from the history entry DSPy records for the call, found by identity (it holds that
very outputs object), which stays right when calls on one LM overlap. With DSPy's history off
they are left out, as is a figure the provider did not report.
"""

from __future__ import annotations

import threading
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback

from .. import genai

# How far back in an LM's history to look for a call's entry: further than any overlap of
# calls on one worker (its capacity).
_HISTORY_LOOKBACK = 64


def _model_and_provider(lm: Any) -> tuple[str, str]:
    from .local_lm import MODEL_NAME, LocalLM

    if isinstance(lm, LocalLM):
        return MODEL_NAME, "llama_cpp"
    model = str(getattr(lm, "model", "") or "unknown")
    if type(lm).__name__ == "DummyLM":
        return model, "dspy.dummy"
    provider, sep, name = model.partition("/")  # LiteLLM's "provider/model"
    return (name, provider) if sep else (model, "unknown")


def _messages(inputs: dict) -> list[dict]:
    msgs = inputs.get("messages")
    if msgs is None and isinstance(inputs.get("prompt"), str):
        msgs = [{"role": "user", "content": inputs["prompt"]}]
    out = []
    for m in msgs or ():
        if isinstance(m, dict):
            content = m.get("content")
            text = content if isinstance(content, str) else str(content)
            out.append(genai.message(str(m.get("role", "user")), text))
        else:  # an lm15 Message
            out.append(genai.message(str(getattr(m, "role", "user")), str(getattr(m, "text", "") or "")))
    return out


class GenAICallback(BaseCallback):
    """One CLIENT span per LM call (dspy.LM, its subclasses such as the local LM, DummyLM)."""

    def __init__(self) -> None:
        self._calls: dict[str, tuple[genai.LMCall, Any]] = {}
        self._lock = threading.Lock()

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        model, provider = _model_and_provider(instance)
        operation = "text_completion" if getattr(instance, "model_type", "chat") == "text" else "chat"
        params = {**(getattr(instance, "kwargs", None) or {}), **(inputs.get("kwargs") or {})}
        call = genai.start(operation, model, provider, params,
                           _messages(inputs) if genai.capture_content() else None)
        if call is None:
            return
        call.enter()
        with self._lock:
            self._calls[call_id] = (call, instance)

    def on_lm_end(self, call_id: str, outputs: Any | None, exception: BaseException | None = None) -> None:
        with self._lock:
            entry = self._calls.pop(call_id, None)
        if entry is None:
            return
        call, lm = entry
        if exception is not None:
            call.fail(exception)
            return
        call.finish(**_response_facts(lm, outputs, call.capture))


def _response_facts(lm: Any, outputs: Any, capture: bool) -> dict[str, Any]:
    response = outputs if hasattr(outputs, "usage") and hasattr(outputs, "finish_reason") else None  # a typed call
    usage: dict = {}
    model = None
    if response is None:
        for e in reversed(lm.history[-_HISTORY_LOOKBACK:]):
            if e.get("outputs") is outputs:
                usage, model, response = e.get("usage") or {}, e.get("response_model"), e.get("response")
                break
    if isinstance(response, list):  # several responses (n > 1)
        responses = response
    else:
        responses = [response] if response is not None else []
    reasons: list[str] = []
    rid = None
    for r in responses:
        if hasattr(r, "finish_reason"):  # an lm15 Response
            reasons.append(str(r.finish_reason or ""))
            rid = rid or getattr(r, "id", None)
            model = model or getattr(r, "model", None)
        elif hasattr(r, "choices"):  # LiteLLM's ModelResponse
            reasons.extend(str(getattr(c, "finish_reason", "") or "") for c in r.choices)
            rid = rid or getattr(r, "id", None)
            model = model or getattr(r, "model", None)
    if not usage and response is not None and hasattr(response, "usage"):
        u = response.usage
        usage = {"prompt_tokens": getattr(u, "input_tokens", None), "completion_tokens": getattr(u, "output_tokens", None)}
    facts: dict[str, Any] = {"response_model": model, "finish_reasons": reasons, "response_id": rid,
                             "input_tokens": usage.get("prompt_tokens"), "output_tokens": usage.get("completion_tokens")}
    if capture and isinstance(outputs, list):
        facts["output"] = [genai.message("assistant", _text(o), reasons[i] if i < len(reasons) else None)
                           for i, o in enumerate(outputs)]
    return facts


def _text(o: Any) -> str:
    """An output's text: a string, or a dict with "text" (outputs with tool calls or reasoning)."""
    if isinstance(o, dict):
        return str(o.get("text") or "")
    return o if isinstance(o, str) else str(o)


def instrument(lm: dspy.BaseLM) -> dspy.BaseLM:
    """Add the GenAI callback to ``lm`` (once)."""
    if not any(isinstance(c, GenAICallback) for c in lm.callbacks):
        lm.callbacks.append(GenAICallback())
    return lm

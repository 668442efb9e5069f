"""GenAI client spans around LM calls, per OpenTelemetry's GenAI semantic conventions.

One span per model call (kind CLIENT, named ``"{gen_ai.operation.name} {gen_ai.request.model}"``),
a child of the current span (the handler's, tracing.py): the framework hooks (DSPy's callbacks,
LangChain's callback handler, in frameworks/*_genai.py) start it with :func:`start` and close it
with :meth:`LMCall.finish` or :meth:`LMCall.fail`. Attributes: ``gen_ai.operation.name``,
``gen_ai.provider.name`` (the conventions' replacement of ``gen_ai.system``),
``gen_ai.request.model``, the request's temperature / max_tokens / top_p when set,
``gen_ai.response.model``, ``gen_ai.response.finish_reasons``, ``gen_ai.usage.input_tokens`` /
``gen_ai.usage.output_tokens`` when the framework reports them, ``error.type`` on failure. A
stream adds ``gen_ai.request.stream`` and ``gen_ai.response.time_to_first_chunk`` (seconds from
the span's start: the conventions' span attribute; their metric of the same meaning,
``gen_ai.client.operation.time_to_first_chunk``, is not emitted: workers export spans only).

Prompts and completions may be personal data: they are recorded (``gen_ai.input.messages``,
``gen_ai.output.messages``, as JSON) only when ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
is ``true``, the switch OpenTelemetry's GenAI instrumentations use.

Without OpenTelemetry, or without a provider that records, :func:`start` returns None and the
hooks do nothing more.
"""

from __future__ import annotations

import contextvars
import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from . import tracing
from .errors import exc_text

CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
# request parameters the conventions name, by the keyword frameworks pass them as
_PARAMS = (("temperature", "gen_ai.request.temperature"), ("max_tokens", "gen_ai.request.max_tokens"),
           ("max_completion_tokens", "gen_ai.request.max_tokens"), ("top_p", "gen_ai.request.top_p"))


def capture_content() -> bool:
    """Whether prompts and completions go on spans (off unless the switch says true)."""
    return os.environ.get(CAPTURE_ENV, "").strip().lower() == "true"


class LMCall:
    """One model call's span, made current while the call runs (where the hook can: DSPy's
    start and end callbacks run in the call's own context) so a stream's engine can mark its
    first chunk and the client's own spans (HTTP) nest under it."""

    __slots__ = ("span", "t0", "_tokens", "_first", "capture")

    def __init__(self, span: Any, capture: bool):
        self.span, self.capture = span, capture
        self.t0 = time.monotonic()
        self._tokens: tuple[Any, Any] | None = None
        self._first = False

    def enter(self) -> None:
        """Make this call current in the running context, until finish/fail."""
        self._tokens = (tracing._context.attach(tracing._trace.set_span_in_context(self.span)), _current.set(self))

    def _leave(self) -> None:
        if self._tokens is None:
            return
        otel, mine = self._tokens
        self._tokens = None
        try:
            _current.reset(mine)
            tracing._context.detach(otel)
        except ValueError:  # ended in another context than it began (a hook that moved threads)
            pass

    def streaming(self) -> None:
        self.span.set_attribute("gen_ai.request.stream", True)

    def first_chunk(self) -> None:
        """The first piece of a streamed answer arrived: time since the request was issued."""
        if self._first:
            return
        self._first = True
        self.span.set_attribute("gen_ai.request.stream", True)
        self.span.set_attribute("gen_ai.response.time_to_first_chunk", time.monotonic() - self.t0)

    def finish(self, *, response_model: str | None = None, finish_reasons: Sequence[str] = (),
               input_tokens: int | None = None, output_tokens: int | None = None, response_id: str | None = None,
               output: Sequence[dict] | None = None) -> None:
        """End the span with what the response told; None values are left out (not made up)."""
        self._leave()
        s = self.span
        if response_model:
            s.set_attribute("gen_ai.response.model", response_model)
        if response_id:
            s.set_attribute("gen_ai.response.id", response_id)
        reasons = [r for r in finish_reasons if r]
        if reasons:
            s.set_attribute("gen_ai.response.finish_reasons", reasons)
        if input_tokens is not None:
            s.set_attribute("gen_ai.usage.input_tokens", int(input_tokens))
        if output_tokens is not None:
            s.set_attribute("gen_ai.usage.output_tokens", int(output_tokens))
        if self.capture and output is not None:
            s.set_attribute("gen_ai.output.messages", _json(output))
        s.end()

    def fail(self, exc: BaseException) -> None:
        """End the span as failed: ``error.type`` the exception's class (the conventions' choice
        for a client that has no better code), cancellation included."""
        self._leave()
        s = self.span
        try:
            s.set_attribute("error.type", type(exc).__qualname__)
            if self.capture:
                s.record_exception(exc)
                s.set_status(tracing.Status(tracing.StatusCode.ERROR, f"{type(exc).__name__}: {exc_text(exc)}"))
            else:
                # a provider's error message can quote the prompt: like the content itself, it
                # is recorded only when content capture is on
                s.set_status(tracing.Status(tracing.StatusCode.ERROR, type(exc).__name__))
        except Exception:  # never let a span cost the call its error
            pass
        s.end()


_current: contextvars.ContextVar[LMCall | None] = contextvars.ContextVar("mlbridge_genai_call", default=None)


def current() -> LMCall | None:
    """The model call running in this context (an engine marks a stream's chunks on it)."""
    return _current.get()


def streaming() -> None:
    """For engines: the current call streams its answer."""
    call = _current.get()
    if call is not None:
        call.streaming()


def first_chunk() -> None:
    """For engines: the current call's stream produced its first piece."""
    call = _current.get()
    if call is not None:
        call.first_chunk()


def start(operation: str, model: str, provider: str, params: Mapping[str, Any] | None = None,
          messages: Sequence[dict] | None = None) -> LMCall | None:
    """Start a model call's span under the current span; None when nothing would record it.
    ``messages``: the prompt as the conventions' input messages, recorded only when enabled."""
    if (tracing._trace is None and not tracing._load()) or not tracing._records():
        return None
    attrs: dict[str, Any] = {"gen_ai.operation.name": operation, "gen_ai.provider.name": provider,
                             "gen_ai.request.model": model}
    for key, name in _PARAMS:
        v = (params or {}).get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and name not in attrs:
            attrs[name] = int(v) if name == "gen_ai.request.max_tokens" else float(v)
    capture = capture_content()
    if capture and messages is not None:
        attrs["gen_ai.input.messages"] = _json(messages)
    span = tracing._get_tracer().start_span(f"{operation} {model}", kind=tracing._trace.SpanKind.CLIENT,
                                            attributes=attrs)
    return LMCall(span, capture)


def message(role: str, text: str, finish_reason: str | None = None) -> dict:
    """A message in the conventions' JSON shape: role and text parts (and an output's reason)."""
    m: dict[str, Any] = {"role": role, "parts": [{"type": "text", "content": text}]}
    if finish_reason:
        m["finish_reason"] = finish_reason
    return m


def _json(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, default=str)

"""Token streaming of a DSPy program's output, on DSPy's own streaming support.

`dspy.streamify(module, stream_listeners=[...], is_async_program=True)` runs the module with
`Module.acall` on the current event loop and hands every LM stream event to one
`dspy.streaming.StreamListener` per output field. A listener recognises where its field's value
starts and ends in the adapter's format (ChatAdapter's `[[ ## field ## ]]` headers, JSONAdapter's
keys) and yields the tokens in between as `StreamResponse`s; the run ends with the `Prediction`.

With ChatAdapter the listener's chunks are clean text. With JSONAdapter (the local LM's default)
DSPy 3.4.1's listener finds a field's end by pattern, and on small tokens it lets the next key
through (`'", "answer'` inside `reasoning`), yields the JSON quotes, and two listeners can yield
the same token. `FieldListener` therefore reads JSON output the robust way, by parsing it: the
text so far is parsed as partial JSON (jiter, as DSPy's listener does) and each field yields what
its value gained — decoded text for a string, the JSON text of any other value once it is complete.
For every other adapter it is DSPy's listener unchanged.

With ChatAdapter, an LM that answers in one piece (DSPy's DummyLM) gives no field chunks: DSPy's
listener sees the whole answer at once, and the stream is the prediction alone.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import dspy
import jiter
from dspy.adapters.json_adapter import JSONAdapter
from dspy.dsp.utils.settings import settings
from dspy.streaming import StreamListener, StreamResponse


class FieldListener(StreamListener):
    """A StreamListener for one output field that parses JSONAdapter output instead of matching
    patterns in it (see the module docstring); DSPy's own logic for the other adapters."""

    def __init__(self, signature_field_name: str, predict: Any = None, predict_name: str | None = None):
        super().__init__(signature_field_name=signature_field_name, predict=predict, predict_name=predict_name)
        self._raw = ""  # the LM's text so far (JSONAdapter only)
        self._sent = 0  # characters of a string value already yielded

    def receive(self, chunk: Any) -> StreamResponse | None:
        # The adapter is read per chunk, as DSPy's listener does: it is the caller's setting.
        if not isinstance(settings.adapter, JSONAdapter):
            return super().receive(chunk)
        if self.stream_end:
            return None
        try:
            text = chunk.choices[0].delta.content
        except (AttributeError, IndexError, KeyError, TypeError):
            return None
        if not text:
            return None
        self._raw += text
        return self._json_piece(final=False)

    def finalize(self) -> StreamResponse | None:
        if not isinstance(settings.adapter, JSONAdapter):
            return super().finalize()
        if self.stream_end or not self.stream_start:
            return None
        return self._json_piece(final=True)  # output cut short (max_tokens): what there is

    def _json_piece(self, final: bool) -> StreamResponse | None:
        start = self._raw.find("{")  # a remote LM may open with a ```json fence
        if start < 0:
            return None
        body = self._raw[start:].encode()
        try:
            obj = jiter.from_json(body, partial_mode="trailing-strings")
        except ValueError:
            return None  # not parseable yet (a partial escape, say): the next token decides
        name = self.signature_field_name
        if not isinstance(obj, dict) or name not in obj:
            return None
        self.stream_start = True
        keys = list(obj)
        # Done once a later key has a value, or the object is closed. A partial parse keeps a
        # string cut mid-way but drops a number or literal that may still grow.
        done = final or keys[-1] != name or _complete(body)
        value = obj[name]
        if isinstance(value, str):
            piece, self._sent = value[self._sent:], len(value)
        elif done:
            piece = json.dumps(value, ensure_ascii=False)
        else:
            return None
        if done:
            self.stream_end = True
        if not piece and not done:
            return None
        return StreamResponse(self.predict_name, name, piece, is_last_chunk=done)


def _complete(body: bytes) -> bool:
    if not body.rstrip().endswith(b"}"):
        return False
    try:
        jiter.from_json(body)
    except ValueError:
        return False
    return True


def output_fields(module: dspy.Module) -> list[str]:
    """The output fields of every predictor in ``module``, in order: for ChainOfThought that
    includes `reasoning`, which the LM writes before the declared outputs."""
    names: list[str] = []
    for _, predictor in module.named_predictors():
        for name in predictor.signature.output_fields:
            if name not in names:
                names.append(name)
    return names


async def stream_module(module: dspy.Module, lm: dspy.BaseLM, adapter: dspy.Adapter | None,
                        inputs: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """Run ``module`` on ``inputs`` and yield ``{"field", "text"}`` for each piece of an output
    field as the LM writes it, then ``{"prediction": {...}}`` once.

    Listeners hold per-run state, so each run builds its own. The listeners read the adapter from
    the consumer's context, and the program task started by streamify inherits it: the whole
    iteration runs inside one `dspy.context`.
    """
    pick = getattr(module, "stream_predictor", None)  # a module whose predictors share field names
    if pick is not None:
        predict_name, predict = pick()
        listeners = [FieldListener(name, predict, predict_name) for name in predict.signature.output_fields]
    else:
        listeners = [FieldListener(name) for name in output_fields(module)]
    streamer = dspy.streamify(module, stream_listeners=listeners, is_async_program=True)
    with dspy.context(lm=lm, adapter=adapter):
        # aclosing: a consumer that stops reading closes DSPy's generator here, in this task,
        # which cancels the program task inside streamify's task group (and so the LM call).
        async with contextlib.aclosing(streamer(**inputs)) as values:
            async for value in values:
                if isinstance(value, StreamResponse):
                    if value.chunk:  # a field's last chunk may be empty: it only marks the end
                        yield {"field": value.signature_field_name, "text": value.chunk}
                elif isinstance(value, dspy.Prediction):
                    yield {"prediction": dict(value.toDict())}
                # status messages and raw LM chunks (none with listeners on every field): dropped

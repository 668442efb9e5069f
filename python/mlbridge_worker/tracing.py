"""One trace from the Go caller into the handler: the handler runs in the host's handler span.

The host emits each request's handler span (kind SERVER, a child of its client span) itself,
and a ``req`` carries that span's W3C ``traceparent``/``tracestate`` (spec/protocol.md, "Trace
context"). :func:`start` parses it (the W3C rules, as OpenTelemetry's propagator applies them)
and makes it the current span, a non-recording remote span, inside the request's own context,
the one every handler kind runs in: the async handler's coroutine and task, the sync handler's
thread (``ctx.run``), the generator's task or thread. So spans the handler's code starts (GenAI
spans, genai.py; an HTTP client's) are its children, and log records carry its ids (log.py).
The worker starts no span of its own per request: the Python SDK costs ~30 µs a span to start,
end and export, as much as the whole untraced call (docs/OBSERVABILITY.md, "Cost"); the host's
SDK does the same in ~3 µs, and already knows all the span says (op, handler kind, pid,
outcome, cancel and deadline).

``opentelemetry-api`` is optional (the ``otel`` extra), and imported on the first traced request:
without it, or for a request without a traceparent, nothing here runs beyond one test, and the
worker behaves as before.

Where spans the worker's code starts go: :func:`setup`, after the bridge loaded, installs the
SDK with the standard OTLP/HTTP exporter when ``OTEL_*`` settings ask for one (the host passes
``OTEL_*`` through), unless the bridge installed a provider itself; :func:`flush` sends what is
buffered before the process exits (it ends with ``os._exit``: no atexit hooks run).
docs/OBSERVABILITY.md says why.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
from typing import TYPE_CHECKING, Any

from . import log as _log
from .log import log

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

SCOPE = "mlbridge_worker"

# OpenTelemetry, imported on first need (a traced request, OTEL_* settings): a worker that
# never sees either never pays for the import. None while not loaded, and when absent.
_trace: Any = None
_context: Any = None
_loaded = False
SpanKind: Any = None
Status: Any = None
StatusCode: Any = None
_SpanContext: Any = None
_NonRecordingSpan: Any = None
_Context: Any = None
_SPAN_KEY: Any = None  # the key under which a Context holds its span; None: use set_span_in_context
_FLAGS: tuple = ()
_MISSING = object()


def _load() -> bool:
    """Import the OpenTelemetry API once; False when it is not installed (the import guard)."""
    global _trace, _context, _loaded, SpanKind, Status, StatusCode, _SpanContext, _NonRecordingSpan, _Context, _SPAN_KEY
    global _FLAGS
    if _loaded:
        return _trace is not None
    _loaded = True
    try:
        from opentelemetry import context
        from opentelemetry import trace
    except ImportError:
        return False
    except Exception as e:  # a broken install must not fail requests: serve them untraced
        log(f"tracing off: importing opentelemetry failed: {type(e).__name__}: {e}", logging.WARNING)
        return False
    _context = context
    SpanKind, Status, StatusCode = trace.SpanKind, trace.Status, trace.StatusCode
    _SpanContext, _NonRecordingSpan, _Context = trace.SpanContext, trace.NonRecordingSpan, context.Context
    # The context holding just a span is built directly, {key: span}, rather than by
    # set_span_in_context (which copies the current context into a new one): the key is
    # learnt once from the API itself, and if that ever stops being a one-entry dict, the
    # API's way is taken.
    probe = trace.set_span_in_context(trace.INVALID_SPAN, context.Context())
    if isinstance(probe, context.Context) and len(probe) == 1:
        _SPAN_KEY = next(iter(probe))
    _FLAGS = (trace.TraceFlags(0), trace.TraceFlags(1))
    _log._current_ids = current_ids  # log records made during a traced call carry its ids
    _trace = trace
    return True


_provider: TracerProvider | None = None  # set by setup (or a test); None: the global one
_tracer: Any = None


def use_provider(provider: TracerProvider | None) -> None:
    """Start the worker's spans (GenAI) with ``provider`` (None: the global provider). For
    setup and tests."""
    global _provider, _tracer
    _load()
    _provider, _tracer = provider, None


def _get_tracer() -> Any:
    global _tracer
    if _tracer is None:
        tp = _provider if _provider is not None else _trace.get_tracer_provider()
        _tracer = tp.get_tracer(SCOPE)
    return _tracer


# a traceparent (https://www.w3.org/TR/trace-context/#traceparent-header): version 00 has
# exactly these four fields; a later version may append more after a dash
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(?:-.*)?")


def _span_of(tp: str, ts: str | None) -> Any:
    """The remote span of traceparent tp (tracestate ts), or None if tp is not a valid
    traceparent. Parsed here rather than by the propagator (same rules, a fifth of the cost):
    one match for the shape, then fixed slices."""
    if _TRACEPARENT.fullmatch(tp) is None:
        return None
    version = tp[:2]
    if version == "ff" or (version == "00" and len(tp) != 55):
        return None
    trace_int, span_int = int(tp[3:35], 16), int(tp[36:52], 16)
    if not trace_int or not span_int:
        return None
    state = _trace.TraceState.from_header([ts]) if ts else None
    return _NonRecordingSpan(_SpanContext(trace_int, span_int, True, _FLAGS[int(tp[53:55], 16) & 0x01], state))


def _parent(tp: str, ts: str | None) -> Any:
    """The context holding the remote span of tp, or None if tp is not a valid traceparent."""
    span = _span_of(tp, ts)
    return None if span is None else _in_context(span)


def _in_context(span: Any) -> Any:
    """A context holding span and nothing else."""
    if _SPAN_KEY is None:
        return _trace.set_span_in_context(span, _Context())
    return _Context({_SPAN_KEY: span})


_HostContext: Any = None  # the class below, made on first need (it subclasses the API's Context)


def _host_context_class() -> type:
    class HostContext(_Context):
        """The OpenTelemetry context of a traced request, holding the host's span — parsed
        from the traceparent on first use, not per request. Most requests never read it (a
        handler that neither logs nor starts a span), and parsing it and building its span
        measured ~10 µs a request in a worker (docs/OBSERVABILITY.md, "Cost"). The API reads a
        context with get() and copies it with copy() (opentelemetry.context); every other
        read of the dict is covered too, and once filled it is a plain Context. Filling is
        idempotent, so two threads sharing it at once both see the span."""

        # class defaults, not __slots__: an instance made without __init__ reads as a filled
        # (empty) context rather than failing
        _tp: str | None = None
        _ts: str | None = None

        def __init__(self, tp: str, ts: str | None) -> None:  # empty: dict.__new__ made it so
            self._tp, self._ts = tp, ts

        def _fill(self) -> None:
            tp = self._tp
            if tp is not None:
                span = _span_of(tp, self._ts)
                if span is not None:  # unparsable: an empty context, the request untraced
                    dict.__setitem__(self, _SPAN_KEY, span)
                self._tp = None  # after the span is in: a concurrent reader fills it again

        def get(self, key: Any, default: Any = None) -> Any:
            self._fill()
            return dict.get(self, key, default)

        def __getitem__(self, key: Any) -> Any:
            self._fill()
            return dict.__getitem__(self, key)

        def __contains__(self, key: Any) -> bool:
            self._fill()
            return dict.__contains__(self, key)

        def __iter__(self) -> Any:
            self._fill()
            return dict.__iter__(self)

        def __len__(self) -> int:
            self._fill()
            return dict.__len__(self)

        def __eq__(self, other: object) -> bool:
            self._fill()
            return dict.__eq__(self, other)

        __hash__ = None  # type: ignore[assignment]

        def __repr__(self) -> str:
            self._fill()
            return dict.__repr__(self)

        def keys(self) -> Any:
            self._fill()
            return dict.keys(self)

        def values(self) -> Any:
            self._fill()
            return dict.values(self)

        def items(self) -> Any:
            self._fill()
            return dict.items(self)

        def copy(self) -> dict:
            self._fill()
            return dict.copy(self)

        def __or__(self, other: Any) -> Any:
            self._fill()
            return dict.__or__(self, other)

    return HostContext


def _records() -> bool:
    """Whether spans the worker starts would be recorded: a provider was set (ours, the
    bridge's). The API's global, read directly: get_tracer_provider() costs a microsecond."""
    if _provider is not None:
        return True
    tp = getattr(_trace, "_TRACER_PROVIDER", _MISSING)
    if tp is _MISSING:  # a future API without the global: ask the slow way
        tp = _trace.get_tracer_provider()
        return not isinstance(tp, _trace.ProxyTracerProvider)
    return tp is not None


def start(tp: Any, ts: Any, ctx: contextvars.Context) -> None:
    """Continue the host's trace in ``ctx``: the host's handler span, traceparent ``tp`` and
    tracestate ``ts`` (None when absent), is the current span there, a non-recording remote
    span, parsed when something first reads it (HostContext). An unparsable traceparent
    leaves the request untraced (spec/protocol.md). Nothing happens without OpenTelemetry."""
    global _HostContext
    if type(tp) is not str or (_trace is None and not _load()):
        return
    if type(ts) is not str:
        ts = None
    if _SPAN_KEY is None:  # an API whose contexts are not {key: span}: parse now
        parent = _parent(tp, ts)
        if parent is not None:
            ctx.run(_context.attach, parent)
        return
    if _HostContext is None:
        _HostContext = _host_context_class()
    # attached inside the request's context: the token is never needed, the context is
    # dropped with the request
    ctx.run(_context.attach, _HostContext(tp, ts))


def current_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) as lowercase hex of the current span, or None: for log records."""
    if _trace is None:
        return None
    sc = _trace.get_current_span().get_span_context()
    if not sc.is_valid:
        return None
    return f"{sc.trace_id:032x}", f"{sc.span_id:016x}"


def setup(bridge: str, env: dict[str, str] | None = None) -> bool:
    """Install the SDK with an OTLP/HTTP exporter when ``OTEL_*`` asks for spans
    (``OTEL_TRACES_EXPORTER=otlp`` or an OTLP endpoint set), OpenTelemetry is installed and the
    bridge set no provider of its own. True when it did."""
    env = dict(os.environ) if env is None else env
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true" or exporter == "none":
        return False
    if exporter not in ("", "otlp"):
        # console would write to stdout, the protocol's pipe; others are not bundled
        log(f"ignoring OTEL_TRACES_EXPORTER={exporter!r}: workers export with otlp (http/protobuf) only",
            logging.WARNING)
        return False
    if exporter != "otlp" and not endpoint:
        return False
    if not _load():
        log("OTEL_* settings ask for spans, but opentelemetry-api is missing: install mlbridge-worker[otel]",
            logging.WARNING)
        return False
    if not isinstance(_trace.get_tracer_provider(), _trace.ProxyTracerProvider):
        return False  # the bridge (or sitecustomize) installed its own provider: it wins
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    if protocol not in ("", "http/protobuf"):
        log(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: workers export with http/protobuf", logging.WARNING)
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider as SDKProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as e:
        log(f"OTEL_* settings ask for spans, but the OpenTelemetry SDK or its OTLP exporter is missing "
            f"({e}): install mlbridge-worker[otel]", logging.WARNING)
        return False
    attrs: dict[str, Any] = {"mlbridge.bridge": bridge}
    if not env.get("OTEL_SERVICE_NAME") and "service.name=" not in env.get("OTEL_RESOURCE_ATTRIBUTES", ""):
        attrs["service.name"] = "mlbridge-worker"
    resource = Resource.create(attrs)
    provider = SDKProvider(resource=_HashOnce(resource.attributes, resource.schema_url))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _trace.set_tracer_provider(provider)
    use_provider(provider)
    return True


def _hash_once_class() -> type:
    from opentelemetry.sdk.resources import Resource

    class HashOnce(Resource):
        """The worker's resource, its hash computed once: OTLP's encoder groups the spans of
        every batch by resource, hashing it per span, and Resource's hash JSON-encodes its
        attributes each time (a sixth of the encoding's cost). A Resource is immutable."""

        def __hash__(self) -> int:
            h = self.__dict__.get("_mlbridge_hash")
            if h is None:
                h = self.__dict__["_mlbridge_hash"] = super().__hash__()
            return h

    return HashOnce


def _HashOnce(attributes: Any, schema_url: str | None) -> Any:
    return _hash_once_class()(attributes, schema_url)


def flush(timeout_ms: int = 1000) -> None:
    """Send buffered spans (the worker is about to exit), waiting ``timeout_ms`` at most: ours,
    or those of a provider the bridge installed."""
    if _trace is None:
        return
    tp = _provider if _provider is not None else _trace.get_tracer_provider()
    force = getattr(tp, "force_flush", None)
    if force is not None:
        try:
            force(timeout_ms)
        except Exception:
            pass


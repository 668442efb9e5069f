"""One trace from the Go caller into the handler: the handler's span continues the host's.

A ``req`` may carry the W3C ``traceparent``/``tracestate`` of the host's client span
(spec/protocol.md, "Trace context"). :func:`start` parses it (the W3C rules, as OpenTelemetry's
propagator applies them), starts the handler's span (kind SERVER) as its child, and makes it the
current span inside the request's own context, the one every handler kind runs in: the async handler's
coroutine and task, the sync handler's thread (``ctx.run``), the generator's task or thread. So
spans the handler's code starts are children of it, and log records carry its ids (log.py).
:func:`end` closes it when the request is answered: error status on failure, with
``error.type`` the error's category and an ``mlbridge.cancel`` event on a cancel or a deadline.

``opentelemetry-api`` is optional (the ``otel`` extra), and imported on the first traced request:
without it, or for a request without a traceparent, nothing here runs beyond one test, and the
worker behaves as before. With the API but no provider that records (no SDK set up), the host's
span itself is made current, unrecorded: ids still flow to log records and outgoing calls.

Where spans go: :func:`setup`, after the bridge loaded, installs the SDK with the standard
OTLP/HTTP exporter when ``OTEL_*`` settings ask for one (the host passes ``OTEL_*`` through),
unless the bridge installed a provider itself; :func:`flush` sends what is buffered before the
process exits (it ends with ``os._exit``: no atexit hooks run). docs/OBSERVABILITY.md says why
the worker exports its spans itself rather than sending them back to the host.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
from typing import TYPE_CHECKING, Any

from . import log as _log
from .errors import category_of, exc_text
from .log import log

if TYPE_CHECKING:
    from opentelemetry.trace import Span, TracerProvider

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
_set_span: Any = None
_FLAGS: tuple = ()
_MISSING = object()


def _load() -> bool:
    """Import the OpenTelemetry API once; False when it is not installed (the import guard)."""
    global _trace, _context, _loaded, SpanKind, Status, StatusCode, _SpanContext, _NonRecordingSpan, _set_span, _FLAGS
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
    _SpanContext, _NonRecordingSpan, _set_span = trace.SpanContext, trace.NonRecordingSpan, trace.set_span_in_context
    _FLAGS = (trace.TraceFlags(0), trace.TraceFlags(1))
    _log._current_ids = current_ids  # log records made during a traced call carry its ids
    _trace = trace
    return True


_provider: TracerProvider | None = None  # set by setup (or a test); None: the global one
_tracer: Any = None


def use_provider(provider: TracerProvider | None) -> None:
    """Start handler spans with ``provider`` (None: the global provider). For setup and tests."""
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
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


def _parent(tp: str, ts: str | None) -> Any:
    """The remote parent's context, or None if tp is not a valid traceparent. Parsed here
    rather than by the propagator (same rules, a third of the cost: this runs per request)."""
    m = _TRACEPARENT.fullmatch(tp)
    if m is None:
        return None
    version, trace_id, span_id, flags, rest = m.groups()
    trace_int, span_int = int(trace_id, 16), int(span_id, 16)
    if version == "ff" or (version == "00" and rest) or not trace_int or not span_int:
        return None
    state = _trace.TraceState.from_header([ts]) if ts else None
    sc = _SpanContext(trace_int, span_int, True, _FLAGS[int(flags, 16) & 0x01], state)
    return _set_span(_NonRecordingSpan(sc))


def _records() -> bool:
    """Whether handler spans would be recorded: a provider was set (ours, the bridge's). The
    API's global, read directly: get_tracer_provider() costs a microsecond per request."""
    if _provider is not None:
        return True
    tp = getattr(_trace, "_TRACER_PROVIDER", _MISSING)
    if tp is _MISSING:  # a future API without the global: ask the slow way
        tp = _trace.get_tracer_provider()
        return not isinstance(tp, _trace.ProxyTracerProvider)
    return tp is not None


def start(msg: dict, op: str, kind: str, ctx: contextvars.Context) -> Span | None:
    """Continue the host's trace in ``ctx``: the handler's span, a child of the host's, is
    current there. None when there is nothing to end: no (valid) traceparent, no
    OpenTelemetry, or no provider that records, in which case the host's span itself is made
    current (a non-recording remote span: log records and outgoing calls still carry its ids,
    spans the handler starts are its children, and nothing else is paid)."""
    tp = msg.get("traceparent")
    if tp is None or (_trace is None and not _load()):
        return None
    parent = _parent(tp, msg.get("tracestate"))
    if parent is None:
        return None  # an unparsable traceparent: served without a span (spec/protocol.md)
    if not _records():
        ctx.run(_context.attach, parent)
        return None
    try:
        span = _get_tracer().start_span(
            op, context=parent, kind=SpanKind.SERVER,
            attributes={"rpc.system": "mlbridge", "rpc.method": op, "mlbridge.handler_kind": kind},
        )
    except Exception as e:  # a bridge's span processor: served without a span of its own
        _untraceable(e)
        ctx.run(_context.attach, parent)
        return None
    # attach inside the request's context: the token is never needed, the context is dropped
    # with the request
    ctx.run(_context.attach, _trace.set_span_in_context(span, parent))
    return span


def fail(span: Span | None, category: str | None, exc: BaseException | None = None) -> None:
    """Record why a request fails before :func:`end` closes its span: the error's category (of
    ``exc`` when None) and, for a cancel or a deadline, an ``mlbridge.cancel`` event; the
    exception when there is one. Never raises: the request's answer is sent after it."""
    if span is None or not span.is_recording():
        return
    try:
        if category is None:
            category = category_of(exc) if exc is not None else "internal"
        span.set_attribute("error.type", category)
        if category in ("cancelled", "timeout"):
            span.add_event("mlbridge.cancel", {"mlbridge.reason": category})
        if exc is not None:
            span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, category if exc is None else f"{type(exc).__name__}: {exc_text(exc)}"))
    except Exception as e:  # an exception whose __str__ raises, a bridge's span processor
        _untraceable(e)


def end(span: Span, ok: bool) -> None:
    """Close a request's span; a failure not described by :func:`fail` still sets the error
    status. Never raises, like :func:`fail`."""
    try:
        if not ok and span.is_recording() and span.status.status_code is StatusCode.UNSET:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
    except Exception as e:
        _untraceable(e)


def _untraceable(e: Exception) -> None:
    # a span that cannot be described must not cost the request its answer: say so, once a
    # kind of failure, and go on
    kind = type(e).__name__
    if kind not in _reported:
        _reported.add(kind)
        log(f"tracing: a span could not be recorded ({kind}: {exc_text(e)}); the request is answered all the same")


_reported: set[str] = set()


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
    provider = SDKProvider(resource=Resource.create(attrs))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    _trace.set_tracer_provider(provider)
    use_provider(provider)
    return True


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


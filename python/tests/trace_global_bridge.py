"""A bridge that installs its own global TracerProvider at import (in-memory spans): the worker
must use it, and its OTEL_* setup must not replace it (tests/test_tracing.py)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mlbridge_worker import handler
from mlbridge_worker.echo import EchoBridge

EXPORTER = InMemorySpanExporter()
PROVIDER = TracerProvider()
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(PROVIDER)


class GlobalTraceBridge(EchoBridge):
    @handler
    async def spans(self) -> list:
        return [{"name": s.name, "parent_id": f"{s.parent.span_id:016x}" if s.parent else None,
                 "trace_id": f"{s.context.trace_id:032x}"} for s in EXPORTER.get_finished_spans()]

    @handler
    async def provider_is_mine(self) -> bool:
        return trace.get_tracer_provider() is PROVIDER

    @handler
    async def app_span(self, name: str) -> None:
        with PROVIDER.get_tracer("app").start_as_current_span(name):
            pass

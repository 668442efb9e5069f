"""A bridge whose own spans are kept in memory (OpenTelemetry SDK's InMemorySpanExporter)
and returned by its ``spans`` op: tests/test_tracing.py reads what the worker recorded."""

from __future__ import annotations

import asyncio
import logging

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mlbridge_worker import handler, tracing
from mlbridge_worker.echo import EchoBridge

EXPORTER = InMemorySpanExporter()
PROVIDER = TracerProvider()
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))
tracing.use_provider(PROVIDER)  # the worker's spans go here, not to the (unset) global provider

_app = logging.getLogger("app")


def _inner(name: str) -> dict:
    """A span the handler's own code starts, and a log record: both join the request's span."""
    with PROVIDER.get_tracer("app").start_as_current_span(name):
        _app.warning("inside %s", name)
    ids = tracing.current_ids()
    return {"trace_id": ids[0], "span_id": ids[1]} if ids else {}


class TraceBridge(EchoBridge):
    @handler
    async def spans(self) -> list:
        out = []
        for s in EXPORTER.get_finished_spans():
            out.append({
                "name": s.name, "kind": s.kind.name,
                "trace_id": f"{s.context.trace_id:032x}", "span_id": f"{s.context.span_id:016x}",
                "parent_id": f"{s.parent.span_id:016x}" if s.parent else None,
                "remote_parent": bool(s.parent and s.parent.is_remote),
                "status": s.status.status_code.name,
                "attributes": {k: v for k, v in (s.attributes or {}).items()},
                "events": [e.name for e in s.events],
            })
        return out

    @handler
    def inner_sync(self) -> dict:
        return _inner("inner_sync")

    @handler
    async def inner_async(self) -> dict:
        await asyncio.sleep(0)  # continues in a task
        return _inner("inner_async")

    @handler
    async def inner_eager(self) -> dict:
        return _inner("inner_eager")  # finishes in its eager first step: no task

    @handler
    def inner_sync_gen(self):
        yield _inner("inner_sync_gen")

    @handler
    async def inner_async_gen(self):
        await asyncio.sleep(0)
        yield _inner("inner_async_gen")


class _Broken(Exception):
    """An exception whose message cannot be read."""

    def __str__(self) -> str:
        raise RuntimeError("broken __str__")


class BrokenBridge(TraceBridge):
    @handler
    async def broken_async(self) -> dict:
        await asyncio.sleep(0)
        raise _Broken()

    @handler
    async def broken_eager(self) -> dict:
        raise _Broken()

    @handler
    def broken_sync(self) -> dict:
        raise _Broken()

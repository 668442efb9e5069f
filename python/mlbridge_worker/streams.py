"""Streamed answers: ``chunk`` frames, an ``async_gen`` handler's task, and a stream that
fails mid-way (an item that cannot be encoded or is too large)."""

from __future__ import annotations

from typing import Any

from .protocol import pack_header
from .request import Request


class StreamMixin:
    """The :class:`~.runtime.Runtime`'s stream output (sync generators: :mod:`.sync_calls`)."""

    async def _run_agen(self, req: Request, agen) -> None:
        try:
            async for item in agen:
                if req.done or not self._emit_chunk(req, item):
                    return
                if self.paused:
                    w = self.loop.create_future()
                    self.resume_waiters.append(w)
                    await w
        finally:
            await agen.aclose()

    def _emit_chunk(self, req: Request, item: Any) -> bool:
        """Send one chunk; on an encoding failure answer the stream with an error. Loop only."""
        if req.done:
            return False
        try:
            payload = self._pack_chunk(req.id, item)  # output.py: depth and size known before packing
        except Exception as e:
            self._serialization_failed(req, e, "an item")
            return False
        n = len(payload)
        if n > self.out_max:
            self._too_large(req, n, "an item")
            return False
        self.write(pack_header(n) + payload)
        return True

    def _serialization_failed(self, req: Request, e: Exception, what: str) -> None:
        if self._finish(req, False):
            req.stop = True
            self.send_error(req.id, "serialization", type(e).__name__,
                            f"{what} of the stream cannot be encoded as msgpack: {e}")
            if req.task is not None:
                req.task.cancel()

    def _too_large(self, req: Request, n: int, what: str) -> None:
        if self._finish(req, False):
            req.stop = True
            self.send_error(req.id, "serialization", "FrameTooLarge",
                            f"{what} of the stream encodes to {n} bytes, more than the max frame size {self.out_max}")
            if req.task is not None:
                req.task.cancel()

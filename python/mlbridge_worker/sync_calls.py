"""``sync`` and ``sync_gen`` handlers: they run on the executor's threads, inside the
request's context, and post their outcome back to the loop with ``call_soon_threadsafe``.

A thread cannot be cancelled: a timed-out or cancelled call is answered at once and its thread
abandoned (counted in ``stats.abandoned`` until it returns); ``req.stop`` asks a generator to
stop between items.
"""

from __future__ import annotations

import types

from .errors import InvalidConfiguration
from .forks import end_if_forked_copy
from .request import Request, _sync_request_var

_CoroutineType = types.CoroutineType


class SyncCallMixin:
    """The :class:`~.runtime.Runtime`'s thread-pool side."""

    def _run_sync(self, req: Request, fn, args: dict) -> None:
        """Runs on an executor thread, inside the request's context."""
        _sync_request_var.set(req)
        try:
            if req.stop:  # cancelled or timed out while queued: don't start
                ok, value = False, None
            else:
                value = fn(**args)
                ok = True
                if type(value) is _CoroutineType:
                    value.close()
                    raise InvalidConfiguration(
                        f"sync handler {req.op!r} returned a coroutine: declare it `async def` "
                        "or mark it @handler(kind='async')"
                    )
        except BaseException as e:
            ok, value = False, e
        end_if_forked_copy(self.pid)
        try:
            self.loop.call_soon_threadsafe(self._sync_done, req, ok, value)
        except RuntimeError:  # loop closed: the process is exiting
            pass

    def _sync_done(self, req: Request, ok: bool, value) -> None:
        if req.abandoned:
            req.abandoned = False
            self.stats.abandoned -= 1
            return
        if req.done:
            return
        if ok:
            if self._finish(req, True):
                if req.batch:
                    self.send_bres(req, value)
                else:
                    self.send_result(req.id, value, req.st)
        elif value is None:
            pass  # never started (stop was set, which means it was answered already)
        else:
            if self._finish(req, False):
                if isinstance(value, TypeError) and _binding_error(value):
                    self.send_error(req.id, "invalid_argument", "TypeError", str(value))
                else:
                    self.send_error_exc(req.id, value)

    def _run_sync_gen(self, req: Request, fn, args: dict) -> None:
        """Runs on an executor thread: iterates the generator, posting items to the loop."""
        _sync_request_var.set(req)
        post = self.loop.call_soon_threadsafe
        if req.stop:
            post(self._sync_done, req, False, None)
            return
        gen = None
        try:
            gen = fn(**args)
            for item in gen:
                if req.stop:
                    break
                post(self._sync_chunk, req, item)
                while self.paused and not req.stop:
                    self.writable.wait(0.1)
                if req.stop:
                    break
        except BaseException as e:
            try:
                post(self._sync_done, req, False, e)
            except RuntimeError:
                pass
            return
        finally:
            if gen is not None:
                try:
                    gen.close()
                except BaseException:
                    pass
            end_if_forked_copy(self.pid)
        try:
            post(self._sync_gen_end, req)
        except RuntimeError:
            pass

    def _sync_chunk(self, req: Request, item) -> None:
        if not req.done and not self._emit_chunk(req, item):
            req.stop = True

    def _sync_gen_end(self, req: Request) -> None:
        if req.abandoned:
            req.abandoned = False
            self.stats.abandoned -= 1
            return
        if self._finish(req, True):
            self.send({"t": "end", "id": req.id})


def _binding_error(e: TypeError) -> bool:
    """True when a TypeError from ``fn(**args)`` in :meth:`Runtime._run_sync` was raised by the
    call binding (its traceback has no frame below the calling one)."""
    tb = e.__traceback__
    return tb is not None and tb.tb_next is None

"""Per-request state: the runtime's :class:`Request` record and what a handler can see of its
request (:func:`current_request`)."""

from __future__ import annotations

import contextvars


class RequestInfo:
    """What a handler can learn about the request it serves: :func:`current_request`."""

    __slots__ = ("id", "op", "deadline")

    def __init__(self, id: int, op: str, deadline: int | None):
        self.id = id
        self.op = op
        self.deadline = deadline  # unix ms or None

    @property
    def cancelled(self) -> bool:
        """True once the host cancelled this call or its deadline passed, for code running on
        a sync handler's thread: a thread cannot be interrupted, so long sync work (a token
        loop, a batch) polls this between steps and stops early. Async handlers get
        ``CancelledError`` at their next ``await`` instead; for them this stays False."""
        req = _sync_request_var.get()
        return req is not None and req.stop

    @property
    def host(self):
        """The host functions, called on behalf of this request (see :mod:`.host`)."""
        from .host import Host

        return Host(self.id)

    def __repr__(self) -> str:
        return f"RequestInfo(id={self.id}, op={self.op!r}, deadline={self.deadline})"


# holds (id, op, deadline): a tuple is the cheapest thing to build per request
_request_var: contextvars.ContextVar[tuple | None] = contextvars.ContextVar(
    "mlbridge_request", default=None
)


# the Request record of a sync or sync_gen call, set on its thread (inside the request's own
# context copy): what RequestInfo.cancelled reads
_sync_request_var: contextvars.ContextVar[Request | None] = contextvars.ContextVar(
    "mlbridge_sync_request", default=None
)


def current_request() -> RequestInfo | None:
    """The request being served by the calling handler (sync or async), or None."""
    t = _request_var.get()
    return None if t is None else RequestInfo(*t)


class Request:
    __slots__ = ("id", "op", "st", "t0", "stream", "task", "timer", "done", "abandoned", "stop", "sync", "batch")

    def __init__(self, id, op, st, t0, stream, sync):
        self.id = id
        self.op = op
        self.st = st
        self.t0 = t0
        self.stream = stream
        self.sync = sync  # runs on a thread: abandoned, not cancelled
        self.task = None
        self.timer = None
        self.done = False  # the terminal frame was sent
        self.abandoned = False
        self.stop = False  # tells a sync generator thread to stop between items
        self.batch = 0  # a breq of this many items (batching.py); 0 for a req

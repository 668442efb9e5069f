"""BaseBridge: the class a framework bridge subclasses.

A bridge marks its handlers with ``@handler`` (op name = method name) or ``@handler("name")``.
Each handler's kind is decided once, when the bridge is constructed, from the function itself
(``inspect``): ``async_gen``, ``sync_gen``, ``async`` or ``sync``. Nothing at call time guesses.

Subclasses implement :meth:`BaseBridge._initialize_framework` (framework imports and global
configuration; called once before the worker sends its ``hello``) and usually
:meth:`BaseBridge.get_framework_info`.
"""

from __future__ import annotations

import abc
import gc
import inspect
import os
import sys
from typing import Any, Callable

from .argcheck import Check, compile_check
from .protocol import KINDS

_MARK = "__mlbridge_handler__"
_KIND_MARK = "__mlbridge_kind__"
_ALT_MARK = "__mlbridge_alternative__"
_BATCH_MARK = "__mlbridge_batched__"


def handler(arg: Callable | str | None = None, *, kind: str | None = None):
    """Mark a method as a handler.

    ``@handler`` / ``@handler()`` use the method name; ``@handler("op")`` names the op.
    ``kind=`` overrides detection, for a function wrapped so that ``inspect`` cannot see what
    it is (a plain ``def`` wrapper returning a coroutine, say).
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")

    def mark(fn: Callable, name: str | None) -> Callable:
        target = fn.__func__ if isinstance(fn, (staticmethod, classmethod)) else fn
        setattr(target, _MARK, name or target.__name__)
        if kind is not None:
            setattr(target, _KIND_MARK, kind)
        return fn

    if callable(arg):
        return mark(arg, None)
    return lambda fn: mark(fn, arg)


def batched(*, max_size: int, max_wait_ms: int):
    """Declare a handler batched: the host gathers concurrent calls to its op (from every
    caller of a pool) and the handler receives them together, as a list of argument dicts
    (one per call, in the order the host sent them); it returns a list of as many results, in
    the same order, where an exception instance is the error of that call alone.

    ``max_size`` bounds a batch; ``max_wait_ms`` is how long the host holds the oldest call
    of a batch that is not full before sending it anyway. Use with ``@handler`` (either order);
    the handler is ``def`` or ``async def``, never a generator. A plain call to the op (an
    older host, or batching turned off in the pool) reaches the handler as a batch of one.

    The declaration is checked when the bridge is constructed: a bad one is an
    :class:`~.errors.InvalidConfiguration` there, before the worker says hello.
    """

    def mark(fn: Callable) -> Callable:
        target = fn.__func__ if isinstance(fn, (staticmethod, classmethod)) else fn
        setattr(target, _BATCH_MARK, (max_size, max_wait_ms))
        return fn

    return mark


def _batch_spec(name: str, fn: Callable, kind: str) -> tuple[int, int] | None:
    """The checked ``(max_size, max_wait_ms)`` of a handler marked :func:`batched`, else None."""
    spec = getattr(getattr(fn, "__func__", fn), _BATCH_MARK, None)
    if spec is None:
        return None
    from .errors import InvalidConfiguration

    max_size, max_wait_ms = spec
    if type(max_size) is not int or max_size < 1:
        raise InvalidConfiguration(f"batched handler {name!r}: max_size must be an integer >= 1, not {max_size!r}")
    if type(max_wait_ms) is not int or max_wait_ms < 0:
        raise InvalidConfiguration(
            f"batched handler {name!r}: max_wait_ms must be an integer >= 0 (milliseconds), not {max_wait_ms!r}")
    if kind not in ("sync", "async"):
        raise InvalidConfiguration(f"batched handler {name!r} is a {kind} handler: a batch gets one list of results, "
                                   "so it must be a plain def or async def")
    return max_size, max_wait_ms


def alternative(op: str):
    """Mark a method as another implementation of handler ``op`` — typically the ``async def``
    beside a ``def`` being migrated. Which one serves the op is a switch per op (the
    ``handler_modes`` bridge option, or the built-in ``set_handler_mode`` op at runtime), so
    converting one handler is a deployable, reversible step; the wire and the Go API never
    change. The mode of an implementation is its kind: sync, async, sync_gen or async_gen."""

    def mark(fn: Callable) -> Callable:
        setattr(fn, _ALT_MARK, op)
        return fn

    return mark


def handler_kind(fn: Callable) -> str:
    """The kind of a handler function, decided with ``inspect`` (never asyncio's helpers)."""
    forced = getattr(getattr(fn, "__func__", fn), _KIND_MARK, None)
    if forced is not None:
        return forced
    if inspect.isasyncgenfunction(fn):
        return "async_gen"
    if inspect.isgeneratorfunction(fn):
        return "sync_gen"
    if inspect.iscoroutinefunction(fn):
        return "async"
    return "sync"


def _check_not_hiding(cls: type, attr: str) -> None:
    """A handler method must not hide one of BaseBridge's own (non-handler) methods: the
    worker calls those (``resources``, ``get_framework_info``…), and a handler of the same
    name would break them far from the cause. The op can keep the name: ``@handler("name")``
    on a method named otherwise."""
    if cls is BaseBridge or attr.startswith("__"):
        return
    base = getattr(BaseBridge, attr, None)
    if base is not None and getattr(getattr(base, "__func__", base), _MARK, None) is None:
        from .errors import InvalidConfiguration

        raise InvalidConfiguration(
            f"{cls.__name__}.{attr} is a handler that hides BaseBridge.{attr}, which the worker "
            f"uses; name the method otherwise and keep the op name with @handler({attr!r})")


class HandlerInfo:
    __slots__ = ("name", "fn", "kind", "check", "batch")

    def __init__(self, name: str, fn: Callable, kind: str):
        self.name = name
        self.fn = fn
        self.kind = kind
        #: (max_size, max_wait_ms) of a batched handler (:func:`batched`), else None
        self.batch: tuple[int, int] | None = _batch_spec(name, fn, kind)
        # its annotations compiled once, here, for the runtime to test each call's arguments;
        # a batched handler takes a list of argument dicts and checks them itself
        self.check: Check | None = None if self.batch else compile_check(fn, name)

    def __repr__(self) -> str:
        return f"HandlerInfo({self.name!r}, kind={self.kind!r})"


class Resource:
    """One resource built on this worker from a host-owned definition."""

    __slots__ = ("id", "kind", "version", "obj")

    def __init__(self, id: str, kind: str, version: int, obj: Any):
        self.id, self.kind, self.version, self.obj = id, kind, version, obj


class BaseBridge(abc.ABC):
    """Base class of all bridges. Built-in handlers: ping, get_info, get_stats, health_check,
    list_handlers, define_resource, forget_resource, execute, describe, list_resources,
    cleanup, shutdown."""

    #: defaults for :meth:`get_framework_info`
    framework_name = "none"
    framework_version = ""
    capabilities: tuple[str, ...] = ()
    #: how many calls this bridge can usefully run at once; a pool uses it as each worker's
    #: default in-flight limit (a bridge bound to one local model might say 1 or 2)
    capacity: int = 64
    #: the runtime's own ops and the cheap resource bookkeeping (describe, list_resources),
    #: left out of the migration metrics (% async handlers, calls per kind): they are not the
    #: framework's work, and converting them would gain nothing
    plumbing_ops: frozenset[str] = frozenset({
        "ping", "get_info", "get_stats", "health_check", "list_handlers", "define_resource",
        "forget_resource", "set_handler_mode", "handler_modes", "cleanup", "shutdown",
        "describe", "list_resources",
    })

    def __init__(self) -> None:
        self._runtime = None  # set by the runtime that serves this bridge
        self._handlers: dict[str, HandlerInfo] = self._collect_handlers()
        self._alternatives: dict[str, dict[str, HandlerInfo]] = self._collect_alternatives()
        # Resources built from host-owned definitions, by id. Only a cache: the host re-sends
        # a definition to any worker that lacks it.
        self._resources: dict[str, Resource] = {}
        #: free-form settings from the host's bridge declaration (mlbridge.yaml `options:`)
        self.options: dict[str, Any] = {}

    # ---------------------------------------------------------------- subclass API

    @abc.abstractmethod
    def _initialize_framework(self) -> None:
        """Import and configure the framework. Called once before the hello is sent; an
        exception here becomes a hello carrying an ``invalid_configuration`` error. May be
        ``async def``."""

    def get_framework_info(self) -> dict:
        return {
            "name": self.framework_name,
            "version": self.framework_version,
            "capabilities": list(self.capabilities),
        }

    def build_resource(self, kind: str, id: str, spec: dict, state: bytes | None) -> Any:
        """Build a resource (program, chain, model, configuration) from its definition. The
        result is cached by id and version; :meth:`resource` returns it to handlers. Global
        definitions (framework configuration) are applied here too, before the worker takes
        calls. Subclasses override."""
        from .errors import InvalidArgument

        raise InvalidArgument(f"{type(self).__name__} builds no resources of kind {kind!r}")

    def resource(self, id: str, kind: str | None = None) -> Any:
        """The object built for resource ``id`` (of ``kind``, when given); NotFound if this
        worker has not built it."""
        entry = self._resources.get(id)
        if entry is None or (kind is not None and entry.kind != kind):
            from .errors import NotFound

            raise NotFound(f"{kind or 'resource'} {id!r} is not defined on this worker")
        return entry.obj

    def resources(self, kind: str | None = None) -> list[Resource]:
        return sorted((r for r in self._resources.values() if kind is None or r.kind == kind), key=lambda r: r.id)

    def execute_resource(self, kind: str, id: str, obj: Any, inputs: dict) -> Any:
        """Run a resource on inputs (the generic ``execute`` op): a program, a chain, a model's
        prediction. Subclasses override for the kinds they can run."""
        from .errors import InvalidArgument

        raise InvalidArgument(f"{type(self).__name__} cannot execute resources of kind {kind!r}")

    def describe_resource(self, kind: str, id: str, obj: Any) -> dict:
        """What the generic ``describe`` op reports beyond id, kind and version."""
        return {}

    # ---------------------------------------------------------------- handler table

    def _collect_handlers(self) -> dict[str, HandlerInfo]:
        op_attr: dict[str, str] = {}  # op name -> attribute name
        for cls in reversed(type(self).__mro__):
            for attr, val in vars(cls).items():
                fn = val.__func__ if isinstance(val, (staticmethod, classmethod)) else val
                op = getattr(fn, _MARK, None) if callable(fn) else None
                if op is not None:
                    _check_not_hiding(cls, attr)
                    for o, a in list(op_attr.items()):
                        if a == attr:  # re-marked under another name in a subclass
                            del op_attr[o]
                    op_attr[op] = attr
                elif attr in op_attr.values():
                    if val is None:  # `name = None` in a subclass removes a handler
                        for o, a in list(op_attr.items()):
                            if a == attr:
                                del op_attr[o]
                    # else: an override without the decorator stays a handler
        table = {}
        for op, attr in op_attr.items():
            fn = getattr(self, attr)
            table[op] = HandlerInfo(op, fn, handler_kind(fn))
        return table

    @property
    def handlers(self) -> dict[str, HandlerInfo]:
        if not hasattr(self, "_handlers"):  # a subclass __init__ that skipped super().__init__
            self._runtime = getattr(self, "_runtime", None)
            self._handlers = self._collect_handlers()
        return self._handlers

    def _collect_alternatives(self) -> dict[str, dict[str, HandlerInfo]]:
        alts: dict[str, dict[str, HandlerInfo]] = {}
        for attr in dir(type(self)):
            op = getattr(getattr(type(self), attr, None), _ALT_MARK, None)
            if op is None:
                continue
            if op not in self._handlers:
                raise TypeError(f"{type(self).__name__}.{attr} is an alternative of {op!r}, which is not a handler")
            primary = self._handlers[op]
            fn = getattr(self, attr)
            kind = handler_kind(fn)
            if kind == primary.kind or (kind in ("sync_gen", "async_gen")) != (primary.kind in ("sync_gen", "async_gen")):
                raise TypeError(f"{type(self).__name__}.{attr}: an alternative of {op!r} needs another kind than "
                                f"{primary.kind!r}, and must stream if and only if the op does")
            alts.setdefault(op, {primary.kind: primary})[kind] = HandlerInfo(op, fn, kind)
        return alts

    def switch_handler(self, op: str, mode: str) -> None:
        """Make implementation ``mode`` (a kind) serve ``op`` from the next call on; calls in
        flight finish on the implementation they started with."""
        from .errors import InvalidArgument

        modes = self._alternatives.get(op)
        if modes is None or mode not in modes:
            have = ", ".join(modes) if modes else "none: it has no alternative implementation"
            raise InvalidArgument(f"op {op!r} has no {mode!r} implementation (have: {have})")
        self._handlers[op] = modes[mode]
        rt = self._runtime
        if rt is not None:
            rt.rebind(op, modes[mode])

    def batched_ops(self) -> dict[str, dict[str, int]]:
        """The batched ops and their declarations, as the hello's ``batched`` field says them."""
        return {name: {"max_size": h.batch[0], "max_wait_ms": h.batch[1]}
                for name, h in self.handlers.items() if h.batch is not None}

    def handler_kinds(self) -> dict[str, str]:
        return {name: h.kind for name, h in self.handlers.items()}

    # ---------------------------------------------------------------- built-in handlers

    @handler
    async def ping(self) -> str:
        return "pong"

    @handler
    async def get_info(self) -> dict:
        fw = self.get_framework_info()
        from . import __version__
        from .protocol import VERSIONS

        return {
            "framework": {"name": fw.get("name", ""), "version": fw.get("version", "")},
            "capabilities": list(fw.get("capabilities", ())),
            "handlers": self.handler_kinds(),
            "bridge": f"{type(self).__module__}:{type(self).__qualname__}",
            "worker_version": __version__,
            "protocol_versions": list(VERSIONS),
            "pid": os.getpid(),
            "python": sys.version.split()[0],
        }

    @handler
    async def get_stats(self) -> dict:
        rt = self._runtime
        if rt is None:
            return {}
        return rt.stats.snapshot()

    @handler
    async def health_check(self) -> dict:
        rt = self._runtime
        if rt is None:
            return {"status": "ok", "in_flight": 0, "abandoned": 0}
        return rt.stats.health()

    @handler
    async def list_handlers(self) -> dict:
        return self.handler_kinds()

    @handler
    def define_resource(self, id: str, kind: str, version: int, spec: dict | None = None,
                        state: bytes | None = None, is_global: bool = False) -> dict:
        """Build (or rebuild, for a new version) a resource from the host's definition."""
        cached = self._resources.get(id)
        if cached is not None and cached.version == version:
            return {"id": id, "version": version, "built": False}
        if kind == "options":  # a registry's free-form bridge options, for every bridge
            modes = (spec or {}).get("handler_modes") or {}
            for op, mode in modes.items():
                self.switch_handler(op, mode)
            obj = self.options = dict(spec or {})
        else:
            obj = self.build_resource(kind, id, spec or {}, state)
        self._resources[id] = Resource(id, kind, version, obj)
        return {"id": id, "version": version, "built": True}

    @handler
    def forget_resource(self, id: str) -> dict:
        return {"id": id, "forgotten": self._resources.pop(id, None) is not None}

    # Generic resource ops: the Go Adapter's Execute / Describe / List work with any bridge.
    @handler
    def execute(self, id: str, inputs: dict | None = None) -> Any:
        r = self._resources.get(id)
        if r is None:
            self.resource(id)  # raises NotFound
        return self.execute_resource(r.kind, id, r.obj, inputs or {})

    @handler
    def describe(self, id: str) -> dict:
        self.resource(id)
        r = self._resources[id]
        return {**self.describe_resource(r.kind, id, r.obj), "id": id, "kind": r.kind, "version": r.version}

    @handler
    def list_resources(self, kind: str | None = None) -> list[dict]:
        return [{"id": r.id, "kind": r.kind, "version": r.version} for r in self.resources(kind)]

    @handler
    async def set_handler_mode(self, op: str, mode: str) -> dict:
        """Switch which implementation serves ``op`` (see :func:`alternative`); runs on the
        event loop, so the switch is ordered with the requests around it."""
        self.switch_handler(op, mode)
        return {"op": op, "mode": mode}

    @handler
    async def handler_modes(self) -> dict:
        """Per op with alternatives: the active mode and the available ones."""
        return {op: {"active": self._handlers[op].kind, "available": sorted(modes)}
                for op, modes in self._alternatives.items()}

    @handler
    def cleanup(self) -> dict:
        """Release caches. Subclasses override (with or without ``@handler``)."""
        return {"gc_collected": gc.collect()}

    @handler
    async def shutdown(self, grace: int = 2000) -> dict:
        """Answer, then exit gracefully: in-flight calls get ``grace`` ms to finish."""
        if type(grace) is not int or grace < 0:
            from .errors import InvalidArgument

            raise InvalidArgument("grace must be a non-negative integer (milliseconds)")
        rt = self._runtime
        if rt is not None:
            rt.request_shutdown(grace, after_answer=True)
        return {"shutting_down": True, "grace": grace}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} handlers={sorted(self.handlers)}>"


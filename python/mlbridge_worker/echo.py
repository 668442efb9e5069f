"""EchoBridge: a bridge with no framework, for tests, benchmarks and demos.

``python -m mlbridge_worker --bridge mlbridge_worker.echo:EchoBridge``
"""

from __future__ import annotations

import asyncio
import builtins
import contextvars
import hashlib
import os
import sys
import threading
import time

from . import __version__
from .base_bridge import BaseBridge, alternative, handler
from .errors import BRIDGE_ERRORS, BridgeError, InvalidArgument
from .host import HostCallCancelled, host
from .runtime import current_request

#: tokens of sleep/count calls that were cancelled (or closed) before they finished
_cancelled_tokens: set[str] = set()
_cancelled_lock = threading.Lock()
#: memory held by alloc() (leak simulation)
_leak: list[bytearray] = []
#: processes started by spawn_children (kept so nothing reaps or collects them early)
_children: list[object] = []
#: set by _initialize_framework; visible to every handler through the request context
init_var: contextvars.ContextVar[str] = contextvars.ContextVar("echo_init", default="unset")


def _sleep_in_child(seconds: float) -> None:
    """A multiprocessing child's whole life (spawn_children)."""
    time.sleep(seconds)


async def _task_state(url: str) -> dict:
    """What code that needs a current task gets: each check's outcome, or its exception."""
    out: dict = {"task": asyncio.current_task() is not None}
    try:
        async with asyncio.timeout(5):
            await asyncio.sleep(0)
        out["asyncio_timeout"] = "ok"
    except Exception as e:  # noqa: BLE001 - reported to the test
        out["asyncio_timeout"] = f"{type(e).__name__}: {e}"
    try:
        import sniffio
    except ImportError:
        out["sniffio"] = None
    else:
        try:
            out["sniffio"] = sniffio.current_async_library()
        except Exception as e:  # noqa: BLE001
            out["sniffio"] = f"{type(e).__name__}: {e}"
    if url:
        import httpx

        try:
            async with httpx.AsyncClient() as client:
                out["http"] = (await client.get(url)).text
        except Exception as e:  # noqa: BLE001
            out["http"] = f"{type(e).__name__}: {e}"
    return out


def _record_cancel(token: str) -> None:
    if token:
        with _cancelled_lock:
            _cancelled_tokens.add(token)


def _trace_ids(op: str) -> dict:
    """The trace and span ids current here ({} when untraced), also logged at WARNING on the
    ``echo`` logger (the record carries them too)."""
    import logging

    from .tracing import current_ids

    ids = current_ids()
    logging.getLogger("echo").warning("trace ids of %s", op)
    return {"trace_id": ids[0], "span_id": ids[1]} if ids else {}


class KindOutcomeError(Exception):
    """Raised by the kind_* ops when asked to fail."""


def _outcome(outcome: str, token: str) -> bool:
    """The common step of the kind_* ops: True on "ok" (finish now), raise on "raise", and on
    "wait" mark the call started (False: the caller waits for its cancellation)."""
    if outcome == "ok":
        return True
    if outcome == "raise":
        raise KindOutcomeError(f"asked to fail ({token})")
    if outcome != "wait":
        raise InvalidArgument(f"outcome must be ok, raise or wait, not {outcome!r}")
    _record_cancel(f"started:{token}")
    return False


class EchoBridge(BaseBridge):
    framework_name = "echo"
    framework_version = __version__
    capabilities = ("echo",)

    def _initialize_framework(self) -> None:
        # A start that fails while a file exists: crash-loop tests switch it on and off.
        marker = os.environ.get("MLBRIDGE_ECHO_FAIL_START_IF")
        if marker and os.path.exists(marker):
            print(f"echo: refusing to start while {marker} exists", file=sys.stderr)
            sys.stderr.flush()
            os._exit(9)
        init_var.set("initialized")
        self.settings: dict = {}

    def build_resource(self, kind: str, id: str, spec: dict, state: bytes | None):
        if kind == "greeting":
            return str(spec.get("prefix", "hello"))
        if kind == "config":  # global: applied to the worker as a whole
            self.settings.update(spec)
            return dict(spec)
        return super().build_resource(kind, id, spec, state)

    def execute_resource(self, kind: str, id: str, obj, inputs: dict):
        if kind == "greeting":
            return f"{obj} {inputs.get('name', '')}"
        return super().execute_resource(kind, id, obj, inputs)

    def describe_resource(self, kind: str, id: str, obj) -> dict:
        return {"prefix": obj} if kind == "greeting" else {}

    @handler
    def greet(self, id: str, name: str) -> str:
        return f"{self.resource(id)} {name}"

    @handler
    async def get_setting(self, name: str) -> dict:
        return {"pid": os.getpid(), "value": self.settings.get(name)}

    @handler
    async def get_option(self, name: str):
        return self.options.get(name)

    @handler
    async def sleep_pid(self, seconds: float) -> int:
        await asyncio.sleep(seconds)
        return os.getpid()

    @handler
    async def sleep_echo(self, value=None, seconds: float = 0.0):
        await asyncio.sleep(seconds)
        return value

    # -- the cheapest call there is (the benchmark op)
    @handler
    async def noop(self):
        return None

    @handler
    async def echo(self, value=None):
        return value

    @handler
    def sync_echo(self, value=None):
        return value

    @handler
    async def labels(self, n: int = 2, keys: str = "int") -> dict:
        """{0: "label 0", 1: "label 1", ...}: a dict with int keys, as scikit-learn's class maps
        are (JSON, the serve API's format, has string keys only). ``keys``: "float" (0.0, 1.0...),
        "none" (one key, None), "clash" (0 and "0")."""
        if keys == "none":
            return {None: "label"}
        if keys == "clash":
            return {0: "int zero", "0": "str zero"}
        conv = float if keys == "float" else int
        return {conv(i): f"label {i}" for i in range(n)}

    @handler
    def add(self, a: int, b: int) -> int:
        if type(a) is not int or type(b) is not int:
            raise InvalidArgument(
                f"add needs two integers, got {type(a).__name__} and {type(b).__name__}"
            )
        return a + b

    @handler
    async def sleep(self, seconds: float, token: str = ""):
        try:
            await asyncio.sleep(seconds)
        except asyncio.CancelledError:
            _record_cancel(token)
            raise
        return seconds

    @handler
    def sync_sleep(self, seconds: float):
        time.sleep(seconds)
        return seconds

    # -- one op per handler kind, each able to succeed ("ok"), raise ("raise"), or wait until
    # cancelled ("wait") and record that the cancellation reached it: the kind × outcome tests
    @handler
    def kind_sync(self, outcome: str, token: str = ""):
        if _outcome(outcome, token):
            return "ok"
        while not current_request().cancelled:  # a thread polls; it cannot be interrupted
            time.sleep(0.005)
        _record_cancel(token)

    @handler
    async def kind_async(self, outcome: str, token: str = ""):
        if _outcome(outcome, token):
            return "ok"
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            _record_cancel(token)
            raise

    @handler
    def kind_sync_gen(self, outcome: str, token: str = ""):
        yield "first"
        if _outcome(outcome, token):
            return
        try:
            while True:
                time.sleep(0.005)
                yield "more"  # the runtime stops pulling items once the call is cancelled
        finally:
            _record_cancel(token)

    @handler
    async def kind_async_gen(self, outcome: str, token: str = ""):
        yield "first"
        if _outcome(outcome, token):
            return
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            _record_cancel(token)
            raise

    # -- an op in the middle of a sync→async migration: `lm_wait` stands for an LM call's
    # network wait. The sync original serves it until the switch (set_handler_mode, or the
    # handler_modes option) picks the async replacement; `mlbridge bench --scenario io-bound`
    # measures both.
    @handler
    def lm_wait(self, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    @alternative("lm_wait")
    async def lm_wait_async(self, seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    @handler
    def hang(self, token: str = ""):
        _record_cancel(f"started:{token}" if token else "")  # lets a test see the thread run
        threading.Event().wait()

    @handler
    async def hang_async(self):
        await asyncio.get_running_loop().create_future()

    @handler
    def wedge_gil(self, seconds: float):
        """Holds the GIL in C for ``seconds`` (libc sleep through ctypes.PyDLL, which keeps
        it): the event loop is wedged, as by a C extension that never releases the GIL."""
        import ctypes

        ctypes.PyDLL(None).usleep(int(seconds * 1_000_000))
        return "unwedged"

    @handler
    async def block_loop(self, seconds: float):
        """A blocking call inside an async def: the event loop stops for ``seconds``."""
        time.sleep(seconds)
        return "unblocked"

    @handler
    def fail(self, type: str = "ValueError", message: str = "boom"):
        exc = BRIDGE_ERRORS.get(type)
        if exc is None:
            exc = getattr(builtins, type, None)
            if not (isinstance(exc, builtins.type) and issubclass(exc, Exception)):
                raise InvalidArgument(f"fail: unknown exception type {type!r}")
        raise exc(message)

    @handler
    def print_stdout(self, text: str):
        print(text)
        os.write(1, text.encode())
        sys.stdout.write(text)
        sys.stdout.flush()
        return "ok"

    @handler
    def log_stderr(self, n: int = 0, prefix: str = "") -> int:
        """Write one stderr line of ``prefix`` padded with "x" to ``n`` bytes (the stderr
        forwarding tests); returns the bytes written, newline included."""
        line = prefix + "x" * max(0, n - len(prefix)) + "\n"
        sys.stderr.write(line)
        sys.stderr.flush()
        return len(line)

    # -- the trace context a handler runs in (pool_trace_test.go): the ids current in the
    # handler (those of the host's handler span, when the call is traced), and a log record
    # made there; wait / seconds hold the call until a cancel or a deadline ends it
    @handler
    async def trace_ids(self, suspend: bool = False, wait: bool = False) -> dict:
        ids = _trace_ids("trace_ids")
        if suspend:
            await asyncio.sleep(0)  # continues in a task
        if wait:
            await asyncio.get_running_loop().create_future()
        return ids

    @handler
    def sync_trace_ids(self, seconds: float = 0.0) -> dict:
        ids = _trace_ids("sync_trace_ids")
        time.sleep(seconds)
        return ids

    @handler
    async def trace_ids_gen(self):
        await asyncio.sleep(0)
        yield _trace_ids("trace_ids_gen")

    @handler
    def sync_trace_ids_gen(self):
        yield _trace_ids("sync_trace_ids_gen")

    @handler
    def log_record(self, level: str, msg: str, logger: str = "echo", exc: bool = False) -> bool:
        """Log ``msg`` through Python's ``logging`` at ``level`` (a name) on ``logger``, with a
        traceback if ``exc`` (the log forwarding tests); returns whether the level is enabled."""
        import logging

        lg = logging.getLogger(logger)
        lvl = logging.getLevelName(level.upper())
        if exc:
            try:
                raise ValueError("logged on purpose")
            except ValueError:
                lg.log(lvl, msg, exc_info=True)
        else:
            lg.log(lvl, msg)
        return lg.isEnabledFor(lvl)

    @handler
    def spawn_children(self, seconds: float = 60.0) -> dict[str, int]:
        """Start a subprocess and a multiprocessing child that sleep ``seconds``; their pids
        (the tests of what outlives a dead host)."""
        import multiprocessing  # here, not at import: the echo bridge starts fast
        import subprocess

        proc = subprocess.Popen(["sleep", str(seconds)])
        child = multiprocessing.Process(target=_sleep_in_child, args=(seconds,))
        child.start()
        _children.extend((proc, child))
        assert child.pid is not None
        return {"subprocess": proc.pid, "multiprocessing": child.pid}

    @handler
    async def unserializable(self):
        return object()

    @handler
    def numpy_values(self) -> dict:
        """numpy scalars and arrays as a handler returns them (tests their conversion)."""
        import numpy as np  # here: the echo bridge itself runs without numpy

        return {
            "f32": np.float32(1.5), "i64": np.int64(-(2**40)), "u8": np.uint8(255), "yes": np.bool_(True),
            "matrix": np.arange(6, dtype=np.float32).reshape(2, 3),
            "pixels": np.array([0, 128, 255], dtype=np.uint8),
            "mask": np.array([[True, False], [False, True]]),
            "ids": np.array([7, -7], dtype=">i4"),  # big-endian: sent little-endian
            "nested": [{"score": np.float64(0.25), "col": np.arange(4, dtype=np.int64)[::2]}],
        }

    @handler
    def echo_array(self, a, scale: float = 1.0, copy: bool = False):
        """Array ``a`` back, as numpy read it (a zero-copy view when it came in shared memory, and
        then sent back without a copy), a copy of it (``copy``: a new array, as most handlers
        return), or times ``scale`` (a new array too): the array round trip of
        ``mlbridge bench --scenario array``. Sync: numpy's work runs off the event loop."""
        from .arrays import from_wire

        x = from_wire(a, "a")
        if scale != 1.0:
            return x * scale
        return x.copy() if copy else x

    @handler
    async def array_info(self, a) -> dict:
        """How array ``a`` arrived: its sum, and whether numpy's view is of shared memory."""
        import mmap

        from .arrays import from_wire

        x = from_wire(a, "a")
        base = x
        while getattr(base, "base", None) is not None:
            base = base.base
        if isinstance(base, memoryview):
            base = base.obj
        return {"sum": float(x.sum()), "shared": isinstance(base, mmap.mmap), "writeable": bool(x.flags.writeable)}

    @handler
    async def new_array(self, n: int, value: float = 1.0, delay: float = 0.0, block: bool = False):
        """A float64 array of ``n`` elements, all ``value``, after ``delay`` seconds. ``block``
        sleeps holding the loop, so a cancel sent meanwhile is read only after the answer left
        (an answer the host no longer waits for)."""
        import numpy as np

        if block:
            time.sleep(delay)
        elif delay:
            await asyncio.sleep(delay)
        return np.full(n, value, dtype=np.float64)

    @handler
    async def new_arrays(self, count: int, n: int) -> list:
        """``count`` float64 arrays of ``n`` elements, the i-th all ``i``: a result with many
        large arrays (more than one frame may refer to in shared memory)."""
        import numpy as np

        return [np.full(n, float(i), dtype=np.float64) for i in range(count)]

    @handler
    async def close_segment_channel(self) -> bool:
        """Close this worker's end of the segment channel while it lives on (a broken worker):
        the host's next segment send fails with EPIPE."""
        shm = self._runtime.shm if self._runtime is not None else None
        if shm is None:
            return False
        shm.sock.close()
        return True

    @handler
    def os_resources(self) -> dict:
        """This worker's open file descriptors, and its mappings of shared array segments (Linux
        only: -1 elsewhere), for leak tests."""
        import gc

        gc.collect()
        d = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
        fds = len(os.listdir(d)) - 1  # less the one listdir itself opened
        maps = -1
        if os.path.exists("/proc/self/maps"):
            with open("/proc/self/maps") as f:
                maps = sum("mlbridge-array" in line for line in f)
        return {"fds": fds, "maps": maps}

    @handler
    async def big(self, n: int):
        return bytes(n)

    @handler
    async def big_chunks(self, n: int, size: int):
        """``n`` chunks of ``size`` zero bytes: a stream of values over a transport's limit."""
        for _ in range(n):
            yield bytes(size)

    @handler
    async def count(self, n: int, delay: float = 0.0, token: str = "", fail_at: int = -1):
        finished = False
        try:
            for i in range(n):
                if i == fail_at:
                    raise RuntimeError(f"count failed at {i}")
                if i and delay:
                    await asyncio.sleep(delay)
                yield i
            finished = True
        finally:
            if not finished:
                _record_cancel(token)

    @handler
    def sync_count(self, n: int, delay: float = 0.0):
        for i in range(n):
            if i and delay:
                time.sleep(delay)
            yield i

    @handler
    async def cancelled_tokens(self):
        with _cancelled_lock:
            return sorted(_cancelled_tokens)

    @handler
    def alloc(self, mb: int):
        if type(mb) is not int or mb < 0:
            raise InvalidArgument("mb must be a non-negative integer")
        _leak.append(bytearray(b"\x5a") * (mb * 1024 * 1024))  # written, so resident
        from .stats import rss_bytes

        return rss_bytes()

    @handler
    def exit(self, code: int = 1, message: str = ""):
        if message:
            print(message, file=sys.stderr)
        sys.stderr.flush()
        os._exit(code)

    @handler
    def getenv(self, names: list[str]) -> dict[str, str]:
        """The worker's view of the named environment variables (absent ones omitted)."""
        return {name: os.environ[name] for name in names if name in os.environ}

    @handler
    async def pid(self):
        return os.getpid()

    @handler
    async def ctxvar(self):
        """Context seen by an async handler: the request and what initialization set."""
        req = current_request()
        return {"init": init_var.get(), "id": req.id if req else None, "op": req.op if req else None}

    @handler
    def sync_ctxvar(self):
        """Same from a thread-pool handler: contextvars flow into sync handlers."""
        req = current_request()
        return {
            "init": init_var.get(),
            "id": req.id if req else None,
            "op": req.op if req else None,
            "thread": threading.current_thread().name,
        }

    # --- host calls (host.py): ops that call Go functions the test host registered ---------

    @handler
    async def host_call(self, fn: str, args: dict | None = None, token: str = ""):
        """``await host.call(fn, args)``; a cancelled call records ``hcall_cancelled:<token>``
        (the task is cancelled, or the host's answer, when it comes first, says cancelled)."""
        try:
            return await host.call(fn, args)
        except (asyncio.CancelledError, HostCallCancelled):
            _record_cancel(f"hcall_cancelled:{token}")
            raise

    @handler
    async def host_call_chain(self, fn: str, n: int = 2):
        """n host calls one after the other (each with ``{"i": k}``), then their results."""
        return [await host.call(fn, {"i": k}) for k in range(n)]

    @handler
    async def host_call_shrug(self, fn: str, token: str = ""):
        """A handler that swallows the cancel of its host call and goes on (records
        ``shrugged:<token>`` once it has awaited something else)."""
        try:
            return await host.call(fn)
        except asyncio.CancelledError:
            await asyncio.sleep(0.01)
            _record_cancel(f"shrugged:{token}")
            return "late"

    @handler
    async def host_call_then_task_state(self, fn: str, url: str = ""):
        """A host call, then what task-dependent code sees after it: a current task,
        ``asyncio.timeout``, sniffio's answer (None when not installed) and, given a ``url``,
        an httpx GET of it (anyio underneath, as the OpenAI and LiteLLM clients use)."""
        await host.call(fn)
        return await _task_state(url)

    @handler
    async def first_step_task_state(self, url: str = "", yield_first: bool = False):
        """The same checks in the eager first step (no await before them), or, with
        ``yield_first``, after ``await asyncio.sleep(0)`` has moved the handler into its task."""
        if yield_first:
            await asyncio.sleep(0)
        return await _task_state(url)

    @handler
    def host_call_sync(self, fn: str, args: dict | None = None, token: str = ""):
        """``host.call_sync(fn, args)`` from a thread; a cancelled call records its token too."""
        try:
            return host.call_sync(fn, args)
        except HostCallCancelled:
            _record_cancel(f"hcall_cancelled:{token}")
            raise

    @handler
    async def host_call_catch(self, fn: str, args: dict | None = None):
        """The exception a host call raised, as data: class, category, wire type, message."""
        try:
            return {"ok": await host.call(fn, args)}
        except BridgeError as e:
            return {"class": type(e).__name__, "category": e.category, "type": e.type_name, "message": e.message}

    @handler
    async def host_call_big(self, fn: str, size: int, result_size: int = 0) -> dict:
        """``host.call(fn, {"data": ..., "result_size": result_size})`` with ``size`` bytes of a
        pattern (byte i is ``i % 251``), made here; the result's ``data`` as its length and
        sha256 (checked without sending it back), or the exception as data (class, category,
        message): host-call values over a transport's limit."""
        data = (bytes(range(251)) * (size // 251 + 1))[:size]
        try:
            res = await host.call(fn, {"data": data, "result_size": result_size})
        except BridgeError as e:
            return {"class": type(e).__name__, "category": e.category, "message": e.message}
        out = res["data"]
        return {"len": len(out), "sha256": hashlib.sha256(out).hexdigest()}

    @handler
    async def host_call_give_up(self, fn: str, seconds: float) -> str:
        """A handler that stops waiting for its host call after ``seconds`` and returns: the
        host sees the call cancelled while the request goes on."""
        try:
            await asyncio.wait_for(host.call(fn), seconds)
        except TimeoutError:
            return "gave up"
        return "answered"

    @handler
    async def host_call_numpy(self, fn: str):
        """A host call whose arguments hold numpy values: an array, a scalar, an array in a list."""
        import numpy as np

        return await host.call(fn, {"a": np.arange(3, dtype=np.float64), "n": np.int64(2),
                                    "more": [np.ones(2, dtype=np.int32)]})

    @handler
    async def host_call_many(self, fn: str, n: int, args: dict | None = None) -> list:
        """n concurrent host calls from one handler."""
        return list(await asyncio.gather(*(host.call(fn, {**(args or {}), "i": i}) for i in range(n))))

    @handler
    async def host_call_request(self, fn: str, args: dict | None = None):
        """The same call through ``current_request().host``."""
        return await current_request().host.call(fn, args)

    @handler
    async def host_funcs(self) -> dict:
        return host.functions()

    # -- fault injection: what user code may do to the process it runs in
    @handler
    async def fork_and_return(self, delay: float = 0.2) -> dict:
        """``os.fork()`` in the event loop's thread, returning in both processes (the copy's
        answer comes first: the original waits ``delay``). What each process saw."""
        parent = os.getpid()
        child = os.fork()
        if child:
            await asyncio.sleep(delay)
        return {"pid": os.getpid(), "parent": parent, "child": child}

    @handler
    def sync_fork_and_return(self, delay: float = 0.2) -> dict:
        """``fork_and_return`` in a sync handler: the fork runs on a thread of the pool."""
        parent = os.getpid()
        child = os.fork()
        if child:
            time.sleep(delay)
        return {"pid": os.getpid(), "parent": parent, "child": child}


class SerialEchoBridge(EchoBridge):
    """EchoBridge that declares it runs one call at a time (tests the host's use of capacity)."""

    capacity = 1

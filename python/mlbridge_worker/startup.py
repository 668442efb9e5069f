"""Starting a worker: the event loop choice, the handshake, loading the bridge, and watching the
parent process."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import importlib
import inspect
import logging
import os
import signal
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import __version__, tracing
from .base_bridge import BaseBridge
from .log import log, yield_to_user_config
from .protocol import DEFAULT_MAX_FRAME, HOST_TO_WORKER, PARENT_PID_ENV, VERSIONS, ProtocolError, validate
from .runtime import EXIT_OK, EXIT_START_FAILED, Runtime
from .shm import SharedMemory

LOOP_ENV = "MLBRIDGE_LOOP"
LOOP_NAME = "asyncio"  # set by loop_factory
PARENT_POLL_S = 0.5


def load_bridge(spec: str) -> BaseBridge:
    mod_name, sep, qual = spec.partition(":")
    if not sep or not mod_name or not qual:
        raise ValueError(f"--bridge must look like module:Class, not {spec!r}")
    try:
        obj: Any = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(_import_hint(mod_name, e), name=e.name, path=e.path) from e
    for part in qual.split("."):
        obj = getattr(obj, part)
    if not (inspect.isclass(obj) and issubclass(obj, BaseBridge)):
        raise TypeError(f"{spec} is not a BaseBridge subclass")
    return obj()


def _import_hint(mod_name: str, e: ModuleNotFoundError) -> str:
    """The message of a bridge module that cannot be imported: where Python looked, and how to
    point it at the bridge's own module (or which dependency to install)."""
    if e.name and "." in e.name and mod_name.startswith(e.name):
        parent, _, last = e.name.rpartition(".")
        where = getattr(sys.modules.get(parent), "__path__", None)
        return f"{e}: package {parent!r} (at {list(where or [])}) has no module {last!r}"
    if e.name and (mod_name == e.name or mod_name.startswith(e.name + ".")):
        return (
            f"{e}; searched sys.path {sys.path} (working directory {os.getcwd()}). Put the directory "
            f"that holds {mod_name.split('.')[0]!r} on the worker's path: Config.PythonPath in Go, "
            f"pythonpath: in mlbridge.yaml (or run the worker in it: Config.Dir, dir:)"
        )
    return f"{e}, imported by the bridge module {mod_name!r}; install it in {sys.executable}"


async def main(bridge_spec: str, proto_in: int, proto_out: int, threads: int = 8, max_frame: int = DEFAULT_MAX_FRAME,
               spin_us: int = 0, shm: SharedMemory | None = None) -> None:
    rt = Runtime(proto_in, proto_out, threads=threads, max_frame=max_frame, spin_us=spin_us, shm=shm)
    await rt.connect()
    os.register_at_fork(after_in_child=rt.detach_forked_copy)

    parent = os.environ.get(PARENT_PID_ENV)
    if parent:
        try:
            asyncio.get_running_loop().create_task(watch_parent(rt, int(parent)))
        except ValueError:
            log(f"ignoring {PARENT_PID_ENV}={parent!r}: not a pid", logging.WARNING)

    # 1. the host's hello
    await rt._hello_waiter
    if not rt._early:  # EOF before any frame
        log("end of input before the host's hello; exiting")
        rt.hard_exit(EXIT_OK)
    hello = rt._early.pop(0)
    try:
        t = validate(hello, HOST_TO_WORKER)
        if t != "hello":
            raise ProtocolError("unknown_type", f"expected hello as the first frame, got {t!r}")
    except ProtocolError as e:
        await rt.fail_start("protocol", "ProtocolError", str(e))
        return
    common = set(hello["versions"]) & set(VERSIONS)
    if not common:
        await rt.fail_start(
            "protocol", "ProtocolError",
            f"no common protocol version: host speaks {hello['versions']}, worker speaks {list(VERSIONS)}",
        )
        return
    version = max(common)
    if hello.get("max_frame") is not None:
        rt.out_max = hello["max_frame"]
    rt.host_funcs = hello.get("host_funcs") or {}

    # 2. the bridge (may take seconds: framework imports)
    try:
        bridge = load_bridge(bridge_spec)
        r = bridge._initialize_framework()
        if inspect.isawaitable(r):
            await r
        info = bridge.get_framework_info()
        kinds = bridge.handler_kinds()
        yield_to_user_config()  # the bridge's own logging setup, if any, wins
        tracing.setup(bridge_spec)  # OTLP export when OTEL_* asks, unless the bridge set a provider
    except BaseException as e:
        await rt.fail_start(
            "invalid_configuration", type(e).__name__,
            f"cannot load bridge {bridge_spec}: {e}", "".join(traceback.format_exception(e)),
        )
        return

    # Everything alive now (the framework's modules and objects) lives as long as the process:
    # move it out of the collector's generations so full collections stop rescanning it.
    gc.collect()
    gc.freeze()

    rt.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mlbridge-sync")
    rt.attach(bridge)
    from .dual import loop_var

    loop_var.set(asyncio.get_running_loop())  # dual functions find the loop through the context
    rt._base_ctx = contextvars.copy_context()  # what _initialize_framework set is visible to all

    # 3. our hello
    caps = ["cancel", "deadline", "streaming", "ping"]
    if rt.shm is not None:
        caps.append("shm")  # large arrays through shared memory, both ways (shm.py)
    for c in info.get("capabilities", ()):
        if c not in caps:
            caps.append(c)
    rt.send({
        "t": "hello",
        "version": version,
        "pid": os.getpid(),
        "framework": {"name": str(info.get("name", "")), "version": str(info.get("version", ""))},
        "capabilities": caps,
        "handlers": kinds,
        "max_frame": max_frame,
        "runtime": {
            "python": sys.version.split()[0],
            "implementation": sys.implementation.name,
            "threads": threads,
            "loop": LOOP_NAME,
            "spin_us": spin_us,
            "worker": __version__,
            "bridge": bridge_spec,
            # calls this bridge can usefully run at once; the host's default in-flight limit
            "capacity": bridge.capacity,
        },
        # only when there are some: the hello of a bridge without batched ops is unchanged
        **({"batched": batched} if (batched := bridge.batched_ops()) else {}),
    })

    # 4. serve: whatever arrived early, then everything from the read callback
    rt.ready = True
    early, rt._early = rt._early, []
    for msg in early:
        if msg.get("t") == "req":
            rt.on_req(msg)
        else:
            rt.on_other(msg)
    if rt._eof:  # input ended during the handshake: serve what came, then exit
        rt.request_shutdown(0)
    await asyncio.Event().wait()  # the process ends through hard_exit


def loop_factory():
    """The event loop implementation: uvloop when installed (its per-event overhead is a few
    times lower than the pure-Python selector loop's, which dominates a small round trip),
    else asyncio's default. ``MLBRIDGE_LOOP=asyncio`` forces the default, ``=uvloop`` requires
    uvloop."""
    global LOOP_NAME
    choice = os.environ.get(LOOP_ENV, "auto").strip().lower() or "auto"
    if choice not in ("auto", "uvloop", "asyncio"):
        log(f"ignoring {LOOP_ENV}={choice!r} (want auto, uvloop or asyncio)", logging.WARNING)
        choice = "auto"
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise
        else:
            LOOP_NAME = "uvloop"
            return uvloop.new_event_loop
    LOOP_NAME = "asyncio"
    return None


def run(bridge_spec: str, proto_in: int, proto_out: int, threads: int = 8, max_frame: int = DEFAULT_MAX_FRAME,
        spin_us: int = 0, shm: SharedMemory | None = None) -> None:
    # SIGINT ends a worker as SIGTERM and SIGHUP do. Left to Python, asyncio.Runner would turn
    # it into a cancellation of every task: the host would read "cancelled" answers to calls
    # nobody cancelled (and never retry them) from a worker that is exiting anyway.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(main(bridge_spec, proto_in, proto_out, threads, max_frame, spin_us, shm))
    except BaseException as e:
        log("runtime failed", logging.ERROR, "".join(traceback.format_exception(e)).rstrip("\n"))
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except Exception:
                pass
        os._exit(EXIT_START_FAILED)
    os._exit(EXIT_OK)


async def watch_parent(rt: Runtime, expected: int) -> None:
    """Shut down when the host process is gone, even if our input never reaches EOF."""
    start_ppid = os.getppid()
    wrapped = start_ppid != expected  # started through a wrapper (uv run, a shell...)
    while True:
        if wrapped:
            gone = os.getppid() != start_ppid or not _pid_alive(expected)
        else:
            gone = os.getppid() != expected
        if gone:
            log(f"parent process {expected} is gone; exiting")
            rt.request_shutdown(0)
            return
        await asyncio.sleep(PARENT_POLL_S)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

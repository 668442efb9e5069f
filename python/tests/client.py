"""A small synchronous client speaking the mlbridge protocol to a worker subprocess (tests only).

A reader thread decodes frames from the worker's stdout into a queue; another collects stderr.
``recv``/``wait_for`` block on the queue with a timeout, so tests wait on real frames, never on
sleeps.
"""

from __future__ import annotations

import os
import queue
import struct
import subprocess
import sys
import threading
import time

from mlbridge_worker.protocol import (
    MAGIC,
    WORKER_TO_HOST,
    FrameDecoder,
    ProtocolError,
    encode_frame,
    validate,
)

ECHO = "mlbridge_worker.echo:EchoBridge"
TIMEOUT = 10.0


def worker_env(**extra) -> dict:
    env = dict(os.environ)
    env["MLBRIDGE_MAGIC"] = MAGIC
    env.pop("MLBRIDGE_PARENT_PID", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Worker:
    def __init__(self, bridge: str = ECHO, *args: str, env: dict | None = None, threads: int | None = None,
                 max_frame: int | None = None, cmd: list[str] | None = None, cwd: str | None = None):
        if cmd is None:
            cmd = [sys.executable, "-m", "mlbridge_worker", "--bridge", bridge, *args]
            if threads is not None:
                cmd += ["--threads", str(threads)]
            if max_frame is not None:
                cmd += ["--max-frame", str(max_frame)]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=env if env is not None else worker_env(), bufsize=0, cwd=cwd,
        )
        self.frames: queue.Queue = queue.Queue()
        self._stderr = bytearray()
        self._stderr_cond = threading.Condition()
        self.decode_error: ProtocolError | None = None
        self.stdout_closed = threading.Event()
        self._pending: dict = {}  # frames received for other ids while waiting
        self._next_id = 1
        self._rt = threading.Thread(target=self._read_stdout, daemon=True)
        self._rt.start()
        self._et = threading.Thread(target=self._read_stderr, daemon=True)
        self._et.start()

    # ------------------------------------------------------------- io threads

    def _read_stdout(self) -> None:
        dec = FrameDecoder()
        fd = self.proc.stdout.fileno()
        try:
            while True:
                data = os.read(fd, 1 << 16)
                if not data:
                    dec.close()
                    break
                for m in dec.feed(data):
                    validate(m, WORKER_TO_HOST)  # everything the worker writes must be valid
                    self.frames.put(m)
        except ProtocolError as e:
            self.decode_error = e
        finally:
            self.stdout_closed.set()
            self.frames.put(None)

    def _read_stderr(self) -> None:
        fd = self.proc.stderr.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            with self._stderr_cond:
                if data:
                    self._stderr += data
                self._stderr_cond.notify_all()
            if not data:
                return

    @property
    def stderr(self) -> str:
        with self._stderr_cond:
            return self._stderr.decode("utf-8", "replace")

    def wait_stderr(self, text: str, count: int = 1, timeout: float = TIMEOUT) -> str:
        """Block until ``text`` appeared ``count`` times on the worker's stderr."""
        needle = text.encode()
        with self._stderr_cond:
            ok = self._stderr_cond.wait_for(lambda: self._stderr.count(needle) >= count, timeout)
            got = self._stderr.decode("utf-8", "replace")
        assert ok, f"{text!r} x{count} not on stderr within {timeout}s; stderr:\n{got}"
        return got

    # ------------------------------------------------------------- frames

    def send(self, msg: dict) -> None:
        self.send_raw(encode_frame(msg))

    def send_raw(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def recv(self, timeout: float = TIMEOUT) -> dict | None:
        """The next frame not yet consumed, or None once stdout closed."""
        try:
            m = self.frames.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no frame in {timeout}s; stderr:\n{self.stderr}") from None
        if m is None:
            self.frames.put(None)  # stay closed
            if self.decode_error:
                raise self.decode_error
        return m

    def hello(self, versions=(1,), max_frame: int | None = None) -> dict:
        msg = {"t": "hello", "versions": list(versions)}
        if max_frame is not None:
            msg["max_frame"] = max_frame
        self.send(msg)
        h = self.recv()
        assert h is not None, f"worker closed stdout before hello; stderr:\n{self.stderr}"
        assert h["t"] == "hello", h
        self.info = h
        return h

    def new_id(self) -> int:
        i = self._next_id
        self._next_id += 1
        return i

    def request(self, op: str, args: dict | None = None, *, stream: bool = False, deadline_ms: float | None = None,
                id: int | None = None) -> int:
        if id is None:
            id = self.new_id()
        msg: dict = {"t": "req", "id": id, "op": op}
        if args is not None:
            msg["args"] = args
        if stream:
            msg["stream"] = True
        if deadline_ms is not None:
            msg["deadline"] = int(time.time() * 1000 + deadline_ms)
        self.send(msg)
        return id

    def next_for(self, id: int, timeout: float = TIMEOUT) -> dict:
        """The next frame carrying ``id`` (frames for other ids are kept for later)."""
        q = self._pending.get(id)
        if q:
            return q.pop(0)
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no frame for id {id} in {timeout}s; stderr:\n{self.stderr}")
            m = self.recv(left)
            if m is None:
                raise EOFError(f"worker closed stdout while waiting for id {id}; stderr:\n{self.stderr}")
            if m.get("id") == id and m["t"] in ("res", "bres", "chunk", "end"):
                return m
            self._pending.setdefault(m.get("id"), []).append(m)

    def call(self, op: str, args: dict | None = None, **kw) -> dict:
        """Send a unary request and return its ``res`` frame."""
        timeout = kw.pop("timeout", TIMEOUT)
        id = self.request(op, args, **kw)
        m = self.next_for(id, timeout)
        assert m["t"] == "res", m
        return m

    def ok(self, op: str, args: dict | None = None, **kw):
        m = self.call(op, args, **kw)
        assert m["ok"], m
        return m.get("result")

    def stream(self, op: str, args: dict | None = None, **kw) -> tuple[list, dict]:
        """Run a streaming request: (chunk data list, terminal frame)."""
        timeout = kw.pop("timeout", TIMEOUT)
        id = self.request(op, args, stream=True, **kw)
        items = []
        while True:
            m = self.next_for(id, timeout)
            if m["t"] == "chunk":
                items.append(m["data"])
            else:
                return items, m

    # ------------------------------------------------------------- process

    def close_stdin(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def wait(self, timeout: float = TIMEOUT) -> int:
        """Exit code; afterwards ``stderr`` is complete (the pipe reached EOF)."""
        code = self.proc.wait(timeout)
        self._et.join(timeout)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        # A reader thread reads by fd number: closing its pipe while it may still call
        # os.read would let it read whatever file gets that number next (the next worker's
        # stdout, stealing its hello). Close a pipe only once its reader has seen the end; one
        # that does not end (a grandchild holds the pipe) is left open rather than reused.
        for f, reader in ((self.proc.stdout, self._rt), (self.proc.stderr, self._et)):
            reader.join(5)
            if not reader.is_alive():
                try:
                    f.close()
                except OSError:
                    pass

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


def frame_header(n: int) -> bytes:
    return struct.pack(">I", n)

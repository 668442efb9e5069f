"""DSPy execution through one worker, sync against async implementation of the same op.

Run: .venv/bin/python python/benchmarks/dspy_modes.py [--calls N] [--remote-calls M]
Two loads, each mode twice, alternating (the machine is noisy); one JSON line per measurement.
- "dummy": Predict on DSPy's DummyLM, so the figures are the bridge's and DSPy's own cost with
  no model time; one call at a time, then 64 in flight.
- "remote": Predict on DSPy's real OpenAI-compatible client against a local HTTP server that
  answers after 100 ms (a provider's latency), 64 calls in flight. This is the load async is for.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
from client import Worker  # noqa: E402  (the tests' protocol client: a real worker process)
from openai_stub import serving  # noqa: E402  (a local HTTP server speaking the provider's API)

DSPY = "mlbridge_worker.frameworks.dspy_bridge:DSPyBridge"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--remote-calls", type=int, default=400)
    a = p.parse_args()
    dummy(a.calls)
    remote(a.remote_calls)


def in_flight(w: Worker, op: str, args: dict, n: int, window: int) -> float:
    """Calls per second with `window` calls kept in flight."""
    pending: list[int] = []
    sent = done = 0
    t0 = time.perf_counter()
    while done < n:
        while sent < n and len(pending) < window:
            pending.append(w.request(op, args))
            sent += 1
        reply = w.next_for(pending.pop(0))
        assert reply["ok"], reply
        done += 1
    return n / (time.perf_counter() - t0)


def remote(n: int) -> None:
    with serving("[[ ## answer ## ]]\nParis\n\n[[ ## completed ## ]]") as provider, Worker(DSPY) as w:
        provider.delay = 0.1
        w.hello()
        w.ok("define_resource", {"id": "lm", "kind": "lm", "version": 1, "is_global": True, "spec": {
            "provider": "openai_compatible", "model": "test-model", "base_url": provider.url,
            "adapter": "chat", "num_retries": 0}})
        w.ok("define_resource", {"id": "p", "kind": "program", "version": 1, "spec": {"signature": "question -> answer"}})
        args = {"program_id": "p", "inputs": {"question": "capital of France?"}}
        for mode in ("sync", "async", "sync", "async"):
            w.ok("set_handler_mode", {"op": "execute_program", "mode": mode})
            rate = in_flight(w, "execute_program", args, n, 64)
            print(json.dumps({"load": "remote", "mode": mode, "in_flight": 64, "provider_delay_ms": 100,
                              "calls_per_s": round(rate, 1)}))


def dummy(n: int) -> None:
    with Worker(DSPY) as w:
        w.hello()
        w.ok("define_resource", {"id": "lm", "kind": "lm", "version": 1, "is_global": True,
                                 "spec": {"provider": "dummy", "answers": [{"answer": "Paris"}] * (8 * n + 400)}})
        w.ok("define_resource", {"id": "p", "kind": "program", "version": 1, "spec": {"signature": "question -> answer"}})
        args = {"program_id": "p", "inputs": {"question": "capital of France?"}}
        for mode in ("sync", "async", "sync", "async"):
            w.ok("set_handler_mode", {"op": "execute_program", "mode": mode})
            for _ in range(100):  # warm-up
                w.ok("execute_program", args)
            lat = []
            t0 = time.perf_counter()
            for _ in range(n):
                t = time.perf_counter()
                w.ok("execute_program", args)
                lat.append(time.perf_counter() - t)
            total = time.perf_counter() - t0
            lat.sort()
            print(json.dumps({"load": "dummy", "mode": mode, "in_flight": 1, "calls_per_s": round(n / total),
                              "p50_ms": round(lat[n // 2] * 1e3, 3), "p99_ms": round(lat[int(n * 0.99)] * 1e3, 3)}))
            rate = in_flight(w, "execute_program", args, n, 64)
            print(json.dumps({"load": "dummy", "mode": mode, "in_flight": 64, "calls_per_s": round(rate)}))

if __name__ == "__main__":
    main()

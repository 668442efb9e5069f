"""Cost of the argument check (argcheck.py) on the worker's hot path, in process, no pipes:
ns per on_data(req frame) -> eager async handler -> result frame written, for one handler with
annotations and its twin without (same body), alternating rounds so machine noise hits both.

    .venv/bin/python python/benchmarks/argcheck.py [--n 100000] [--rounds 7]

Also runs on a tree without argcheck (PYTHONPATH=<old tree>/python): there the typed handler is
not checked, so typed - untyped is the check's cost only on a tree that has it.
"""

from __future__ import annotations

import argparse
import contextvars
import gc
import time

from mlbridge_worker import BaseBridge, handler
from mlbridge_worker import runtime as R
from mlbridge_worker.protocol import encode_frame


class Bench(BaseBridge):
    def _initialize_framework(self) -> None:
        pass

    @handler
    async def noop(self):
        return None

    @handler
    async def typed(self, text: str, n: int, x: float, tags: list[str], opts: dict[str, float] | None = None):
        return None

    @handler
    async def untyped(self, text, n, x, tags, opts=None):
        return None

    @handler
    async def scalars_typed(self, text: str, n: int, x: float):
        return None

    @handler
    async def scalars_untyped(self, text, n, x):
        return None

    @handler
    async def floats_typed(self, values: list[float]):
        return None

    @handler
    async def floats_untyped(self, values):
        return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()

    rt = R.Runtime(0, 1)
    rt.attach(Bench())
    rt._base_ctx = contextvars.copy_context()
    rt.ready = True
    rt.write = len  # a cheap C sink
    few = {"text": "hello", "n": 3, "x": 1.5, "tags": ["a", "b", "c"], "opts": {"t": 0.5}}
    scalars = {"text": "hello", "n": 3, "x": 1.5}
    big = {"values": [float(i) for i in range(10_000)]}
    frames = {
        "noop": (encode_frame({"t": "req", "id": 1, "op": "noop"}), a.n),
        "typed": (encode_frame({"t": "req", "id": 1, "op": "typed", "args": few}), a.n),
        "untyped": (encode_frame({"t": "req", "id": 1, "op": "untyped", "args": few}), a.n),
        "scalars_typed": (encode_frame({"t": "req", "id": 1, "op": "scalars_typed", "args": scalars}), a.n),
        "scalars_untyped": (encode_frame({"t": "req", "id": 1, "op": "scalars_untyped", "args": scalars}), a.n),
        "floats10k_typed": (encode_frame({"t": "req", "id": 1, "op": "floats_typed", "args": big}), a.n // 200),
        "floats10k_untyped": (encode_frame({"t": "req", "id": 1, "op": "floats_untyped", "args": big}), a.n // 200),
    }
    on_data = rt.on_data
    gc.collect()
    gc.freeze()
    best = {k: float("inf") for k in frames}
    for _ in range(a.rounds):
        for name, (frame, n) in frames.items():
            for _ in range(min(n, 300)):
                on_data(frame)
            t0 = time.perf_counter_ns()
            for _ in range(n):
                on_data(frame)
            best[name] = min(best[name], (time.perf_counter_ns() - t0) / n)
    print(" ".join(f"{k}={v:.0f}ns" for k, v in best.items()))
    print(f"check of 5 args: {best['typed'] - best['untyped']:+.0f} ns/call; "
          f"of 3 scalars: {best['scalars_typed'] - best['scalars_untyped']:+.0f} ns/call; "
          f"of 10k floats: {(best['floats10k_typed'] - best['floats10k_untyped']) / 10_000:+.1f} ns/element "
          f"(decoding them: {best['floats10k_untyped'] / 10_000:.1f} ns/element)   [{R.__file__}]")


if __name__ == "__main__":
    main()

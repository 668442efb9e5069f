"""In-process hot-path cost of the worker, no pipes: ns per on_data(req frame) -> eager start
of the async handler -> result frame written. Run: .venv/bin/python python/benchmarks/hotpath.py
Compare two versions by running it on each, alternating; single runs vary ±15%."""
import contextvars, gc, sys, time
from mlbridge_worker import runtime as R
from mlbridge_worker.echo import EchoBridge
from mlbridge_worker.protocol import encode_frame

rt = R.Runtime(0, 1)
b = EchoBridge()
b._initialize_framework()
rt.attach(b)
rt._base_ctx = contextvars.copy_context()
rt.ready = True
rt.write = len  # cheap C sink
frame = encode_frame({"t": "req", "id": 1, "op": "noop"})
frame_args = encode_frame({"t": "req", "id": 1, "op": "echo", "args": {"value": 5}}) if "echo" in rt.table else None
on_data = rt.on_data
gc.collect(); gc.freeze()
N = 200_000
best = {}
for name, f in (("noop", frame), ("echo", frame_args)):
    if f is None:
        continue
    for _ in range(300): on_data(f)
    ts = []
    for _ in range(7):
        t0 = time.perf_counter_ns()
        for _ in range(N):
            on_data(f)
        ts.append((time.perf_counter_ns() - t0) / N)
    best[name] = min(ts)
print(" ".join(f"{k}={v:.0f}ns" for k, v in best.items()), R.__file__)

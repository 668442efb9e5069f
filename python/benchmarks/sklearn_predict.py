"""In-process baseline of `go test -bench BenchmarkPredict10kx64 ./sklearn`: Ridge.predict on a
10,000 x 64 float64 array (5.1 MB), in MB/s of input. Run: .venv/bin/python python/benchmarks/sklearn_predict.py"""

import json
import time

import numpy as np
from sklearn.linear_model import Ridge

rng = np.random.default_rng(0)
x = rng.standard_normal((10_000, 64))
model = Ridge().fit(x, np.zeros(10_000))
for _ in range(20):
    model.predict(x)
n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < 3:
    model.predict(x)
    n += 1
dt = (time.perf_counter() - t0) / n
print(json.dumps({"predict_ms": round(dt * 1e3, 3), "mb_per_s": round(x.nbytes / dt / 1e6, 1)}))

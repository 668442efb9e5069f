"""Rough sequential round-trip rate: worker runtime (``noop``) vs the bare floor echo.

Targets: the floor echo; the runtime on its default loop (uvloop when installed); the runtime
with ``--spin-us 50``; the runtime on asyncio's own loop (MLBRIDGE_LOOP=asyncio).

    /work/main/.venv/bin/python python/benchmarks/roundtrip.py [--n 20000] [--repeat 3]

The client is the same for both targets: it writes one pre-encoded ``req`` frame, blocks until
one whole frame comes back, and does not decode it. (The Go benchmark is the reference; this is
a quick check from Python.)
"""

import argparse
import os
import struct
import subprocess
import sys
import time

import msgpack

from mlbridge_worker.protocol import MAGIC, encode_frame


def read_frame(fd: int, buf: bytearray) -> None:
    while len(buf) < 4:
        d = os.read(fd, 65536)
        if not d:
            raise EOFError
        buf += d
    (n,) = struct.unpack_from(">I", buf, 0)
    while len(buf) < 4 + n:
        d = os.read(fd, 65536)
        if not d:
            raise EOFError
        buf += d
    del buf[: 4 + n]


def cpu_s(pid: int) -> float:
    """user+system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(cmd: list[str], n: int, handshake: bool, inflight: int, cpu: list | None = None) -> float:
    env = dict(os.environ, MLBRIDGE_MAGIC=MAGIC)
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, bufsize=0)
    wfd, rfd = p.stdin.fileno(), p.stdout.fileno()
    buf = bytearray()
    if handshake:
        os.write(wfd, encode_frame({"t": "hello", "versions": [1]}))
        read_frame(rfd, buf)
    frame = encode_frame({"t": "req", "id": 1, "op": "noop"})
    for _ in range(min(1000, n)):  # warm up
        os.write(wfd, frame)
        read_frame(rfd, buf)
    c0 = cpu_s(p.pid)
    t0 = time.perf_counter()
    if inflight <= 1:
        for _ in range(n):
            os.write(wfd, frame)
            read_frame(rfd, buf)
    else:
        frames = [encode_frame({"t": "req", "id": i, "op": "noop"}) for i in range(inflight)]
        batch = b"".join(frames)
        for _ in range(n // inflight):
            os.write(wfd, batch)
            for _ in range(inflight):
                read_frame(rfd, buf)
    dt = time.perf_counter() - t0
    if cpu is not None:
        cpu.append((cpu_s(p.pid) - c0) / n)
    p.stdin.close()
    p.wait(10)
    return (n // max(inflight, 1) * max(inflight, 1)) / dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--inflight", type=int, default=1)
    a = ap.parse_args()
    py = sys.executable
    worker = [py, "-m", "mlbridge_worker", "--bridge", "mlbridge_worker.echo:EchoBridge"]
    targets = {
        "floor_echo": ([py, "-m", "mlbridge_worker.floor_echo"], False),
        "runtime noop": (worker, True),
        "runtime spin50": (worker + ["--spin-us", "50"], True),
        "runtime asyncio": (["env", "MLBRIDGE_LOOP=asyncio"] + worker, True),
    }
    res = {}
    rates = {name: [] for name in targets}
    cpu = {name: [] for name in targets}
    for _ in range(a.repeat):  # interleaved, so drifting machine load hits both alike
        for name, (cmd, hs) in targets.items():
            rates[name].append(run(cmd, a.n, hs, a.inflight, cpu[name]))
    for name in targets:
        r = rates[name]
        res[name] = max(r)
        print(f"{name:16s} {res[name]:10.0f} round trips/s  worker CPU {min(cpu[name]) * 1e6:5.1f} µs/call"
              f"  (runs: {', '.join(f'{x:.0f}' for x in r)})")
    for name in targets:
        if name != "floor_echo":
            print(f"{name:16s} {res['floor_echo'] / res[name]:.2f}x the floor's round-trip time "
                  f"({1e6 / res[name]:.1f} µs vs {1e6 / res['floor_echo']:.1f} µs)")


if __name__ == "__main__":
    main()

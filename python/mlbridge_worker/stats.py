"""Cheap per-op and per-process statistics.

Recording costs a ``perf_counter_ns`` pair and a few integer adds per call: latencies go into
fixed power-of-two buckets in microseconds (bucket k holds [2^(k-1), 2^k) µs, bucket 0 < 1 µs),
and percentiles are derived from the buckets when someone asks (``get_stats``).
"""

from __future__ import annotations

import os
import sys
import threading
import time

# bucket k holds [2^(k-1), 2^k) µs. 64 buckets hold any duration a perf_counter_ns difference
# can express, so recording needs no bounds check.
NBUCKETS = 64

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class OpStats:
    __slots__ = ("kind", "calls", "errors", "in_flight", "buckets")

    def __init__(self, kind: str):
        self.kind = kind
        self.calls = 0  # finished calls (ok or not)
        self.errors = 0
        self.in_flight = 0
        self.buckets = [0] * NBUCKETS

    def record(self, dt_ns: int, ok: bool) -> None:
        self.calls += 1
        if not ok:
            self.errors += 1
        self.buckets[(dt_ns // 1000).bit_length()] += 1

    def percentile_us(self, q: float) -> int | None:
        """Upper bound (µs) of the bucket holding the q-quantile; None without data."""
        total = sum(self.buckets)
        if not total:
            return None
        rank = q * total
        acc = 0
        for k, c in enumerate(self.buckets):
            acc += c
            if c and acc >= rank:
                return 1 << k
        return 1 << (NBUCKETS - 1)

    def snapshot(self) -> dict:
        hist = [[1 << k, c] for k, c in enumerate(self.buckets) if c]
        return {
            "kind": self.kind,
            "calls": self.calls,
            "errors": self.errors,
            "in_flight": self.in_flight,
            "p50_us": self.percentile_us(0.50),
            "p90_us": self.percentile_us(0.90),
            "p99_us": self.percentile_us(0.99),
            # [[bucket upper bound in µs, count], ...] for non-empty buckets
            "histogram_us": hist,
        }


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        try:
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            # no /proc (macOS): the peak, which macOS reports in bytes and Linux in KiB
            return peak if sys.platform == "darwin" else peak * 1024
        except Exception:
            return 0


class Stats:
    """Process-wide counters; ``abandoned`` is kept by the runtime."""

    def __init__(self, threads: int = 0):
        self.started = time.monotonic()
        self._by_kind: dict[tuple[str, str], OpStats] = {}
        self.active: dict[str, str] = {}  # op -> kind serving it now
        self.builtin: frozenset[str] = frozenset()  # plumbing ops, left out of handlers()
        self.inflight_map: dict = {}  # the runtime's in-flight table (its size is in_flight)
        self.abandoned = 0
        self.threads = threads  # executor size

    @property
    def in_flight(self) -> int:
        return len(self.inflight_map)

    def op(self, name: str, kind: str) -> OpStats:
        """The counters of ``name`` served by a ``kind`` implementation; it becomes the op's
        active kind. Each (op, kind) pair counts apart, so that after a sync→async switch the
        calls of each implementation stay attributed to it."""
        key = (name, kind)
        s = self._by_kind.get(key)
        if s is None:
            s = self._by_kind[key] = OpStats(kind)
        self.active[name] = kind
        return s

    @property
    def ops(self) -> dict[str, OpStats]:
        """One merged OpStats per op (all its implementations), with the active kind."""
        merged: dict[str, OpStats] = {}
        for (name, _), s in list(self._by_kind.items()):  # list(): a handler thread may add one
            m = merged.get(name)
            if m is None:
                m = merged[name] = OpStats(self.active[name])
            m.calls += s.calls
            m.errors += s.errors
            m.in_flight += s.in_flight
            m.buckets = [a + b for a, b in zip(m.buckets, s.buckets)]
        return merged

    def handlers(self) -> dict:
        """The migration view of the bridge's own ops (built-in plumbing left out): the kind
        serving each op now, and calls and errors per handler kind since the worker started."""
        kinds: dict[str, list[int]] = {}
        for (name, kind), s in list(self._by_kind.items()):
            if name in self.builtin:
                continue
            c = kinds.setdefault(kind, [0, 0])
            c[0] += s.calls
            c[1] += s.errors
        return {
            "modes": {name: kind for name, kind in list(self.active.items()) if name not in self.builtin},
            "kinds": {kind: {"calls": c, "errors": e} for kind, (c, e) in kinds.items()},
        }

    def health(self) -> dict:
        # a thread still running an abandoned call is stuck work the host may want to recycle
        return {
            "status": "degraded" if self.abandoned else "ok",
            "in_flight": self.in_flight,
            "abandoned": self.abandoned,
            # the host polls health_check every few seconds: this is how it learns the modes
            "handlers": self.handlers(),
        }

    def snapshot(self) -> dict:
        return {
            "process": {
                "pid": os.getpid(),
                "uptime_s": round(time.monotonic() - self.started, 3),
                "rss_bytes": rss_bytes(),
                "in_flight": self.in_flight,
                "abandoned": self.abandoned,
                "threads": threading.active_count(),
                "pool_size": self.threads,
            },
            "ops": {name: s.snapshot() for name, s in self.ops.items()},
            "handlers": self.handlers(),
        }

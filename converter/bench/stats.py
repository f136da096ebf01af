"""Latency statistics of one backend's timed runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

PERCENTILES = {"median": 50, "p90": 90, "p95": 95, "p99": 99}


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds. Percentiles interpolate linearly between the sorted runs (numpy's default); `std` is
    the sample standard deviation (0 for a single run)."""

    min: float
    mean: float
    median: float
    p90: float
    p95: float
    p99: float
    max: float
    std: float

    def to_json(self) -> dict:
        return asdict(self)


def summarize(times_ms: Sequence[float] | np.ndarray) -> LatencyStats:
    """Statistics of per-run latencies in milliseconds (at least one run)."""
    t = np.asarray(times_ms, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ValueError("summarize needs a non-empty 1-D sequence of latencies")
    pct = np.percentile(t, list(PERCENTILES.values()))
    return LatencyStats(
        min=float(t.min()), mean=float(t.mean()), median=float(pct[0]), p90=float(pct[1]), p95=float(pct[2]),
        p99=float(pct[3]), max=float(t.max()), std=float(t.std(ddof=1)) if t.size > 1 else 0.0,
    )


def throughput(mean_ms: float, batch: int) -> float:
    """Samples per second at this batch size: batch x runs / time spent in them (= batch / mean)."""
    return batch * 1000.0 / mean_ms if mean_ms > 0 else float("inf")

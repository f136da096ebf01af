"""The bench report: frozen dataclasses with to_json(); bool(report) = every gate passed.

JSON (schema `npuconv.bench/1`): passed, environment, settings, models[] (recipe, batch, onnx, sha256,
FLOPs), results[] (one per recipe x batch x backend), gates[], notes[]."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from converter.bench.engine import Measurement
from converter.bench.flops import FlopCount
from converter.bench.stats import LatencyStats, summarize, throughput

SCHEMA = "npuconv.bench/1"


@dataclass(frozen=True)
class GraphTiming:
    """One graph of a multi-graph model: `calls` per inference (mean), latency per call."""

    role: str
    calls: float
    latency_ms: LatencyStats

    def to_json(self) -> dict:
        return {"role": self.role, "calls": self.calls, "latency_ms": self.latency_ms.to_json()}


@dataclass(frozen=True)
class ModelEntry:
    """The ONNX measured for one recipe at one batch size."""

    recipe: str
    batch: int
    onnx: str
    onnx_sha256: str
    inputs: dict[str, list[int]]
    flops: FlopCount
    raw_onnx: str | None = None

    def to_json(self) -> dict:
        return {"recipe": self.recipe, "batch": self.batch, "onnx": self.onnx, "onnx_sha256": self.onnx_sha256,
                "raw_onnx": self.raw_onnx, "inputs": self.inputs, "flops": self.flops.total,
                "flops_by_op": self.flops.by_op, "flops_unknown_nodes": list(self.flops.unknown)}


@dataclass(frozen=True)
class BackendResult:
    """One backend on one recipe at one batch size."""

    recipe: str
    batch: int
    backend: str
    timed_region: str
    iterations: int
    warmup: int
    warmup_s: float
    rounds: int
    latency_ms: LatencyStats
    round_medians_ms: tuple[float, ...]
    throughput: float
    cold_start_ms: float
    import_ms: float
    create_ms: float
    first_run_ms: float
    peak_rss_mb: float
    ratio_to_baseline: float | None
    baseline: str
    flops: int | None
    gflops_per_s: float | None
    info: dict
    graphs: tuple[GraphTiming, ...] = ()
    times_ms: tuple[float, ...] = field(default=(), repr=False)

    def to_json(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k not in ("times_ms", "graphs", "latency_ms")}
        data["latency_ms"] = self.latency_ms.to_json()
        data["round_medians_ms"] = list(self.round_medians_ms)
        data["cold_start"] = {"import_ms": self.import_ms, "create_ms": self.create_ms, "first_run_ms": self.first_run_ms}
        for key in ("import_ms", "create_ms", "first_run_ms"):
            del data[key]
        data["graphs"] = [g.to_json() for g in self.graphs]
        return data


@dataclass(frozen=True)
class Gate:
    """One check: an SLO (`kind` slo) or a comparison with the baseline file (`kind` regression)."""

    kind: str
    recipe: str
    batch: int
    backend: str
    metric: str
    limit: float
    value: float
    passed: bool
    message: str
    baseline_value: float | None = None

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BenchReport:
    environment: dict
    settings: dict
    models: tuple[ModelEntry, ...]
    results: tuple[BackendResult, ...]
    gates: tuple[Gate, ...] = ()
    notes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return all(g.passed for g in self.gates)

    def to_json(self) -> dict:
        return {"schema": SCHEMA, "passed": bool(self), "environment": self.environment, "settings": self.settings,
                "models": [m.to_json() for m in self.models], "results": [r.to_json() for r in self.results],
                "gates": [g.to_json() for g in self.gates], "notes": list(self.notes)}


def _graphs(m: Measurement, iterations: int) -> tuple[GraphTiming, ...]:
    return tuple(GraphTiming(role, len(calls) / max(iterations, 1), summarize(calls))
                 for role, calls in m.graphs.items() if calls)


def results_for(recipe: str, batch: int, measurements: list[Measurement], baseline: str, flops: int | None) -> list[BackendResult]:
    """Turn one recipe-and-batch group of measurements into results, each with its ratio (median latency)
    to the `baseline` backend of the same group and GFLOP/s from the model's FLOPs."""
    medians = {m.spec.label: float(np.median(m.times_ms)) for m in measurements}
    base = medians.get(baseline)
    results = []
    for m in measurements:
        stats = summarize(m.times_ms)
        results.append(BackendResult(
            recipe=recipe, batch=batch, backend=m.spec.label, timed_region=m.info.get("timed_region", m.spec.timed_region),
            iterations=len(m.times_ms), warmup=m.warmup_runs, warmup_s=m.warmup_s, rounds=len(m.round_medians_ms),
            latency_ms=stats, round_medians_ms=m.round_medians_ms, throughput=throughput(stats.mean, batch),
            cold_start_ms=m.create_ms + m.first_run_ms, import_ms=m.import_ms, create_ms=m.create_ms,
            first_run_ms=m.first_run_ms, peak_rss_mb=m.peak_rss_mb,
            ratio_to_baseline=stats.median / base if base else None, baseline=baseline,
            flops=flops, gflops_per_s=flops / (stats.median * 1e6) if flops else None,
            info={k: v for k, v in m.info.items() if k != "timed_region"},
            graphs=_graphs(m, len(m.times_ms)), times_ms=m.times_ms,
        ))
    return results

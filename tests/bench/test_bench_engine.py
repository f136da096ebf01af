"""The engine with real worker processes around a deliberately slow fake runner (it sleeps): what it
reports, the SLO and regression gates, and the multi-graph seam. Sleep lengths differ 20-fold, so no
assertion depends on this machine's speed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from converter.bench.backends import BackendSpec
from converter.bench.engine import Plan
from converter.bench.flops import FlopCount
from converter.bench.report import ModelEntry
from converter.bench.suite import Comparison, Group, run_suite
from converter.errors import StageFailed
from converter.recipe.bench import SloConfig

HERE = Path(__file__).resolve().parent
FEEDS = [{"x": np.zeros((2, 1), np.float32)}]


@pytest.fixture(autouse=True)
def _workers_find_the_fake(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))


def sleeper(label: str, ms: float, **options) -> BackendSpec:
    return BackendSpec(label, "factory", factory="slow_runner:SleepRunner", options={"ms": ms, **options})


def group(specs, slo=SloConfig(), plan=Plan(warmup=2, iterations=6, rounds=3), sha="a" * 64, flops=4_000_000):
    model = ModelEntry("fake", 2, "fake.onnx", sha, {"x": [2, 1]}, FlopCount(flops, {"MatMul": flops}))
    return Group(model, tuple(specs), tuple(FEEDS for _ in specs), plan, slo, specs[0].label)


def test_report_is_complete_and_backends_are_interleaved():
    events = []
    report = run_suite([group([sleeper("fast", 1, ballast_mb=64), sleeper("slow", 20)])], threads=None,
                       on_progress=lambda g, label, done, total: events.append((label, done, total)))
    data = json.loads(json.dumps(report.to_json()))
    assert data["schema"] == "npuconv.bench/1" and data["passed"] is True and data["gates"] == []
    assert {"cpu_model", "logical_cpus", "usable_cpus", "threads", "versions", "platform", "python"} <= set(data["environment"])
    assert data["models"][0]["flops"] == 4_000_000 and data["models"][0]["onnx_sha256"] == "a" * 64
    fast, slow = data["results"]
    for r in (fast, slow):
        assert {"backend", "iterations", "warmup", "latency_ms", "throughput", "cold_start_ms", "peak_rss_mb",
                "ratio_to_baseline", "flops", "gflops_per_s", "timed_region", "graphs", "round_medians_ms"} <= set(r)
        assert set(r["latency_ms"]) == {"min", "mean", "median", "p90", "p95", "p99", "max", "std"}
        assert r["iterations"] == 6 and r["warmup"] == 2 and r["rounds"] == 3 and len(r["round_medians_ms"]) == 3
        lat = r["latency_ms"]
        assert lat["min"] <= lat["median"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert r["throughput"] == pytest.approx(2 * 1000 / lat["mean"])  # batch 2 counted
        assert r["gflops_per_s"] == pytest.approx(4e6 / (lat["median"] * 1e6))
    assert fast["latency_ms"]["min"] >= 1.0 and slow["latency_ms"]["min"] >= 20.0  # sleeps never end early
    assert fast["ratio_to_baseline"] == 1.0 and slow["ratio_to_baseline"] > 1.0
    assert fast["peak_rss_mb"] > slow["peak_rss_mb"] + 48  # each backend's own process: the 64 MB ballast shows
    # progress comes between blocks: load and warm-up of each, then rounds in forward, reverse, forward order
    assert [label for label, _, _ in events] == ["fast", "slow", "fast", "slow", "fast", "slow", "slow", "fast", "fast", "slow"]
    assert [done for _, done, _ in events] == list(range(1, 11)) and events[-1][2] == 10


def test_slo_gate_fails_the_slow_backend_with_its_numbers():
    slo = SloConfig(p99_ms=10.0, min_throughput=150.0, max_rss_mb=100_000)  # slow: 2 samples / 20 ms = 100/s
    report = run_suite([group([sleeper("fast", 1), sleeper("slow", 20)], slo=slo)], threads=2)
    assert not report
    failed = [g for g in report.gates if not g.passed]
    assert {(g.backend, g.metric) for g in failed} == {("slow", "p99_ms"), ("slow", "throughput")}
    p99 = next(g for g in failed if g.metric == "p99_ms")
    assert p99.limit == 10.0 and p99.value >= 20.0 and "MISSES the SLO (<= 10 ms)" in p99.message
    assert all(g.passed for g in report.gates if g.backend == "fast")
    assert report.to_json()["passed"] is False and report.environment["threads"] == 2


def test_regression_gate_against_an_earlier_run():
    before = run_suite([group([sleeper("a", 1), sleeper("gone", 1)])], threads=None).to_json()
    before["environment"]["cpu_model"] = "another CPU"
    now = run_suite([group([sleeper("a", 20), sleeper("new", 1)], sha="b" * 64)], threads=None,
                    comparison=Comparison(before, 0.10, "before.json"))
    assert not now
    gates = {(g.backend, g.metric): g for g in now.gates}
    assert set(gates) == {("a", "median_ms"), ("a", "p99_ms")}  # only backends on both sides are compared
    median = gates[("a", "median_ms")]
    assert not median.passed and median.value >= 20 and median.baseline_value < 20
    assert median.limit == pytest.approx(median.baseline_value * 1.1) and "REGRESSED" in median.message
    notes = " | ".join(now.notes)
    assert "fake batch 2 new: not in the baseline file" in notes and "fake batch 2 gone: only in the baseline" in notes
    assert "the ONNX changed" in notes and "cpu_model another CPU ->" in notes
    faster = run_suite([group([sleeper("a", 1)])], threads=None,
                       comparison=Comparison(now.to_json(), 0.10, "now.json"))
    assert faster and {g.metric for g in faster.gates} == {"median_ms", "p99_ms"}


def test_multi_graph_runner_reports_per_graph_timings():
    report = run_suite([group([sleeper("loop", 8, steps=3)], plan=Plan(warmup=1, iterations=4, rounds=2))], threads=None)
    graphs = {g["role"]: g for g in report.to_json()["results"][0]["graphs"]}
    assert set(graphs) == {"encoder", "step"}
    assert graphs["encoder"]["calls"] == 1 and graphs["step"]["calls"] == 3  # per timed run; warm-up not counted
    assert graphs["encoder"]["latency_ms"]["min"] >= 4.0 and graphs["step"]["latency_ms"]["min"] >= 4.0 / 3


def test_duration_mode_and_warmup_in_seconds():
    report = run_suite([group([sleeper("d", 5)], plan=Plan(warmup=None, warmup_s=0.05, iterations=None, duration_s=0.2,
                                                          rounds=2))], threads=None)
    r = report.results[0]
    assert r.warmup >= 1 and r.warmup_s >= 0.05 and r.rounds == 2
    assert r.iterations >= 2 and sum(r.times_ms) >= 200  # each round ran past its 0.1 s


def test_a_failing_backend_is_an_error_with_the_cause():
    with pytest.raises(StageFailed, match="bad.*TypeError"):
        run_suite([group([sleeper("bad", 1, nonsense=True)])], threads=None)

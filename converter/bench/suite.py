"""A whole `bench` run: groups (one recipe at one batch size, several backends each) measured one after
the other, then results, ratios, gates and notes assembled into one BenchReport."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from converter.bench.backends import BackendSpec
from converter.bench.engine import Plan, measure
from converter.bench.environment import environment
from converter.bench.gates import regression_gates, slo_gates
from converter.bench.report import BackendResult, BenchReport, ModelEntry, results_for
from converter.recipe.bench import SloConfig


@dataclass(frozen=True)
class Group:
    """What to measure for one recipe at one batch size: the model, the backends (the baseline backend's
    label in `baseline`), each backend's feeds, the plan and the recipe's SLOs."""

    model: ModelEntry
    specs: tuple[BackendSpec, ...]
    feeds: tuple[list[dict[str, np.ndarray]], ...]
    plan: Plan
    slo: SloConfig
    baseline: str


@dataclass(frozen=True)
class Comparison:
    """`--baseline-file`: the earlier report (parsed JSON) and the largest allowed slow-down."""

    baseline: dict
    max_regression: float
    source: str = ""


BUSY = 0.5  # a 1-minute load average above this share of the usable CPUs makes timings noisy


def run_suite(groups: list[Group], threads: int | None, comparison: Comparison | None = None,
              on_progress: Callable[[Group, str, int, int], None] | None = None) -> BenchReport:
    """Measure every group (backends interleaved within a group), then gate the results."""
    env = environment(threads)
    results: list[BackendResult] = []
    for group in groups:
        progress = (lambda label, done, total, g=group: on_progress(g, label, done, total)) if on_progress else None
        measured = measure(list(group.specs), list(group.feeds), group.plan, progress)
        results += results_for(group.model.recipe, group.model.batch, measured, group.baseline, group.model.flops.total)
    gates = slo_gates(results, {g.model.recipe: g.slo for g in groups})
    notes = []
    if comparison is not None:
        more, said = regression_gates(results, [g.model for g in groups], env, comparison.baseline, comparison.max_regression)
        gates += more
        notes += said
    usable = env["usable_cpus"] or 1
    if env["loadavg_1m"] is not None and env["loadavg_1m"] > BUSY * usable:
        notes.append(f"the machine was busy before this run (1-minute load average {env['loadavg_1m']} on "
                     f"{usable} CPUs): expect noise; compare runs of the same machine state")
    settings = {
        "threads": threads,
        "rounds": max((len(g.plan.blocks()) for g in groups), default=0),
        "per_recipe": {g.model.recipe: {"warmup": g.plan.warmup, "warmup_s": g.plan.warmup_s, "iterations": g.plan.iterations,
                                        "duration_s": g.plan.duration_s, "baseline": g.baseline,
                                        "slo": g.slo.model_dump()} for g in groups},
        "baseline_file": comparison.source if comparison else None,
        "max_regression": comparison.max_regression if comparison else None,
    }
    return BenchReport(env, settings, tuple(g.model for g in groups), tuple(results), tuple(gates), tuple(notes))

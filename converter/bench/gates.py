"""Gates: the recipe's SLOs, and regression against an earlier `bench --json` (the baseline file)."""

from __future__ import annotations

from converter.bench.environment import IDENTITY
from converter.bench.report import BackendResult, Gate, ModelEntry
from converter.recipe.bench import SloConfig


def _where(r: BackendResult) -> str:
    return f"{r.recipe} batch {r.batch} {r.backend}"


def slo_gates(results: list[BackendResult], slos: dict[str, SloConfig]) -> list[Gate]:
    """Every result against its recipe's `bench.slo` (p99_ms, min_throughput, max_rss_mb)."""
    gates = []
    for r in results:
        slo = slos.get(r.recipe)
        if slo is None:
            continue
        checks = [("p99_ms", slo.p99_ms, r.latency_ms.p99, "<=", "ms"),
                  ("throughput", slo.min_throughput, r.throughput, ">=", "samples/s"),
                  ("peak_rss_mb", slo.max_rss_mb, r.peak_rss_mb, "<=", "MB")]
        for metric, limit, value, op, unit in checks:
            if limit is None:
                continue
            passed = value <= limit if op == "<=" else value >= limit
            verdict = "meets" if passed else "MISSES"
            gates.append(Gate("slo", r.recipe, r.batch, r.backend, metric, limit, value, passed,
                              f"{_where(r)}: {metric} {value:.4g} {unit} {verdict} the SLO ({op} {limit:g} {unit})"))
    return gates


def parse_regression(text: str) -> float:
    """`10%` or `0.10` -> 0.10 (the largest allowed relative slow-down)."""
    from converter.errors import InputError

    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        value = -1.0
    if value < 0 or (not raw.endswith("%") and value >= 1):
        raise InputError(f"--max-regression {text!r}: expected a percentage such as 10% (or a fraction such as 0.1)",
                         hint="e.g. --max-regression 5%")
    return value


def regression_gates(results: list[BackendResult], models: list[ModelEntry], environment: dict, baseline: dict,
                     max_regression: float) -> tuple[list[Gate], list[str]]:
    """Compare median and p99 of every result with the baseline's result of the same recipe, batch and
    backend: worse by more than `max_regression` fails. Returns (gates, notes): backends on one side only
    and a changed model or machine are notes, not failures."""
    gates, notes = [], []
    old = {(r["recipe"], r["batch"], r["backend"]): r for r in baseline.get("results", [])}
    new = {(r.recipe, r.batch, r.backend): r for r in results}
    for key, r in new.items():
        before = old.get(key)
        if before is None:
            notes.append(f"{_where(r)}: not in the baseline file, not compared")
            continue
        for metric in ("median", "p99"):
            was, now = float(before["latency_ms"][metric]), getattr(r.latency_ms, metric)
            change = now / was - 1 if was > 0 else 0.0
            passed = change <= max_regression
            verdict = "within" if passed else "REGRESSED beyond"
            gates.append(Gate("regression", r.recipe, r.batch, r.backend, f"{metric}_ms", was * (1 + max_regression), now, passed,
                              f"{_where(r)}: {metric} {now:.4g} ms vs {was:.4g} ms in the baseline ({change:+.1%}, "
                              f"{verdict} {max_regression:.0%})", baseline_value=was))
    for key in old.keys() - new.keys():
        notes.append(f"{key[0]} batch {key[1]} {key[2]}: only in the baseline file, not measured now")
    old_models = {(m["recipe"], m["batch"]): m for m in baseline.get("models", [])}
    for m in models:
        before = old_models.get((m.recipe, m.batch))
        if before and before.get("onnx_sha256") != m.onnx_sha256:
            notes.append(f"{m.recipe} batch {m.batch}: the ONNX changed since the baseline "
                         f"(sha256 {str(before.get('onnx_sha256'))[:12]} -> {m.onnx_sha256[:12]})")
    was_env = baseline.get("environment", {})
    for name in IDENTITY:
        if name in was_env and was_env[name] != environment.get(name):
            if name == "versions":
                changed = sorted(k for k in set(was_env[name]) | set(environment[name])
                                 if was_env[name].get(k) != environment[name].get(k))
                detail = ", ".join(f"{k} {was_env[name].get(k)} -> {environment[name].get(k)}" for k in changed)
            else:
                detail = f"{was_env[name]} -> {environment.get(name)}"
            notes.append(f"the machine changed since the baseline: {name} {detail}")
    return gates, notes

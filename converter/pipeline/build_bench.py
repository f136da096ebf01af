"""The bench step of `npuconv build`, for a recipe with a `bench:` section: the unit's ONNX on ONNX Runtime
CPU and, when the unit built an OM and an NPU runtime is here, the OM, measured as `npuconv bench` measures
(converter.bench: a worker process per backend, interleaved rounds) and gated by `bench.slo`.

A measurement is never cached: the row is `built` on every build (`failed` when an SLO is missed), and its
report goes to `<output_dir>/<unit>.bench.json`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from converter.artifacts import Artifact, file_digest, write_json_atomic
from converter.errors import ToolNotFound
from converter.recipe.model import Recipe
from converter.stage import Progress


def _onnx_spec(onnx: Artifact):
    from converter.bench.backends import onnx_spec

    graphs = {g["role"]: onnx.published[g["role"]] for g in onnx.card["graphs"]}
    return onnx_spec("onnx:cpu", graphs, onnx.card.get("host_loop"))


def _om_spec(om: Artifact):
    """The OM backend, or (None, why) when the OM cannot run here."""
    from converter.bench.backends import om_spec
    from converter.runners.factory import Target, TargetContext, check_available
    from converter.runners.om_card import load_om_card

    path = Path(om.published.get("model") or om.published[om.card["graphs"][0]])
    card = load_om_card(path)
    try:
        check_available(Target("om"), TargetContext(om=path, om_card=card))
    except ToolNotFound as exc:
        return None, exc.message
    return om_spec("om", path, card), None


def bench_unit(recipe: Recipe, variant: str | None, stem: str, onnx: Artifact, om: Artifact | None,
               progress: Progress) -> tuple[Any, dict[str, Any], Path]:
    """Measure the unit; returns (the BenchReport, its verdict for the row, the report file)."""
    from converter.bench.engine import Plan
    from converter.bench.flops import count_flops
    from converter.bench.inputs import rebatch
    from converter.bench.report import ModelEntry
    from converter.bench.suite import Group, run_suite
    from converter.recipe.om import select_variant
    from converter.verify.inputs import load_samples

    cfg = recipe.bench
    specs, notes = [_onnx_spec(onnx)], []
    if om is not None:
        spec, why = _om_spec(om)
        specs += [spec] if spec is not None else []
        notes += [f"the OM was not measured: {why}"] if why else []
    aipp = getattr(select_variant(recipe.om, variant), "aipp", None)
    samples = load_samples(recipe, raw_images=aipp.source_order if aipp is not None else None)
    n = recipe.inputs[0].shape[0]
    feeds = rebatch([s.feed for s in samples], n)
    raw_feeds = rebatch([s.target_feed or s.feed for s in samples], n)
    graphs = {g["role"]: Path(onnx.published[g["role"]]) for g in onnx.card["graphs"]}
    onnx_path = graphs.get("model") or graphs["encoder"]
    raw = onnx.path("raw") if "raw" in onnx.files else None
    model = ModelEntry(recipe.name, n, str(onnx_path), file_digest(onnx_path), recipe.input_shapes(),
                       count_flops(onnx_path), str(raw) if raw else None)
    plan = Plan(cfg.warmup_runs(), cfg.warmup_seconds(), cfg.timed_iterations(), cfg.duration_s)
    group = Group(model, tuple(specs), tuple(raw_feeds if s.kind == "om" or s.options.get("om") else feeds for s in specs),
                  plan, cfg.slo, "onnx:cpu")
    progress(f"bench: {', '.join(s.label for s in specs)}")
    report = run_suite([group], None, None, lambda _g, label, done, total: progress(f"bench {label} {done}/{total}"))
    data = report.to_json()
    data["notes"] = [*data["notes"], *notes]
    path = Path(recipe.output_dir) / f"{stem}.bench.json"
    write_json_atomic(path, data)
    verdict = {
        "passed": bool(report),
        "results": {r.backend: {"median_ms": r.latency_ms.median, "p99_ms": r.latency_ms.p99,
                                "throughput": r.throughput, "peak_rss_mb": r.peak_rss_mb, "ratio": r.ratio_to_baseline}
                    for r in report.results},
        "gates": [g.message for g in report.gates], "notes": data["notes"],
    }
    return report, verdict, path


def report_files(path: Path) -> list[dict[str, Any]]:
    """The bench report as a row's artifact."""
    return [{"role": "report", "path": str(path), "sha256": file_digest(path), "size": path.stat().st_size}]

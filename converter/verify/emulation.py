"""`verify --target emulate:<mode>`: run the suggest -> apply -> re-verify loop of fp16 emulation
against the reference outputs already computed, and package what it found."""

from __future__ import annotations

from pathlib import Path

from converter.compare import compare_outputs, limits_for, resolve_limits
from converter.verify.fp16 import EmulationResult, entry_for, run_stats, suggest_loop

REWRITE = "the fp16 emulation pass (emulate_fp16)"


def analyse(recipe, mode: str, onnx_path: Path, om, samples, references: list[dict], precision: str,
            windows: list[dict] | None = None) -> EmulationResult:
    """Overflow nodes of the recipe as written, and the keep_dtype entries (added to `om.keep_dtype`)
    that make the emulated model pass, found by re-verifying after each suggestion. A round passes when
    every output of every sample is within its fp16 limits (task checks are reported separately).
    `windows[i]` holds sample i's early-exit row windows (see converter.compare.compare_outputs)."""
    import onnx

    from converter.passes.base import ModelSet
    from converter.passes.emulate_fp16 import config_for
    from converter.passes.registry import get
    from converter.runners.onnxruntime import OnnxRuntimeRunner
    from converter.verify.fp16 import with_stats
    from converter.verify.layerwise import first_divergence, layer_tensors

    reference = onnx.load(str(onnx_path))
    feeds = [s.feed for s in samples]
    base = config_for(om, mode)
    limits = limits_for(recipe.verify, precision)
    ref_stats = run_stats(reference, [t.tensor for t in layer_tensors(reference)], feeds)
    output_names = [o.name for o in reference.graph.output]
    emulate = get("emulate_fp16")
    cache: dict[tuple[str, ...], tuple] = {}

    def emulation_for(extra: tuple[str, ...]):
        """(rewritten model, node map) with `extra` keep_dtype entries."""
        if extra not in cache:
            result = emulate.run(ModelSet.single(reference), base.model_copy(update={"keep": base.keep + extra}))
            cache[extra] = (result.models.model, result.card["emulation"])
        return cache[extra]

    def evaluate(extra: tuple[str, ...]):
        model, emulation = emulation_for(extra)
        names = list(dict.fromkeys(t for n in emulation.nodes if n.fp16 for t in (*n.raw, *n.inputs, *n.sources)))
        stats, checks = [], []
        with OnnxRuntimeRunner(with_stats(model, names).SerializeToString(), priority_order=True,
                               rewritten_by=REWRITE) as runner:
            for i, (feed, ref) in enumerate(zip(feeds, references)):
                values = runner.fetch(output_names + [f"{t}__absmax" for t in names], feed)
                actual = {n: values[n] for n in output_names}
                stats.append({t: float(values[f"{t}__absmax"]) for t in names})
                checks += compare_outputs(ref, actual, limits, sample=i, windows=(windows or [{}] * len(feeds))[i]).checks
        passed = all(c.passed for c in checks)
        return (emulation, passed, stats, min(c.metrics.cosine for c in checks),
                max(c.metrics.max_abs for c in checks))

    def lossy(extra: tuple[str, ...]) -> str | None:
        model, emulation = emulation_for(extra)
        result = first_divergence(reference, model, feeds[0], resolve_limits("default", recipe.verify, precision),
                                  via=f"emulate:{mode}", target_rewritten_by=REWRITE,
                                  budget_mb=recipe.verify.layer_budget_mb, max_tensor_mb=recipe.verify.layer_max_tensor_mb)
        if result.first is None:
            return None
        node = next((n for n in emulation.nodes if n.name == result.first.layer.node), None)
        return entry_for(node) if node is not None and node.fp16 else None

    overflow, rounds, suggestion, fixed, stopped = suggest_loop(evaluate, ref_stats, lossy)
    return EmulationResult(
        mode=mode,
        approximate=mode != "fp16",
        kept=emulation_for(())[1].kept,
        overflow=overflow,
        suggestion=suggestion,
        passes_with_suggestion=fixed if suggestion else None,
        iterations=tuple(rounds),
        stopped=stopped,
    )

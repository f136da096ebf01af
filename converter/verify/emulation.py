"""`verify --target emulate:<mode>`: run the suggest -> apply -> re-verify loop of fp16 emulation
against the reference outputs already computed, and package what it found."""

from __future__ import annotations

from pathlib import Path

from converter.verify.fp16 import EmulationResult, entry_for, run_stats, suggest_loop
from converter.verify.tolerance import Tolerance, resolve


def analyse(recipe, mode: str, onnx_path: Path, om, samples, references: list[dict], precision: str,
            card: dict | None) -> EmulationResult:
    """Overflow nodes of the recipe as written, and the keep_dtype entries (added to `om.keep_dtype`)
    that make the emulated model pass, found by re-verifying after each suggestion. A round passes when
    every output of every sample is within its fp16 tolerance (task checks are reported separately)."""
    import onnx

    from converter.runners.emulate import emulate_fp16
    from converter.runners.onnxruntime import OnnxRuntimeRunner
    from converter.verify.fp16 import with_stats
    from converter.verify.keep_dtype import rules_for
    from converter.verify.layerwise import first_divergence, layer_tensors
    from converter.verify.parity import compare_sample

    reference = onnx.load(str(onnx_path))
    feeds = [s.feed for s in samples]
    base = rules_for(om, mode)
    ref_stats = run_stats(reference, [t.tensor for t in layer_tensors(reference)], feeds)
    output_names = [o.name for o in reference.graph.output]
    cache: dict[tuple[str, ...], object] = {}

    def emulation_for(extra: tuple[str, ...]):
        if extra not in cache:
            cache[extra] = emulate_fp16(reference, base.merged(extra))
        return cache[extra]

    def evaluate(extra: tuple[str, ...]):
        emulation = emulation_for(extra)
        model = onnx.ModelProto.FromString(emulation.model_bytes)
        names = list(dict.fromkeys(t for n in emulation.nodes if n.fp16 for t in (*n.raw, *n.inputs, *n.sources)))
        stats, checks = [], []
        with OnnxRuntimeRunner(with_stats(model, names).SerializeToString(), priority_order=True) as runner:
            for i, (feed, ref) in enumerate(zip(feeds, references)):
                values = runner.fetch(output_names + [f"{t}__absmax" for t in names], feed)
                actual = {n: values[n] for n in output_names}
                stats.append({t: float(values[f"{t}__absmax"]) for t in names})
                checks += compare_sample(i, ref, actual, recipe.verify, precision, card)
        passed = all(c.passed for c in checks)
        return (emulation, passed, stats, min(c.metrics.cosine for c in checks),
                max(c.metrics.max_abs for c in checks))

    def lossy(extra: tuple[str, ...]) -> str | None:
        emulation = emulation_for(extra)
        default = resolve("default", recipe.verify, precision)
        result = first_divergence(reference, onnx.ModelProto.FromString(emulation.model_bytes), feeds[0],
                                  Tolerance(default.max_abs, default.cosine), via=f"emulate:{mode}",
                                  budget_mb=recipe.verify.layer_budget_mb, max_tensor_mb=recipe.verify.layer_max_tensor_mb)
        if result.first is None:
            return None
        node = next((n for n in emulation.nodes if n.name == result.first.layer.node), None)
        return entry_for(node) if node is not None and node.fp16 else None

    overflow, rounds, suggestion, fixed, stopped = suggest_loop(evaluate, ref_stats, lossy)
    return EmulationResult(
        mode=mode,
        approximate=mode != "fp16",
        kept=emulation_for(()).kept,
        overflow=overflow,
        suggestion=suggestion,
        passes_with_suggestion=fixed if suggestion else None,
        iterations=tuple(rounds),
        stopped=stopped,
    )

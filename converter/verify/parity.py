"""The verify engine: reference (ONNX Runtime CPU on the stage's ONNX) against a target, per output and
sample, with tolerances by precision mode, task checks, the early-exit window from the model card,
layerwise localisation and fp16 emulation analysis. Returns a VerifyReport; prints nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from converter.compare import (
    Comparison,
    Precision,
    compare_outputs,
    limits_for,
    pair_outputs,
    resolve_limits,
)
from converter.errors import InputError
from converter.runners.factory import Target, TargetContext, check_available, make_runner
from converter.verify.emulation import analyse
from converter.verify.inputs import Sample
from converter.verify.reference import ReferenceSet
from converter.verify.report import VerifyReport
from converter.verify.tasks import check_task, pick_output


def target_precision(target: Target, om_card: dict | None) -> Precision:
    """fp32 for ONNX-family and Paddle targets, fp16 for emulation, for `om` what its card says it was
    built with (never today's recipe: the OM may be older)."""
    if target.kind == "emulate":
        return "fp16"
    if target.kind == "om":
        return om_card["precision"]
    return "fp32"


def windows_for(facts: dict | None, sample: int) -> dict[str, tuple[int, int]]:
    """output name -> (axis, rows to compare) for one sample: the rows a split decoder's steps wrote, as
    the reference stage recorded them (`rows`); {} for a model without a host loop."""
    rows = (facts or {}).get("rows") or []
    return {name: (int(axis), int(k)) for name, (axis, k) in rows[sample].items()} if sample < len(rows) else {}


def compare_sample(sample: int, reference: dict, actual: dict, verify_config, precision: Precision,
                   card: dict | None = None) -> Comparison:
    """Every output of one sample, checked against its limits from `verify_config` (the recipe's
    `verify:` section) under `precision`, within the model card's early-exit window; no early verdict."""
    return compare_outputs(reference, actual, limits_for(verify_config, precision), sample=sample,
                           windows=windows_for(card, sample))


@dataclass(frozen=True)
class VerifyRun:
    """What one verify run compares: the reference (computed now by the reference stage, or saved), the
    limits and task check that judge the target, and, with a recipe at hand, what layerwise and fp16
    emulation need (the reference ONNX and the om build)."""

    name: str
    reference: ReferenceSet
    verify_config: Any
    onnx_path: Path | None = None
    recipe: Any = None
    om: Any = None


def verify(run: VerifyRun, target: Target, ctx: TargetContext, precision: Precision, *, layerwise: bool = False,
           save_dir: Path | None = None, on_step: Callable[[str], None] | None = None) -> VerifyReport:
    """Compare `target` with the reference, sample by sample, and return the report. The reference model
    never runs here: its outputs are the reference set's."""
    step = on_step or (lambda _text: None)
    check_available(target, ctx)
    cfg = run.verify_config
    samples = run.reference.samples()
    step(f"target: {target}")
    checks, tasks, actuals = [], [], []
    with make_runner(target, ctx) as runner:
        for i, sample in enumerate(samples):
            actual = runner.infer(sample.target_feed or sample.feed)
            actuals.append(actual)
            checks += compare_sample(i, sample.outputs, actual, cfg, precision, run.reference.facts).checks
            if cfg.task is not None:
                pairs = dict(pair_outputs(sample.outputs, actual))
                name = pick_output(cfg.task, list(sample.outputs))
                if pairs.get(name) is not None:
                    tasks.append(check_task(cfg.task, i, name, sample.outputs[name], actual[pairs[name]]))
    if save_dir is not None:
        step(f"saving the reference and the target's outputs to {save_dir}")
        save_run(save_dir, run, actuals)
    notes, layer_result, emulation = [], None, None
    if layerwise or target.kind == "emulate":
        if run.recipe is None or run.onnx_path is None:
            raise InputError(f"{'--layerwise' if layerwise else '--target emulate'} needs the recipe and its ONNX; a saved "
                             "reference carries outputs only", hint="run it on the build server with the recipe")
    if layerwise:
        step("layerwise comparison")
        layer_result = _layerwise(run.recipe, target, run.onnx_path, samples[0], precision, run.om)
    if target.kind == "emulate":
        step("fp16 overflow analysis and keep_dtype suggestion")
        references = [s.outputs for s in samples]
        windows = [windows_for(run.reference.facts, i) for i in range(len(references))]
        emulation = analyse(run.recipe, target.arg, run.onnx_path, run.om, samples, references, precision, windows)
        if target.arg == "mixed_float16":
            notes.append("mixed_float16 emulation is approximate: CANN's built-in mixed lists are not available "
                         "here, only om.keep_dtype and om.modify_mixlist's black list are applied")
    if target.kind == "om" and precision == "fp16":
        card = ctx.om_card or {}
        mode = card.get("precision_mode_v2") or card.get("precision_mode") or "unset: atc's default fp16"
        notes.append(f"the OM computes (partly) in fp16 (precision mode {mode}); fp16 tolerances applied. "
                     "`--target emulate:fp16` predicts this on the CPU")
    return VerifyReport(run.name, str(target), run.reference.origin, precision, tuple(s.label for s in samples),
                        tuple(checks), tuple(tasks), layer_result, emulation, tuple(notes))


def save_run(directory: Path, run: VerifyRun, actuals: list[dict]) -> None:
    """DIR becomes a saved reference (replay: `npuconv verify DIR --target T`, or `--set verify.data=DIR`
    for the inputs alone) plus the target's outputs in DIR/target/."""
    import io

    from converter.artifacts import write_bytes_atomic
    from converter.verify.reference import save_reference

    save_reference(directory, run.reference.root, run.reference.meta(), run.verify_config)
    for i, actual in enumerate(actuals):
        buffer = io.BytesIO()
        np.savez(buffer, **actual)
        write_bytes_atomic(directory / "target" / f"{i:04d}.npz", buffer.getvalue())


def _layerwise(recipe, target: Target, onnx_path: Path, sample: Sample, precision: Precision, om):
    """Layerwise against the target where it exposes the reference's tensors; for `om`, against the fp16
    emulation of the OM's precision mode (the OM cannot expose tensors here); Paddle: not available."""
    import onnx

    from converter.passes.base import ModelSet
    from converter.passes.emulate_fp16 import config_for
    from converter.passes.registry import get
    from converter.verify.layerwise import LayerwiseResult, first_divergence

    cfg = recipe.verify
    limits = resolve_limits("default", cfg, precision)
    if target.kind == "paddle":
        return LayerwiseResult("paddle", 0, (), None, limits, available=False,
                               reason="Paddle Inference does not expose the ONNX graph's tensors; use --target onnx-file:RAW.onnx")
    reference = onnx.load(str(onnx_path))
    via = str(target)
    rewritten_by = None
    if target.kind == "onnx-file":
        other = onnx.load(target.arg)
    elif target.kind == "onnx":
        other = reference
    else:
        if target.kind == "om":
            via = "emulate:fp16 (the OM's intermediate tensors are not reachable from here)"
            if precision == "fp32":
                return LayerwiseResult(via, 0, (), None, limits, available=False,
                                       reason="the OM keeps fp32 (precision origin): there is no CPU model of its numerics")
        config = config_for(om, target.arg if target.kind == "emulate" else "fp16")
        other = get("emulate_fp16").run(ModelSet.single(reference), config).models.model
        rewritten_by = "the fp16 emulation pass (emulate_fp16)"
    if target.kind == "onnx" and target.arg != "CPUExecutionProvider":
        via = f"{target} (same graph, provider {target.arg})"
    provider = target.arg if target.kind == "onnx" else "CPUExecutionProvider"
    return first_divergence(reference, other, sample.feed, limits, via=via, provider=provider,
                            structural=target.kind == "onnx-file", target_rewritten_by=rewritten_by,
                            budget_mb=cfg.layer_budget_mb, max_tensor_mb=cfg.layer_max_tensor_mb)

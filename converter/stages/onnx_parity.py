"""The onnx stage's checks on outputs: the chain's result against the source model (Paddle Inference, or
ONNX Runtime on a source ONNX), or, with `onnx.parity: false`, against the chain's own input; and when
that fails, which pass broke it (each pass's output against its input, on the same seeded feed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from converter.passes.base import ModelSet
from converter.passes.registry import PassRecord
from converter.stages.checks import run_ort


def run_models(models: ModelSet, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs of a model set on ONNX Runtime CPU (through the host loop for a split model)."""
    return run_with_rows(models, feed)[0]


def run_with_rows(models: ModelSet, feed: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict]:
    """Outputs, and for a split model the rows its steps wrote ({output: (axis, rows)}; {} otherwise):
    only those are compared (a fixed-capacity buffer's unwritten tail is not the model's answer)."""
    if models.loop is None:
        return run_ort(models.model.SerializeToString(), dict(feed)), {}
    from converter.runners.graphs import graph_runner

    with graph_runner({role: m.SerializeToString() for role, m in models.graphs.items()}, models.loop) as runner:
        outputs = runner.infer(dict(feed))
        return outputs, dict(runner.valid_rows)


def _compare(reference: Sequence[np.ndarray] | Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray],
             rows: Mapping[str, tuple[int, int]] | None = None):
    """Outputs by position (paddle2onnx renames outputs between versions), named as in the ONNX, under the
    built-in fp32 limits (the verdict the user sees is judged again with the recipe's limits); `rows`:
    compare only the rows a split model's steps wrote."""
    from converter.compare import FP32, compare_outputs

    ref = dict(zip(actual, reference.values() if isinstance(reference, Mapping) else reference))
    return compare_outputs(ref, dict(actual), FP32, windows=dict(rows or {}))


def _culprit(reference: Mapping[str, np.ndarray] | None, snapshots: list[ModelSet], records: list[PassRecord],
             feed: Mapping[str, np.ndarray]) -> dict | None:
    """The first step whose output differs from its input under the built-in fp32 limits: the export
    itself (reference vs the first snapshot) or a pass (snapshot i-1 vs snapshot i)."""
    previous = None
    for i, (models, record) in enumerate(zip(snapshots, records)):
        try:
            current, rows = run_with_rows(models, feed)
        except Exception as exc:  # noqa: BLE001 - a pass that makes the graph unrunnable is the culprit
            return {"step": record.name, "reason": f"ONNX Runtime cannot run its output: {exc}"}
        if i == 0:
            if reference is not None:
                report = _compare(reference, current, rows)
                if not report:
                    return {"step": "export", "reason": "the exported graph already differs from the source",
                            "comparison": report.to_json()}
            previous = current
            continue
        if record.touched:
            report = _compare(previous, current, rows)
            if not report:
                return {"step": record.name, "reason": "its output differs from its input", "comparison": report.to_json()}
        previous = current
    return None


def source_parity(reference: Sequence[np.ndarray] | None, actual: Mapping[str, np.ndarray], name: str, seed: int,
                  snapshots: list[ModelSet], records: list[PassRecord], feed: Mapping[str, np.ndarray],
                  source=None, rows: Mapping[str, tuple[int, int]] | None = None) -> dict:
    """Compare the result with the source by position (paddle2onnx renames outputs between versions: never
    key on names); `reference` None: ONNX Runtime on `source` (an ONNX source model) computes it."""
    if reference is None:
        try:
            reference = list(run_ort(source.SerializeToString(), dict(feed)).values())
        except Exception:  # noqa: BLE001 - ORT refuses some raw exports; the repaired first step stands in
            name = "onnxruntime-source (after fix_shapes: ORT refuses the source as written)"
            reference = list(run_models(snapshots[0], feed).values())
    if len(reference) != len(actual):
        from converter.errors import StageFailed

        raise StageFailed(f"the source model has {len(reference)} outputs, the ONNX has {len(actual)}")
    comparison = _compare(reference, actual, rows)
    stored = {"reference": name, "seed": seed, "outputs": comparison.to_json()}
    if not comparison:
        stored["culprit"] = _culprit(dict(zip(actual, reference)), snapshots, records, feed)
    return stored


def chain_parity(actual: Mapping[str, np.ndarray], snapshots: list[ModelSet], records: list[PassRecord],
                 feed: Mapping[str, np.ndarray], seed: int, rows: Mapping[str, tuple[int, int]] | None = None) -> dict:
    """`onnx.parity: false`: the chain's result against its first step (the shape-fixed export), so every
    pass that changed the graph is still checked for equal outputs."""
    if not any(r.touched for r in records[1:]):
        return {"reference": "none (onnx.parity is false and no pass changed the graph)", "seed": seed, "outputs": None}
    first = run_models(snapshots[0], feed)
    comparison = _compare(first, actual, rows)
    stored = {"reference": "the shape-fixed export (onnx.parity is false)", "seed": seed, "outputs": comparison.to_json()}
    if not comparison:
        stored["culprit"] = _culprit(None, snapshots, records, feed)
    return stored

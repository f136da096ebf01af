"""The `onnx` stage: source model (a Paddle inference model, the export stage's output, or any ONNX) ->
static ONNX graph(s) ready for atc, checked against the source.

    export (paddle2onnx, in a worker process) -> the pass chain (fix_shapes, repairs, simplify,
    fold_control_flow, decoder_split, int32, lower_opset, constants_to_initializers; any but the first
    can be switched off) -> checks (no dynamic dim, default domain only, ONNX Runtime loads and runs it)
    -> parity vs the source

While the parent runs the passes, a second worker computes the source model's outputs with Paddle
Inference on a seeded input; ONNX Runtime CPU then runs the result on the same input. The card stores the
comparator's metrics, so the verdict is judged later with the recipe's `verify` tolerances, which stay out
of this stage's key. When parity fails, each pass's output is compared with its input to name the culprit."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converter.artifacts import Artifact, atomic_path, copy_atomic, file_digest
from converter.errors import InputError, StageFailed
from converter.passes.base import ModelSet
from converter.recipe.model import InputSpec, OnnxConfig, OnnxSource, PaddleSource
from converter.stage import Progress, Stage, StageOutput
from converter.versions import check_versions, tool_versions

KEY_TOOLS = ("npuconv", "paddlepaddle", "paddle2onnx", "onnx", "onnxsim", "onnxruntime")
PARITY_SEED = 0
# ops a 310-class chip cannot run in a static graph; the card lists any left in the final graphs
DYNAMIC_OPS = frozenset({"Loop", "If", "Scan", "NonZero", "ScatterND", "ScatterElements", "Scatter", "Unique",
                         "NonMaxSuppression", "Compress"})


@dataclass(frozen=True)
class OnnxSection:
    """What the stage converts: the source (None: the export stage's artifact), the fixed input shapes,
    the recipe's `onnx:` section, and the input axes kept symbolic for atc gears."""

    name: str
    source: PaddleSource | OnnxSource | None
    inputs: tuple[InputSpec, ...]
    onnx: OnnxConfig
    dynamic_axes: Mapping[str, tuple[int, ...]]

    def key_json(self) -> dict:
        # not the recipe's name: two recipes converting the same model the same way share one cache entry
        return {
            "source_format": self.source.format if self.source is not None else "export",
            "inputs": [spec.model_dump(mode="json") for spec in self.inputs],
            "onnx": self.onnx.model_dump(mode="json"),
            "dynamic_axes": {k: sorted(v) for k, v in sorted(self.dynamic_axes.items())},
        }


def source_files(section: OnnxSection, upstream: Mapping[str, Artifact]) -> tuple[str, list[Path]]:
    """(format, files) the stage reads; a missing file is an InputError naming the recipe key."""
    src = section.source
    if src is None:
        export = upstream["export"]
        return "paddle", [export.path("model"), export.path("params")]
    if isinstance(src, OnnxSource):
        files = [("source.path", src.path)]
    else:
        if not src.model_dir.is_dir():
            raise InputError(f"source.model_dir does not exist: {src.model_dir}",
                             hint="run `make models` for the shipped recipes, or pass --model-dir DIR")
        files = [("source.model_filename", src.model_file()), ("source.params_filename", src.params_file())]
    for key, path in files:
        if not path.is_file():
            raise InputError(f"{key}: file not found: {path}",
                             hint="point the recipe (or --model-dir) at a Paddle inference model directory")
    return src.format, [p for _, p in files]


class OnnxStage(Stage):
    name = "onnx"
    version = 2
    reads = ("export",)
    code = ("converter.passes", "converter.stages.onnx_parity", "converter.stages.paddle_worker",
            "converter.stages.checks", "converter.runners.hostloop")

    def key_payload(self, section: OnnxSection, upstream: Mapping[str, Artifact]) -> Mapping[str, Any]:
        _, files = source_files(section, upstream)
        return {"source_files": [file_digest(p) for p in files], "tools": tool_versions(KEY_TOOLS)}

    def published_name(self, role: str, stem: str) -> str | None:
        if role == "model":
            return f"{stem}.onnx"
        return None if role == "raw" else f"{stem}.{role}.onnx"

    def card_name(self, stem: str) -> str:
        return f"{stem}.card.json"

    def run(self, section: OnnxSection, upstream: Mapping[str, Artifact], scratch: Path, progress: Progress) -> StageOutput:
        return StageOutput(*_convert(section, upstream, scratch, progress))


def _convert(section: OnnxSection, upstream: Mapping[str, Artifact], scratch: Path,
             progress: Progress) -> tuple[dict, dict]:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    fmt, files = source_files(section, upstream)
    versions = tool_versions(KEY_TOOLS)
    check_versions(versions, need=("paddlepaddle", "paddle2onnx") if fmt == "paddle" else ())
    worker = None
    feed_npz = scratch / "feed.npz" if section.onnx.parity else None
    if fmt == "paddle":
        progress("paddle2onnx export")
        from converter.stages.paddle_export import PaddleExport

        # Started before anything else: importing paddle dominates the export and the reference, and the
        # worker reads the feed only after it. A recipe the model contradicts stops it at once (below).
        worker = PaddleExport(files[0], files[1], section.onnx.opset, scratch, feed_npz)
    try:
        import numpy as np

        from converter.passes import registry
        from converter.stages.checks import load_checked
        from converter.runners.model_io import check_recipe_inputs, declared_inputs
        from converter.stages.onnx_parity import (
            chain_parity,
            run_with_rows,
            source_parity,
        )
        from converter.verify.inputs import random_feed

        check_recipe_inputs(declared_inputs(files[0]), section.inputs, f"the model ({files[0].name})")
        feed = random_feed(section.inputs, seed=PARITY_SEED)
        if feed_npz is not None:
            with atomic_path(feed_npz) as tmp, tmp.open("wb") as f:
                np.savez(f, **feed)
        from converter.process import deferred_signals

        with deferred_signals():  # native modules: an interruption mid-import could leave them half-built
            import onnx  # noqa: F401  (imported while paddle2onnx runs in the worker)
            import onnxruntime  # noqa: F401

        if worker is not None:
            raw_path = worker.wait_exported()
            raw = load_checked(raw_path, "paddle2onnx output", params_file=files[1])
        else:
            raw_path = scratch / "raw.onnx"
            copy_atomic(files[0], raw_path)
            raw = load_checked(raw_path, "source ONNX")
        timings["export"] = time.perf_counter() - started

        t = time.perf_counter()
        steps = registry.chain(section, section.onnx.disable_passes)
        models, records, facts, snapshots = registry.apply(ModelSet.single(raw), steps, progress, keep=True)
        timings["passes"] = time.perf_counter() - t
        progress("checking the graph")
        graphs = _check_and_write(section, models, scratch)

        t = time.perf_counter()
        progress("ONNX Runtime on the result")
        actual, rows = run_with_rows(models, feed)
        if worker is not None and feed_npz is not None:
            progress("waiting for the Paddle reference")
            reference = worker.wait_reference()
            parity = source_parity(reference, actual, "paddle-inference", PARITY_SEED, snapshots, records, feed, rows=rows)
        elif section.onnx.parity:
            parity = source_parity(None, actual, "onnxruntime-source", PARITY_SEED, snapshots, records, feed,
                                   source=raw, rows=rows)
        else:
            parity = chain_parity(actual, snapshots, records, feed, PARITY_SEED, rows=rows)
        timings["parity"] = time.perf_counter() - t
    finally:
        if worker is not None:
            worker.close()
    timings["total"] = time.perf_counter() - started
    final_ops = models.op_counts()
    inputs, outputs = _io(models, actual)
    card = {
        "source": {"format": fmt, "files": {p.name: file_digest(p) for p in files}},
        "opset_requested": section.onnx.opset if fmt == "paddle" else None,
        "opset_written": _opset(raw),
        "opset": max(_opset(m) for m in models.graphs.values()),
        "inputs": inputs,
        "outputs": outputs,
        "dynamic_axes": {k: list(v) for k, v in section.dynamic_axes.items()},
        "dynamic_dims": [d for g in graphs for d in g["dynamic_dims"]],
        "dynamic_ops_left": sorted(op for op in final_ops if op in DYNAMIC_OPS),
        "graphs": graphs,
        "passes": [r.to_json() for r in records],
        "ops_before": dict(sorted(ModelSet.single(raw).op_counts().items())),  # Loop/If bodies included
        "ops_after": dict(sorted(final_ops.items())),
        "nodes_before": len(raw.graph.node),
        "nodes_after": sum(g["nodes"] for g in graphs),
        "tool_versions": versions,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "parity": parity,
        **facts,
    }
    files_out = {g["role"]: g["file"] for g in graphs}
    files_out["raw"] = "raw.onnx"
    return files_out, card


def _opset(model) -> int:
    from converter.passes.graphinfo import opset

    return opset(model)


def _check_and_write(section: OnnxSection, models: ModelSet, scratch: Path) -> list[dict]:
    """Static dims (except the gear axes asked for), default domain only; each graph written to scratch."""
    from converter.passes.graphinfo import dynamic_dims, io_specs
    from converter.stages.checks import check_default_domain

    declared = {f"input {n}[{a}]={n}_{a}" for n, axes in section.dynamic_axes.items() for a in axes}
    graphs = []
    for role, model in models.graphs.items():
        dyn = dynamic_dims(model)
        if not section.dynamic_axes and dyn:
            hint = ("shape inference alone cannot fold this graph: keep the simplify pass on"
                    if "simplify" in section.onnx.disable_passes
                    else "run `npuconv lint` on the ONNX to see which ops keep them dynamic")
            raise StageFailed(f"the {role} graph still has dynamic dims after fixing the input shapes: "
                              f"{', '.join(dyn[:8])}", hint=hint)
        undeclared = [d for d in dyn if d.startswith("input ") and d not in declared]
        if undeclared:
            raise StageFailed(f"inputs kept dynamic dims nobody asked for: {', '.join(undeclared)}")
        check_default_domain(model)
        name = f"{role}.onnx"
        (scratch / name).write_bytes(model.SerializeToString())
        inputs, outputs = io_specs(model)
        graphs.append({"role": role, "file": name, "nodes": len(model.graph.node), "static": not dyn,
                       "dynamic_dims": dyn, "inputs": inputs, "outputs": outputs,
                       "ops": dict(sorted(Counter(n.op_type for n in model.graph.node).items()))})
    return graphs


def _io(models: ModelSet, actual: Mapping[str, Any]) -> tuple[list[dict], list[dict]]:
    """The model's inputs and outputs as the card records them (for a split model: what the host loop
    takes and returns, shapes as produced on the parity input)."""
    from converter.passes.graphinfo import io_specs

    if models.loop is None:
        return io_specs(models.model)
    inputs, _ = io_specs(models.graphs["encoder"])
    outputs = [{"name": k, "shape": list(v.shape), "dtype": v.dtype.name} for k, v in actual.items()]
    return inputs, outputs

"""The `onnx` stage: source model -> static, simplified, checked ONNX, with a model card and a parity
check against the source model.

    export (Paddle subprocess) -> fix input shapes -> shape inference -> onnxsim (check on)
    -> constants to initializers -> checks (no dim_param, default domain only, ORT loads it)
    -> <output_dir>/<name>.onnx + <name>.card.json (atomic)

While onnxsim runs, the same Paddle subprocess computes the source outputs on a seeded input; ONNX Runtime
CPU then runs the result on that input and the card records max abs / cosine per output. The output is
keyed by the content of the source files, the recipe's `source`/`inputs`/`onnx` sections and the tool
versions: a rerun with nothing changed returns the stored result without importing paddle, onnx or
onnxruntime."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from converter.artifacts import StageCache, atomic_path, content_key, copy_atomic, file_digest, write_json_atomic
from converter.errors import InputError, StageFailed
from converter.recipe.model import OnnxSource, PaddleSource, Recipe
from converter.versions import check_versions, tool_versions

STAGE = "onnx"
STAGE_VERSION = 1
KEY_TOOLS = ("npuconv", "paddlepaddle", "paddle2onnx", "onnx", "onnxsim", "onnxruntime")
PARITY_SEED = 0


@dataclass(frozen=True)
class OnnxResult:
    """The stage's output: the ONNX file in output_dir, its model card, and whether it came from cache."""

    onnx: Path
    card: dict
    cached: bool

    @property
    def card_path(self) -> Path:
        return self.onnx.with_suffix(".card.json")

    def __bool__(self) -> bool:
        parity = self.card.get("parity")
        return parity is None or bool(parity["passed"])

    def to_json(self) -> dict:
        card = self.card
        return {
            "passed": bool(self), "onnx": str(self.onnx), "card": str(self.card_path), "cached": self.cached,
            "opset": card["opset_written"], "opset_requested": card["opset_requested"],
            "inputs": card["inputs"], "outputs": card["outputs"], "dynamic_dims": card["dynamic_dims"],
            "parity": card["parity"], "nodes": {"before": card["nodes_before"], "after": card["nodes_after"]},
            "timings_s": card["timings_s"],
        }


def source_files(recipe: Recipe) -> list[Path]:
    """The files the stage reads; a missing one is an InputError naming the recipe key."""
    src = recipe.source
    if isinstance(src, OnnxSource):
        files = [("source.path", src.path)]
    else:
        if not src.model_dir.is_dir():
            raise InputError(f"source.model_dir does not exist: {src.model_dir}",
                             hint="run `make models` for the shipped PP-OCRv4 recipes, or pass --model-dir DIR")
        files = [("source.model_filename", src.model_file()), ("source.params_filename", src.params_file())]
    for key, path in files:
        if not path.is_file():
            raise InputError(f"{key}: file not found: {path}",
                             hint="point the recipe (or --model-dir) at a Paddle inference model directory")
    return [p for _, p in files]


def stage_key(recipe: Recipe, dynamic_axes: Mapping[str, Sequence[int]] | None = None) -> str:
    """sha256 of everything the output depends on (and nothing else: not `bench`, not `om`, not paths)."""
    return content_key({
        "stage": STAGE, "version": STAGE_VERSION,
        "source_format": recipe.source.format,
        "source_files": [file_digest(p) for p in source_files(recipe)],
        "inputs": [spec.model_dump(mode="json") for spec in recipe.inputs],
        "onnx": recipe.onnx.model_dump(mode="json"),
        "dynamic_axes": {k: sorted(v) for k, v in sorted((dynamic_axes or {}).items())},
        "tools": tool_versions(KEY_TOOLS),
    })


def output_path(recipe: Recipe, dynamic_axes: Mapping[str, Sequence[int]] | None = None) -> Path:
    suffix = "_dyn" if dynamic_axes else ""
    return Path(recipe.output_dir) / f"{recipe.name}{suffix}.onnx"


def build_onnx(
    recipe: Recipe,
    *,
    force: bool = False,
    dynamic_axes: Mapping[str, Sequence[int]] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> OnnxResult:
    """Run the stage (or return the cached result) and place `<name>.onnx` and its card in output_dir.
    `dynamic_axes` keeps exactly those input axes symbolic (for atc gears)."""
    import json

    step = on_step or (lambda _text: None)
    dynamic_axes = {k: list(v) for k, v in (dynamic_axes or {}).items() if v}
    key = stage_key(recipe, dynamic_axes)
    cache = StageCache(STAGE)
    entry = None if force else cache.lookup(key)
    cached = entry is not None
    if entry is None:
        with cache.building(key) as scratch:
            card = _build(recipe, dynamic_axes, scratch, step)
            card["cache_key"] = key
            card["artifacts"] = {"raw_onnx": str(cache.entry(key) / "raw.onnx")}
            write_json_atomic(scratch / "card.json", card)
        entry = cache.entry(key)
    card = json.loads((entry / "card.json").read_text())
    dest = output_path(recipe, dynamic_axes)
    step("writing outputs")
    copy_atomic(entry / "model.onnx", dest)
    write_json_atomic(dest.with_suffix(".card.json"), card)
    return OnnxResult(onnx=dest, card=card, cached=cached)


def _build(recipe: Recipe, dynamic_axes: dict[str, list[int]], scratch: Path, step: Callable[[str], None]) -> dict:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    src = recipe.source
    versions = tool_versions(KEY_TOOLS)
    check_versions(versions, need=("paddlepaddle", "paddle2onnx") if isinstance(src, PaddleSource) else ())
    worker = None
    feed_npz = scratch / "feed.npz" if recipe.onnx.parity else None
    if isinstance(src, PaddleSource):
        step("paddle2onnx export")
        from converter.stages.paddle_export import PaddleExport

        # Started first: importing paddle dominates the export; the feed is only read after it.
        worker = PaddleExport(src.model_file(), src.params_file(), recipe.onnx.opset, scratch, feed_npz)
    try:
        import numpy as np

        from converter.verify.inputs import random_feed

        feed = random_feed(recipe.inputs, seed=PARITY_SEED) if feed_npz else None
        if feed_npz:
            with atomic_path(feed_npz) as tmp:
                with tmp.open("wb") as f:
                    np.savez(f, **feed)
        import onnx  # noqa: F401  (imported while paddle2onnx runs in the worker)

        from converter.stages import checks, shapes, simplify

        if worker is not None:
            raw_path = worker.wait_exported()
        else:
            raw_path = scratch / "raw.onnx"
            copy_atomic(src.path, raw_path)
        timings["export"] = time.perf_counter() - started
        if worker is None:
            raw = checks.load_checked(raw_path, "source ONNX")
        else:
            raw = checks.load_checked(raw_path, "paddle2onnx output", params_file=src.params_file())
        opset_written = next((o.version for o in raw.opset_import if o.domain in ("", "ai.onnx")), None)

        t = time.perf_counter()
        step("fixing input shapes")
        fixed = shapes.fix_input_shapes(raw, recipe.input_shapes(), dynamic_axes)
        timings["fix_shapes"] = time.perf_counter() - t
        t = time.perf_counter()
        if recipe.onnx.simplify:
            step("onnxsim")
            # onnxsim's own check compares the graph before and after simplifying on random data; the parity
            # check below compares the result with the source model itself, which subsumes it.
            fixed = simplify.simplify_onnx(fixed, check_n=0 if feed is not None else 1,
                                           test_shapes=recipe.input_shapes() if dynamic_axes else None)
        moved = simplify.constants_to_initializers(fixed)
        timings["simplify"] = time.perf_counter() - t

        step("checking the graph")
        dyn = shapes.dynamic_dims(fixed)
        declared = {f"input {n}[{a}]={n}_{a}" for n, axes in dynamic_axes.items() for a in axes}
        if not dynamic_axes and dyn:
            hint = ("shape inference alone cannot fold this graph: keep onnx.simplify true" if not recipe.onnx.simplify
                    else "run `npuconv lint` on the ONNX to see which ops keep them dynamic")
            raise StageFailed(f"the graph still has dynamic dims after fixing the input shapes: {', '.join(dyn[:8])}",
                              hint=hint)
        undeclared_inputs = [d for d in dyn if d.startswith("input ") and d not in declared]
        if undeclared_inputs:
            raise StageFailed(f"inputs kept dynamic dims nobody asked for: {', '.join(undeclared_inputs)}")
        checks.check_default_domain(fixed)
        model_bytes = fixed.SerializeToString()
        model_path = scratch / "model.onnx"
        model_path.write_bytes(model_bytes)
        inputs, outputs = shapes.io_specs(fixed)

        parity = None
        if feed is not None:
            step("ONNX Runtime on the result")
            t = time.perf_counter()
            actual = checks.run_ort(model_bytes, feed)
            step("waiting for the Paddle reference" if worker else "ONNX Runtime on the source")
            reference = worker.wait_reference() if worker else list(checks.run_ort(raw_path, feed).values())
            parity = checks.source_parity(reference, actual, "paddle-inference" if worker else "onnxruntime-source", PARITY_SEED)
            timings["parity"] = time.perf_counter() - t
    finally:
        if worker is not None:
            worker.close()
    timings["total"] = time.perf_counter() - started
    return {
        "name": recipe.name,
        "source": {"format": src.format, "files": {p.name: file_digest(p) for p in source_files(recipe)}},
        "opset_requested": recipe.onnx.opset if isinstance(src, PaddleSource) else None,
        "opset_written": opset_written,
        "inputs": inputs,
        "outputs": outputs,
        "dynamic_axes": dynamic_axes,
        "dynamic_dims": shapes.dynamic_dims(fixed),
        "ops_before": dict(sorted(Counter(n.op_type for n in raw.graph.node).items())),
        "ops_after": dict(sorted(Counter(n.op_type for n in fixed.graph.node).items())),
        "nodes_before": len(raw.graph.node),
        "nodes_after": len(fixed.graph.node),
        "constants_moved": moved,
        "simplified": recipe.onnx.simplify,
        "tool_versions": versions,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "parity": parity,
    }

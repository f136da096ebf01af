"""Lint a recipe: the onnx stage's output with the om variant's gears and CANN version; when the onnx
stage itself refuses the graph (dynamic dims it cannot fix), lint the unfixed export so the report still
says why."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Callable
from pathlib import Path

from converter.errors import StageFailed
from converter.lint.rules import LintReport, lint_onnx
from converter.recipe.model import OnnxSource, Recipe
from converter.recipe.om import select_variant


def _unfixed_onnx(recipe: Recipe, workdir: Path) -> Path:
    """The source ONNX, or a plain paddle2onnx export of the Paddle source (no shape fixing)."""
    if isinstance(recipe.source, OnnxSource):
        return recipe.source.path
    from converter.stages.paddle_export import PaddleExport

    src = recipe.source
    export = PaddleExport(src.model_file(), src.params_file(), recipe.onnx.opset, workdir, None)
    try:
        return export.wait_exported()
    finally:
        export.close()


def lint_recipe(recipe: Recipe, variant: str | None = None, *, force: bool = False,
                on_step: Callable[[str], None] | None = None) -> LintReport:
    """Run (or reuse) the onnx stage with the variant's gear axes and lint its ONNX."""
    from converter.stages.atc.validate import check_config
    from converter.stages.onnx_stage import build_onnx

    cfg = select_variant(recipe.om, variant)
    axes: dict[str, list[int]] = {}
    gears: list[dict] = []
    if cfg is not None:
        _, dynamic = check_config(recipe, cfg)
        axes = {k: list(v) for k, v in dynamic.axes.items()}
        gears = list(dynamic.gears)  # atc compiles each gear as a static graph: lint each one
    cann = cfg.cann_version if cfg else None
    try:
        result = build_onnx(recipe, force=force, dynamic_axes=axes, on_step=on_step)
    except StageFailed as exc:
        with tempfile.TemporaryDirectory(prefix="npuconv-lint-") as tmp:
            if on_step:
                on_step("the onnx stage refused the graph; linting the unfixed export")
            report = lint_onnx(_unfixed_onnx(recipe, Path(tmp)), cann_version=cann, gears=gears)
        return dataclasses.replace(report, note=f"the onnx stage failed ({exc.message}); this report is for the "
                                                "export before shape fixing")
    return lint_onnx(result.onnx, cann_version=cann, gears=gears)

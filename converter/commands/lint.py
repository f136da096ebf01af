"""`npuconv lint`: will atc and a static 310-class chip accept this graph?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from converter.commands.common import (
    ForceOpt,
    JsonOpt,
    ModelDirOpt,
    OutputDirOpt,
    SetOpt,
    VariantOpt,
    load,
)
from converter.console import emit_json, out, steps, warn

_STYLE = {"block": "bold red", "warn": "yellow", "info": "dim"}


def lint_command(
    target: Annotated[Path, typer.Argument(help="A recipe (lints its onnx-stage output) or a .onnx file.",
                                           show_default=False)],
    variant: VariantOpt = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when anything blocks a static 310-class build.")] = False,
    cann_version: Annotated[str | None, typer.Option(
        "--cann-version", help="CANN version for a plain .onnx (recipes use om.cann_version).")] = None,
    set_: SetOpt = None,
    model_dir: ModelDirOpt = None,
    output_dir: OutputDirOpt = None,
    json_: JsonOpt = False,
    force: ForceOpt = False,
) -> None:
    """Static Ascend-readiness report: dynamic dims, control flow, data-dependent shapes (with constness
    analysis), int64 arithmetic, opset range, custom domains."""
    from converter.errors import InputError
    from converter.lint.rules import lint_onnx

    if target.suffix.lower() == ".onnx":
        if set_ or model_dir or variant:
            raise InputError("--set, --model-dir and --variant apply to recipes, not to a plain .onnx file",
                             hint="pass a recipe, or drop those options")
        report = lint_onnx(target, cann_version=cann_version)
    else:
        if cann_version:
            raise InputError("--cann-version is for a plain .onnx; a recipe takes it from om.cann_version",
                             hint="use --set om.cann_version=8.0")
        r = load(target, set_, model_dir, output_dir)
        with steps("lint") as step:
            report = _lint_recipe(r, variant, force, step)
    reports = report if isinstance(report, list) else [report]
    for rep in reports:
        if rep.note:
            warn(rep.note)
    if json_:
        emit_json(reports[0].to_json() if len(reports) == 1 else
                  {"passed": all(reports), "graphs": [rep.to_json() for rep in reports]})
    else:
        for rep in reports:
            _print_table(rep)
    if strict and not all(reports):
        raise typer.Exit(1)


def _lint_recipe(recipe, variant: str | None, force: bool, step):
    """Lint the onnx stage's output for the om variant (its gears and CANN version); when the onnx stage
    itself refuses the graph, lint the export before shape fixing so the report still says why."""
    import dataclasses
    import tempfile

    from converter.console import warn
    from converter.errors import StageFailed
    from converter.lint.rules import lint_onnx
    from converter.pipeline.plan import execute, om_runs, onnx_runs
    from converter.recipe.om import select_variant

    cfg = select_variant(recipe.om, variant)
    gears: list[dict] = []
    if cfg is not None:
        runs = om_runs(recipe, variant)
        gears = list(runs[-1].section.dynamic.gears)  # atc compiles each gear as a static graph: lint each one
        runs = runs[:-1]
    else:
        runs = onnx_runs(recipe)
    cann = cfg.cann_version if cfg else None
    try:
        artifact = execute(runs, force=force, keep_going=True, progress=step, warn=warn)[-1].artifact
    except StageFailed as exc:
        with tempfile.TemporaryDirectory(prefix="npuconv-lint-") as tmp:
            step("the onnx stage refused the graph; linting the unfixed export")
            report = lint_onnx(_unfixed_onnx(recipe, Path(tmp)), cann_version=cann, gears=gears)
        return dataclasses.replace(report, note=f"the onnx stage failed ({exc.message}); this report is for the "
                                                "export before shape fixing")
    reports = [lint_onnx(artifact.path(g["role"]), cann_version=cann, gears=gears if g["role"] in ("model", "encoder") else [])
               for g in artifact.card["graphs"]]
    named = [dataclasses.replace(rep, model=artifact.published.get(g["role"], rep.model))
             for rep, g in zip(reports, artifact.card["graphs"])]
    return named[0] if len(named) == 1 else named  # one report per graph of a split model


def _unfixed_onnx(recipe, workdir: Path) -> Path:
    """The source ONNX, or a plain paddle2onnx export of the Paddle model (no shape fixing): the recipe's
    source, or the export stage's output."""
    from converter.pipeline.plan import execute, export_runs
    from converter.recipe.model import OnnxSource
    from converter.stages.paddle_export import PaddleExport

    if isinstance(recipe.source, OnnxSource):
        return recipe.source.path
    runs = export_runs(recipe)
    if runs:
        export = execute(runs, keep_going=True)[-1].artifact
        model, params = export.path("model"), export.path("params")
    else:
        model, params = recipe.source.model_file(), recipe.source.params_file()
    worker = PaddleExport(model, params, recipe.onnx.opset, workdir, None)
    try:
        return worker.wait_exported()
    finally:
        worker.close()


def _print_table(report) -> None:
    from rich.table import Table

    table = Table(title=f"lint {report.model} (opset {report.opset}, CANN {report.cann_version}: "
                        f"{report.opset_range[0]}..{report.opset_range[1]}, {report.nodes} nodes)")
    for column in ("severity", "rule", "node", "finding"):
        table.add_column(column, overflow="fold")
    for f in report.findings:
        table.add_row(f"[{_STYLE[f.severity]}]{f.severity}[/]", f.rule, f.node or "", f.message)
    if report.findings:
        out.print(table)
    else:
        out.print(f"{report.model}: no findings ({report.nodes} nodes, opset {report.opset})")
    blocking = len(report.blocking)
    if blocking:
        out.print(f"[bold red]{blocking} finding(s) block a static 310-class build[/]")
    else:
        out.print("[green]nothing blocks a static 310-class build[/]")

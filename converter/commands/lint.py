"""`npuconv lint`: will atc and a static 310-class chip accept this graph?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from converter.commands.common import ForceOpt, JsonOpt, ModelDirOpt, OutputDirOpt, SetOpt, VariantOpt, load
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
        from converter.lint import lint_recipe

        if cann_version:
            raise InputError("--cann-version is for a plain .onnx; a recipe takes it from om.cann_version",
                             hint="use --set om.cann_version=8.0")
        r = load(target, set_, model_dir, output_dir)
        with steps("lint") as step:
            report = lint_recipe(r, variant, force=force, on_step=step)
    if report.note:
        warn(report.note)
    if json_:
        emit_json(report.to_json())
    else:
        _print_table(report)
    if strict and not report:
        raise typer.Exit(1)


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

"""Options every recipe command shares, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

RecipeArg = Annotated[Path, typer.Argument(help="Recipe YAML (recipes/*.yaml).", show_default=False)]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="KEY.PATH=VALUE", help="Override a recipe key, e.g. --set onnx.opset=13 (repeatable)."),
]
ModelDirOpt = Annotated[Path | None, typer.Option("--model-dir", help="Replace source.model_dir (relative to here).")]
OutputDirOpt = Annotated[Path | None, typer.Option("--output-dir", "-o", help="Replace output_dir (relative to here).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout; logs go to stderr.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Rebuild even when the cache holds this exact result.")]
VariantOpt = Annotated[str | None, typer.Option("--variant", help="Which `om` build, when the recipe lists several (default: the first).")]


def load(recipe: Path, overrides: list[str] | None, model_dir: Path | None = None, output_dir: Path | None = None):
    """Load and validate the recipe with the CLI's overrides applied."""
    from converter.recipe.loader import load_recipe

    if recipe.is_dir():
        import errno
        import os

        from converter.errors import RecipeError

        raise RecipeError(f"cannot read recipe {recipe}: {os.strerror(errno.EISDIR)}",
                          hint="pass the path of a YAML recipe file, e.g. recipes/ppocrv4_rec.yaml")
    return load_recipe(recipe, overrides or (), model_dir=model_dir, output_dir=output_dir)
KeepGoingOpt = Annotated[bool, typer.Option(
    "--keep-going", help="Go on to the next stage even when a stage's own check (parity) failed.")]


def require_stage(outcome, stage: str, recipe: Path, keep_going_hint: str = "") -> None:
    """`execute` stops at a run whose own check failed: when that run is not `stage` (the export check failed
    before the onnx stage), a CheckFailed (exit 1) that names it, instead of reading the wrong artifact."""
    if outcome.run.stage.name == stage:
        return
    from converter.errors import CheckFailed

    failed = outcome.run.stage.name
    where = outcome.artifact.published.get("model") or outcome.run.label
    raise CheckFailed(f"the {failed} stage's check failed for {where}: the {stage} stage was not run",
                      hint=f"see `npuconv {failed} {recipe}` for the numbers{keep_going_hint}")


def default_om(recipe, variant: str | None) -> Path:
    """Where the om stage writes the OM of this recipe and variant."""
    from converter.recipe.om import select_variant
    from converter.stages.atc.stage import om_stem

    cfg = select_variant(recipe.om, variant)
    stem = om_stem(recipe, cfg) if cfg is not None else recipe.name
    return Path(recipe.output_dir) / f"{stem}.om"


def finish(data: dict, passed: bool, render, json_: bool) -> None:
    """End a command: with `--json` the one JSON object on stdout and `render(console)`'s tables on
    stderr, else the tables on stdout; exit 1 when its check failed."""
    from converter.console import emit_json, err, out

    if json_:
        emit_json(data)
    render(err if json_ else out)
    if not passed:
        raise typer.Exit(1)

"""Options every recipe command shares, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

RecipeArg = Annotated[Path, typer.Argument(help="Recipe YAML (recipes/*.yaml).", show_default=False)]
SetOpt = Annotated[
    Optional[list[str]],
    typer.Option("--set", metavar="KEY.PATH=VALUE", help="Override a recipe key, e.g. --set onnx.opset=13 (repeatable)."),
]
ModelDirOpt = Annotated[Optional[Path], typer.Option("--model-dir", help="Replace source.model_dir (relative to here).")]
OutputDirOpt = Annotated[Optional[Path], typer.Option("--output-dir", "-o", help="Replace output_dir (relative to here).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout; logs go to stderr.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Rebuild even when the cache holds this exact result.")]


def load(recipe: Path, overrides: list[str] | None, model_dir: Path | None = None, output_dir: Path | None = None):
    """Load and validate the recipe with the CLI's overrides applied."""
    from converter.recipe.loader import load_recipe

    return load_recipe(recipe, overrides or (), model_dir=model_dir, output_dir=output_dir)

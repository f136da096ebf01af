"""Shared pieces of the recipe models: the strict base class and recipe-relative paths."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationInfo

DTYPES = ("float32", "float16", "int64", "int32", "uint8", "bool")


class Section(BaseModel):
    """Base of every recipe section: unknown keys are errors, values are immutable after loading."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def resolve_recipe_path(value: str | Path, info: ValidationInfo) -> Path:
    """A path written in the recipe, relative to the recipe file (absolute paths are kept)."""
    return _relative_to_recipe(Path(value), info)


def _relative_to_recipe(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    if base is not None and not value.is_absolute():
        value = Path(os.path.normpath(Path(base) / value))
    return value


RecipePath = Annotated[Path, AfterValidator(_relative_to_recipe)]
"""A path written relative to the recipe file (absolute paths are kept)."""

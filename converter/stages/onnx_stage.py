"""The `onnx` stage (being written): source model -> static, simplified, checked ONNX."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from converter.recipe.model import Recipe


@dataclass(frozen=True)
class OnnxResult:
    onnx: Path
    card: dict
    cached: bool


def build_onnx(
    recipe: Recipe,
    *,
    force: bool = False,
    dynamic_axes: Mapping[str, Sequence[int]] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> OnnxResult:
    raise RuntimeError("being written")

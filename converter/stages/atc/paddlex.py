"""`--paddlex`: lay out `inference.om` + `inference.yml` so the OM drops into PaddleX high-performance
inference with `backend: om` (static shapes only; `input_shape` = the atc shape without the batch)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from converter import __version__
from converter.artifacts import copy_atomic, write_bytes_atomic
from converter.errors import InputError
from converter.recipe.model import PaddleSource, Recipe
from converter.recipe.om import OmConfig
from converter.stages.atc.files import render_template
from converter.stages.atc.validate import DynamicPlan, rule_error

_KEEP_SECTIONS = ("PreProcess", "PostProcess")


@dataclass(frozen=True)
class PaddlexLayout:
    """The PaddleX model directory written for one OM."""

    directory: Path
    om: Path
    yml: Path
    input_shape: tuple[int, ...]

    def to_json(self) -> dict:
        return {"dir": str(self.directory), "om": str(self.om), "yml": str(self.yml), "input_shape": list(self.input_shape)}


def check_paddlex(recipe: Recipe, dynamic: DynamicPlan) -> tuple[int, ...]:
    """PaddleX's OM backend runs static shapes only; returns its `input_shape` ([c, h, w] of the first input)."""
    if dynamic.option:
        raise rule_error("paddlex-static-only", f"PaddleX's OM backend runs static shapes only; this build has --{dynamic.option}",
                         "drop om.dynamic for the PaddleX build (or add a static variant and pick it with --variant)")
    shape = recipe.inputs[0].shape
    if len(shape) < 2 or shape[0] != 1:
        raise rule_error("paddlex-input-shape", f"PaddleX takes input_shape without the batch, so the first input must "
                         f"have batch 1; it is {list(shape)}", "set inputs[0].shape[0] to 1")
    return tuple(shape[1:])


def paddlex_dir(recipe: Recipe, cfg: OmConfig) -> Path:
    """`<output_dir>/paddlex[/<variant>]`."""
    base = Path(recipe.output_dir) / "paddlex"
    return base / cfg.variant if cfg.variant else base


def _source_sections(recipe: Recipe) -> str:
    import yaml

    src = recipe.source
    if not isinstance(src, PaddleSource):
        return ""
    path = src.model_dir / "inference.yml"
    if not path.is_file():
        return ""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML: {exc}", hint="fix or remove the model's inference.yml") from None
    keep = {k: data[k] for k in _KEEP_SECTIONS if isinstance(data, dict) and k in data}
    return yaml.safe_dump(keep, sort_keys=False, allow_unicode=True).rstrip() if keep else ""


def inference_yml(recipe: Recipe, cfg: OmConfig, atc_input_shape: str, input_shape: tuple[int, ...]) -> str:
    """The text of PaddleX's `inference.yml` for this build."""
    return render_template(
        "paddlex_inference.yml.j2", version=__version__, recipe_name=recipe.name, variant=cfg.variant,
        soc_version=cfg.soc_version, soc_version_json=json.dumps(cfg.soc_version),
        model_name_json=json.dumps(cfg.paddlex_model_name or recipe.name), input_shape_json=json.dumps(list(input_shape)),
        atc_input_shape_json=json.dumps(atc_input_shape), source_sections=_source_sections(recipe),
    )


def layout_paddlex(recipe: Recipe, cfg: OmConfig, om: Path | None, atc_input_shape: str,
                   input_shape: tuple[int, ...]) -> PaddlexLayout:
    """Write `inference.yml` and copy the OM to `inference.om` beside it (both atomically). `om` None
    (--dry-run): only the yml; atc's --output puts the OM there later."""
    directory = paddlex_dir(recipe, cfg)
    text = inference_yml(recipe, cfg, atc_input_shape, input_shape)
    if om is not None:
        copy_atomic(om, directory / "inference.om")
    write_bytes_atomic(directory / "inference.yml", text.encode())
    return PaddlexLayout(directory, directory / "inference.om", directory / "inference.yml", input_shape)

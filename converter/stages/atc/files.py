"""The files atc reads besides the ONNX: keep_dtype.cfg, the modify_mixlist JSON and the AIPP
insert_op_conf (rendered from `preprocess:` through templates/aipp.cfg.j2)."""

from __future__ import annotations

import json
from pathlib import Path

import converter
from converter.recipe.model import Recipe
from converter.recipe.om import OmConfig

_PACKAGE = Path(converter.__file__).resolve().parent
# A checkout (editable install) reads the repository's templates/; a wheel ships them as converter/templates.
TEMPLATES = next((p for p in (_PACKAGE.parent / "templates", _PACKAGE / "templates") if p.is_dir()), _PACKAGE / "templates")

KEEP_DTYPE = "keep_dtype.cfg"
MIXLIST = "modify_mixlist.json"
AIPP = "aipp.cfg"

# Full-range BT.601 YUV -> RGB in AIPP fixed point (x256), rows R, G, B; input bias on Y, U, V.
_YUV_TO_RGB = ((256, 0, 359), (256, -88, -183), (256, 454, 0))
_YUV_BIAS = (0, 128, 128)


def render_template(name: str, **values: object) -> str:
    """Render one of the repository's Jinja2 templates (undefined names are errors)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["comment"] = lambda value: " ".join(str(value).split())
    return env.get_template(name).render(**values)


def keep_dtype_cfg(cfg: OmConfig) -> str | None:
    """keep_dtype.cfg: one op name or `OpType::X` per line."""
    if not cfg.keep_dtype:
        return None
    return "".join(f"{entry}\n" for entry in cfg.keep_dtype)


def mixlist_json(cfg: OmConfig) -> str | None:
    """The modify_mixlist JSON in atc's own spelling (black-list / white-list / gray-list, to-add / to-remove)."""
    if cfg.modify_mixlist is None:
        return None
    body = {lst: {edit: list(ops) for edit, ops in edits.items()} for lst, edits in cfg.modify_mixlist.items()}
    return json.dumps(body, indent=2) + "\n"


def _num(value: float) -> str:
    return format(value, ".8g")


def aipp_cfg(recipe: Recipe, cfg: OmConfig) -> str | None:
    """The static AIPP config: colour conversion and (pixel*scale - mean)/std as AIPP's min/var_reci."""
    aipp = cfg.aipp
    if aipp is None or recipe.preprocess is None:
        return None
    pre = recipe.preprocess
    name = aipp.input or recipe.inputs[0].name
    rank = [spec.name for spec in recipe.inputs].index(name)
    gray = aipp.input_format == "YUV400_U8"
    n = 1 if gray else 3
    channels = [
        {"index": i, "min": _num(pre.mean[i] / pre.scale), "var_reci": _num(pre.scale / pre.std[i])} for i in range(n)
    ]
    csc: list[tuple[str, int]] = []
    swap = False
    source_order = None
    if aipp.input_format == "YUV420SP_U8":
        rows = _YUV_TO_RGB if pre.channel_order == "RGB" else tuple(reversed(_YUV_TO_RGB))
        csc = [(f"matrix_r{r}c{c}", rows[r][c]) for r in range(3) for c in range(3)]
        csc += [(f"input_bias_{i}", b) for i, b in enumerate(_YUV_BIAS)]
    elif not gray:
        source_order = aipp.source_order
        swap = aipp.source_order != pre.channel_order
    return render_template(
        "aipp.cfg.j2",
        recipe_name=recipe.name, variant=cfg.variant, input_format=aipp.input_format, source_order=source_order,
        input_name=name, model_order="GRAY" if gray else pre.channel_order, scale=_num(pre.scale),
        mean=[_num(m) for m in pre.mean], std=[_num(s) for s in pre.std], rank=rank, csc=csc, swap=swap,
        channels=channels,
    )


def generated_files(recipe: Recipe, cfg: OmConfig) -> dict[str, str]:
    """File name -> content of every cfg file this build needs (empty when none)."""
    files = {KEEP_DTYPE: keep_dtype_cfg(cfg), MIXLIST: mixlist_json(cfg), AIPP: aipp_cfg(recipe, cfg)}
    return {name: text for name, text in files.items() if text is not None}

"""Limits per output: the output's entry, then `default`, then the built-in of the target's precision,
field by field, each field saying where it came from."""

from __future__ import annotations

import pytest

from converter.compare import limits_for, precision_of, resolve_limits
from converter.errors import RecipeError
from converter.recipe.loader import load_recipe
from converter.recipe.verify import VerifyConfig


def test_each_field_comes_from_the_output_then_default_then_the_builtin():
    cfg = VerifyConfig.model_validate({
        "tolerance": {"default": {"cosine": 0.9999, "rtol": 1e-3}, "boxes": {"max_abs": 1e-3}},
        "tolerance_fp16": {"default": {"max_abs": 0.1}},
    })
    boxes = resolve_limits("boxes", cfg, "fp32")
    assert (boxes.max_abs, boxes.rtol, boxes.cosine) == (1e-3, 1e-3, 0.9999)
    assert boxes.sources == ("recipe:verify.tolerance.boxes", "recipe:verify.tolerance.default", "recipe:verify.tolerance.default")
    assert boxes.source == "recipe:verify.tolerance.boxes+recipe:verify.tolerance.default"
    other = limits_for(cfg, "fp32")("scores")
    assert (other.max_abs, other.rtol, other.cosine) == (1e-4, 1e-3, 0.9999)
    assert other.source_of("max_abs") == "builtin:fp32" and other.source == "recipe:verify.tolerance.default+builtin:fp32"
    # fp32 entries never leak into fp16 targets: only tolerance_fp16 and the fp16 built-in apply.
    half = resolve_limits("boxes", cfg, "fp16")
    assert (half.max_abs, half.rtol, half.cosine) == (0.1, 1e-2, 0.999)
    assert half.source == "recipe:verify.tolerance_fp16.default+builtin:fp16"
    assert resolve_limits("x", VerifyConfig(), "fp16").source == "builtin:fp16"
    assert resolve_limits("x", None, "fp32").sources == ("builtin:fp32",) * 3


def test_rtol_is_a_recipe_field_and_negative_is_refused(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: m\nsource: {format: onnx, path: m.onnx}\ninputs: [{name: x, shape: [1, 4]}]\n"
                      "verify: {tolerance: {boxes: {rtol: 0.001}}}\n")
    assert resolve_limits("boxes", load_recipe(recipe).verify, "fp32").rtol == 0.001
    with pytest.raises(RecipeError, match="rtol"):
        load_recipe(recipe, ["verify.tolerance.boxes.rtol=-1"])


@pytest.mark.parametrize("v2, v1, expected", [(None, None, "fp16"), ("origin", None, "fp32"), ("mixed_float16", None, "fp16"),
                                              (None, "must_keep_origin_dtype", "fp32"), (None, "force_fp32", "fp16")])
def test_om_precision_world(v2, v1, expected):
    assert precision_of(v2, v1) == expected

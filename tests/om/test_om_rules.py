"""Every combination rule is rejected before atc starts: exit code 2, the error names the rule, and the
fake atc (installed on PATH) was never run."""

from __future__ import annotations

import pytest
from om_support import atc_calls

BASE = {"soc_version": "Ascend310P3", "precision_mode_v2": "origin"}

CASES = {
    "dynamic-one-option": {"dynamic": {"batch": [1, 2], "image_size": [[16, 16], [32, 32]]}},
    "dynamic-gear-count": {"dynamic": {"batch": [4]}},
    "dynamic-gear-count-101": {"dynamic": {"batch": list(range(1, 102))}},
    "dynamic-gear-duplicate": {"dynamic": {"batch": [1, 2, 2]}},
    "dynamic-gear-positive": {"dynamic": {"batch": [0, 2]}},
    "dynamic-profile-length": {"dynamic": {"image_size": [[16], [32, 32]]}},
    "dynamic-image-size-format": {"input_format": "ND", "dynamic": {"image_size": [[16, 16], [32, 32]]}},
    "dynamic-dims-needs-nd": {"dynamic": {"dims": [[1], [2]], "axes": {"x": [0]}}},
    "dynamic-dims-no-aipp": {"input_format": "ND", "aipp": {"input_format": "RGB888_U8"},
                             "dynamic": {"dims": [[1], [2]], "axes": {"x": [0]}}},
    "dynamic-axes": {"input_format": "ND", "dynamic": {"dims": [[1], [2]], "axes": {"image": [0]}}},
    "dynamic-axes-missing": {"input_format": "ND", "dynamic": {"dims": [[1], [2]]}},
    "precision-exclusive": {"precision_mode": "force_fp32"},
    "mixlist-needs-mixed-mode": {"modify_mixlist": {"black-list": {"to-add": ["Relu"]}}},
    "soc-precision-bf16": {"precision_mode_v2": "mixed_bfloat16"},
    "soc-precision-hif8": {"soc_version": "Ascend910B2", "precision_mode_v2": "cube_hif8"},
    "implmode-optypelist": {"optypelist_for_implmode": ["Softmax"]},
    "cann-option": {"cann_version": "6.0"},
    "extra-args-managed": {"extra_args": {"input_shape": "x:1,3,16,16"}},
    "extra-args-unknown": {"extra_args": {"lgo": "error"}},
    "extra-args-value": {"extra_args": {"log": "verbose"}},
    "aipp-input": {"aipp": {"input_format": "YUV400_U8"}},
    "hint-shape-with-gears": {"dynamic": {"batch": [1, 2]}, "extra_args": {"input_hint_shape": "0:[1,3,16,16]"}},
}


def _rule(case: str) -> str:
    for suffix in ("-101", "-bf16", "-hif8", "-missing"):
        case = case.removesuffix(suffix)
    return case


@pytest.mark.parametrize("case", sorted(CASES))
def test_rule_rejected_before_atc(case, cli, make_recipe, fake_atc, tmp_path):
    recipe = make_recipe({**BASE, **CASES[case]})
    res = cli("om", recipe, "--json")
    assert res.code == 2, res.stderr
    error = res.json()["error"]
    assert error["type"] == "RecipeError"
    assert error["message"].startswith(f"om rule {_rule(case)}:"), error["message"]
    assert error["hint"]
    assert not fake_atc.exists()
    assert not (tmp_path / "build" / "tiny.om").exists()


def test_opset_out_of_cann_range(cli, make_recipe, fake_atc):
    # the tiny ONNX has opset 14; CANN 6.0's atc parses 9..13
    recipe = make_recipe({"soc_version": "Ascend310P3", "precision_mode": "force_fp32", "cann_version": "6.0.1"})
    res = cli("om", recipe, "--json")
    assert res.code == 2
    assert res.json()["error"]["message"] == (
        "om rule opset-range: the ONNX has ai.onnx opset 14, CANN 6.0 atc parses opset 9..13")
    assert "onnx.max_opset: 13" in res.json()["error"]["hint"]  # the lower_opset pass makes this followable
    assert atc_calls(fake_atc) == []


def test_aipp_needs_preprocess(cli, make_recipe, fake_atc):
    recipe = make_recipe({**BASE, "aipp": {"input_format": "RGB888_U8"}}, preprocess=False)
    res = cli("om", recipe, "--json")
    assert res.code == 2
    assert res.json()["error"]["message"].startswith("om rule aipp-needs-preprocess:")
    assert not fake_atc.exists()


def test_variant_names_must_be_unique(cli, make_recipe, fake_atc):
    recipe = make_recipe([{**BASE, "variant": "a"}, {**BASE, "variant": "a", "soc_version": "Ascend910B2"}])
    res = cli("om", recipe, "--json", "--variant", "a")
    assert res.code == 2
    assert res.json()["error"]["message"] == "om rule variant-names: variant names repeat: ['a']"
    assert not fake_atc.exists()


def test_input_name_not_in_onnx():
    """The onnx stage already refuses a renamed input; the om rule guards ONNX files it did not write."""
    from converter.errors import RecipeError
    from converter.recipe.model import Recipe
    from converter.stages.atc.validate import DynamicPlan, check_against_onnx

    recipe = Recipe.model_validate({"name": "t", "source": {"format": "onnx", "path": "m.onnx"},
                                    "inputs": [{"name": "image", "shape": [1, 3, 8, 8]}],
                                    "om": {"soc_version": "Ascend310P3"}})
    with pytest.raises(RecipeError, match=r"^om rule input-names: recipe input\(s\) \['image'\] are not inputs"):
        check_against_onnx(recipe, recipe.om, DynamicPlan(), {"x": [1, 3, 8, 8]}, 14, frozenset())


def test_renamed_input_fails_before_atc(cli, make_recipe, fake_atc):
    recipe = make_recipe(BASE, inputs=[{"name": "image", "shape": [1, 3, 16, 16]}])
    res = cli("om", recipe, "--json")
    assert res.code == 2
    assert "image" in res.json()["error"]["message"]
    assert not fake_atc.exists()


def test_unknown_precision_value_lists_allowed(cli, make_recipe, fake_atc):
    recipe = make_recipe({**BASE, "precision_mode_v2": "fp32"})
    res = cli("om", recipe, "--json")
    assert res.code == 2
    message = res.json()["error"]["message"]
    assert "om.precision_mode_v2" in message and "'origin'" in message and "'mixed_float16'" in message
    assert not fake_atc.exists()


def test_keep_dtype_with_origin_is_a_warning(cli, make_recipe):
    recipe = make_recipe({**BASE, "keep_dtype": ["OpType::Relu"]})
    res = cli("om", recipe, "--dry-run", "--json")
    assert res.code == 0, res.stderr
    assert res.json()["warnings"] == [
        "om.keep_dtype has no effect with origin: every op already keeps its original dtype"]


def test_keep_dtype_unknown_node_name_warns(cli, make_recipe):
    recipe = make_recipe({"soc_version": "Ascend310P3", "precision_mode_v2": "fp16",
                          "keep_dtype": ["conv0", "no_such_node"]})
    res = cli("om", recipe, "--dry-run", "--json")
    assert res.code == 0, res.stderr
    assert res.json()["warnings"] == [
        "om.keep_dtype names ['no_such_node'] are not node names of the ONNX; atc will ignore them "
        "(use OpType::X for op types)"]


@pytest.mark.parametrize("soc, expect", [
    ("Ascend310P3", None),
    ("Ascend310P9", "looks like an Ascend 310P chip"),
    ("Kirin9000", "is not a SoC npuconv knows"),
])
def test_soc_names(soc, expect, cli, make_recipe):
    res = cli("om", make_recipe({**BASE, "soc_version": soc}), "--dry-run", "--json")
    assert res.code == 0, res.stderr
    warnings = res.json()["warnings"]
    assert (warnings == []) if expect is None else (len(warnings) == 1 and expect in warnings[0])


def test_bf16_allowed_on_910b(cli, make_recipe):
    res = cli("om", make_recipe({"soc_version": "Ascend910B3", "precision_mode_v2": "mixed_bfloat16",
                                 "modify_mixlist": {"gray-list": {"to-add": ["Relu"]}}}), "--dry-run", "--json")
    assert res.code == 0, res.stderr
    assert "--precision_mode_v2=mixed_bfloat16" in res.json()["argv"]


def test_unknown_cann_version_warns_and_uses_default_range(cli, make_recipe):
    res = cli("om", make_recipe({**BASE, "cann_version": "9.9"}), "--dry-run", "--json")
    assert res.code == 0, res.stderr
    assert res.json()["warnings"] == [
        "om.cann_version '9.9' is not in npuconv's table; checking the opset against CANN 8.0 (9..18)"]

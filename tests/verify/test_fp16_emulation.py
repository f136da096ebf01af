"""fp16 emulation on a graph whose middle activation exceeds 65504: the overflow is attributed to the
node where it starts, the keep_dtype suggestion is in the om stage's form, and applying it passes."""

from __future__ import annotations

import math

import pytest


def test_overflow_is_named_where_it_starts_and_the_suggestion_fixes_it(overflow_recipe, run_cli, tmp_path):
    recipe = overflow_recipe()
    res = run_cli("verify", recipe, "--target", "emulate:fp16", "--json")
    assert res.code == 1, res.stderr
    data = res.json()
    assert data["passed"] is False and data["target"] == "emulate:fp16" and data["precision"] == "fp16"
    (out,) = data["outputs"]
    assert out["name"] == "y" and out["inf"] == 4 and not out["passed"]
    # fc1 is where Inf starts; scale, act and head only receive it.
    (overflow,) = data["overflow_nodes"]
    assert overflow["node"] == "fc1" and overflow["op_type"] == "MatMul" and overflow["kind"] == "output"
    assert 1.0e5 < overflow["reference_max_abs"] < 1.6e5
    suggestion = data["keep_dtype_suggestion"]
    # fc1 itself, and scale: it consumes fc1's 1.2e5 (out of fp16 range even when fc1 is fp32). Not act/head.
    assert suggestion["entries"] == ["fc1", "scale"]
    assert suggestion["passes_with_suggestion"] is True
    assert suggestion["cfg"] == "fc1\nscale\n"
    assert (tmp_path / "out" / "overflow.keep_dtype.suggested.cfg").read_text() == "fc1\nscale\n"
    rounds = data["emulation"]["iterations"]
    assert [r["passed"] for r in rounds] == [False, True] and rounds[1]["keep_dtype"] == ["fc1", "scale"]

    # Apply the suggestion the way the om stage takes it (om.keep_dtype) and verify again.
    fixed = run_cli("verify", recipe, "--target", "emulate:fp16", "--json", "--set", "om.keep_dtype=[fc1, scale]")
    assert fixed.code == 0, fixed.stderr
    again = fixed.json()
    assert again["passed"] is True and again["overflow_nodes"] == [] and again["keep_dtype_suggestion"] is None
    assert again["emulation"]["kept_fp32"] == ["fc1", "scale"]
    assert 0 < again["outputs"][0]["max_abs"] < 5e-3  # rounded, not bit-exact: emulation did run


def test_keeping_only_the_starting_node_moves_the_overflow_to_its_consumer(overflow_recipe, run_cli):
    res = run_cli("verify", overflow_recipe(), "--target", "emulate:fp16", "--json", "--set", "om.keep_dtype=[fc1]")
    assert res.code == 1
    (overflow,) = res.json()["overflow_nodes"]
    # fc1 is fp32 now; scale must round its 1.2e5 input to fp16: that is where Inf starts.
    assert (overflow["node"], overflow["kind"], overflow["tensor"]) == ("scale", "input", "h1")
    assert res.json()["keep_dtype_suggestion"]["entries"] == ["scale"]


def test_data_outside_the_declared_range_hides_the_overflow(overflow_recipe, run_cli):
    res = run_cli("verify", overflow_recipe(low=0.0, high=1.0), "--target", "emulate:fp16", "--json")
    assert res.code == 0, res.stderr
    assert res.json()["overflow_nodes"] == []


def test_mixed_mode_keeps_black_listed_op_types_and_says_it_is_approximate(overflow_recipe, run_cli):
    om = "{soc_version: Ascend310P3, precision_mode_v2: mixed_float16, modify_mixlist: {black-list: {to-add: [MatMulV2]}}}"
    res = run_cli("verify", overflow_recipe(om=om), "--target", "emulate:mixed_float16", "--json")
    data = res.json()
    assert data["emulation"]["approximate"] is True and any("approximate" in n for n in data["notes"])
    assert data["emulation"]["kept_fp32"] == ["fc1", "head"]  # MatMulV2 is atc's name for MatMul
    assert [o["node"] for o in data["overflow_nodes"]] == ["scale"]


def test_emulated_graph_rounds_fp16_nodes_and_leaves_kept_ones(tmp_path):
    import numpy as np
    import onnx
    from verify_models import make_overflow_onnx

    from converter.passes.base import ModelSet
    from converter.passes.emulate_fp16 import EmulateFp16Config
    from converter.passes.registry import get
    from converter.runners.onnxruntime import OnnxRuntimeRunner

    model = onnx.load(str(make_overflow_onnx(tmp_path / "m.onnx")))
    emulate = get("emulate_fp16")
    result = emulate.run(ModelSet.single(model), EmulateFp16Config(keep=("OpType::MatMul", "scale")))
    emulation = result.card["emulation"]
    assert [n.fp16 for n in emulation.nodes] == [False, False, True, False]
    assert emulation.kept == ("fc1", "scale", "head")
    # act (Relu) is rounded on the way in and out: 2 Casts for its input h2, 2 for its output h3.
    assert result.models.model.graph.node[0].op_type == "MatMul" and len(result.models.model.graph.node) == 8
    x = {"x": np.full((1, 8), 150.0, np.float32)}
    emulated = result.models.model.SerializeToString()
    with OnnxRuntimeRunner(emulated) as emu, OnnxRuntimeRunner(model.SerializeToString()) as ref:
        assert np.isfinite(emu.infer(x)["y"]).all()
        assert np.allclose(emu.infer(x)["y"], ref.infer(x)["y"], rtol=1e-3)
    everything = emulate.run(ModelSet.single(model), EmulateFp16Config()).models.model
    with OnnxRuntimeRunner(everything.SerializeToString()) as emu:
        # fc1: 8 * 150 * 100 = 1.2e5 > 65504, Inf in fp16 and on through scale, act and head.
        assert math.isinf(float(emu.infer(x)["y"][0, 0]))


@pytest.mark.parametrize("mode", ["fp8", "bogus"])
def test_unknown_emulation_mode_is_exit_2(overflow_recipe, run_cli, mode):
    res = run_cli("verify", overflow_recipe(), "--target", f"emulate:{mode}", "--json")
    assert res.code == 2 and res.json()["error"]["type"] == "InputError"

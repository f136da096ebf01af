"""`lower_opset`: only when the recipe sets onnx.max_opset; written opset at most that, outputs equal to
the unlowered model (ONNX Runtime), an op that cannot be lowered is an error naming it."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from pass_support import assert_same, load, op_count, ort_run, paddle_run, run_pass, seeded_feed
from onnx import TensorProto, helper

from converter.errors import StageFailed
from converter.passes.graphs import opset_of
from converter.passes.lower_opset import LowerConfig, LowerOpset
from converter.recipe.model import OnnxConfig


def test_never_implicit(exported):
    model = load(exported["block"])
    assert LowerOpset().configure(OnnxConfig()) == LowerConfig(max_opset=None)
    out, record = run_pass("lower_opset", model)  # no section: no max_opset
    assert out.model is model and record.notes == () and record.changed == {}


def test_already_low_enough_is_left_alone(exported):
    model = load(exported["const_if"])  # opset 11
    out, record = run_pass("lower_opset", model, OnnxConfig(max_opset=13))
    assert out.model is model and record.notes == ()


def test_paddle_block_from_opset_18_to_13(exported, paddle_dirs):
    model = load(exported["block"])
    assert opset_of(model) == 18
    before = model.SerializeToString()

    out, record = run_pass("lower_opset", model, {"onnx": {"max_opset": 13}})

    assert model.SerializeToString() == before
    lowered = out.model
    assert opset_of(lowered) == 13
    onnx.checker.check_model(lowered, full_check=True)
    assert record.notes[0] == "ai.onnx opset 18 -> 13"
    # one note per kind of rewrite, naming the node
    kinds = {n.split(":")[0].split(" (")[0].split(" rewritten")[0] for n in record.notes[1:]}
    assert kinds == {"LayerNormalization", "HardSwish", "Split", "ReduceMean", "ReduceMax", "Reshape"}
    assert all(n.endswith("(1 node)") for n in record.notes[1:])
    assert op_count(lowered, "LayerNormalization") == op_count(lowered, "HardSwish") == 0
    assert record.changed["HardSigmoid"] == 1 and record.changed["LayerNormalization"] == -1
    for node in lowered.graph.node:  # axes back to attributes, explicit split sizes
        if node.op_type in ("ReduceMean", "ReduceMax"):
            assert len(node.input) == 1 and any(a.name == "axes" for a in node.attribute)
        if node.op_type == "Split":
            assert len(node.input) == 2 and all(a.name != "num_outputs" for a in node.attribute)
    for seed in range(3):
        feed = seeded_feed(model, seed)
        assert_same(ort_run(model, feed), ort_run(lowered, feed), atol=2e-6)
        assert_same(paddle_run(paddle_dirs["block"], feed), ort_run(lowered, feed), atol=1e-5)


def _single(op: str, opset: int, inputs, outputs, **attrs) -> onnx.ModelProto:
    node = helper.make_node(op, [i.name for i in inputs], [o.name for o in outputs], name=f"my{op}", **attrs)
    graph = helper.make_graph([node], "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_op_without_an_older_form_is_an_error_naming_it():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 3])
    model = _single("Trilu", 14, [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 3])])
    with pytest.raises(StageFailed) as err:
        run_pass("lower_opset", model, OnnxConfig(max_opset=13))
    assert "Trilu 'myTrilu'" in err.value.message and "first appears in opset 14" in err.value.message
    assert "onnx.max_opset to 14" in err.value.hint


def test_new_meaning_is_refused_not_dropped():
    """Resize-19's half_pixel_symmetric has no opset-13 equivalent; int8 Add is new in opset 14."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])
    scales = helper.make_tensor_value_info("scales", TensorProto.FLOAT, [4])
    resize = _single("Resize", 19, [x, helper.make_tensor_value_info("roi", TensorProto.FLOAT, [0]), scales],
                     [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                     coordinate_transformation_mode="half_pixel_symmetric")
    with pytest.raises(StageFailed, match="half_pixel_symmetric"):
        run_pass("lower_opset", resize, OnnxConfig(max_opset=13))
    a = helper.make_tensor_value_info("a", TensorProto.INT8, [2])
    add = _single("Add", 14, [a, helper.make_tensor_value_info("b", TensorProto.INT8, [2])],
                  [helper.make_tensor_value_info("c", TensorProto.INT8, [2])])
    with pytest.raises(StageFailed, match="its A is int8, which opset 13's Add does not accept"):
        run_pass("lower_opset", add, OnnxConfig(max_opset=13))


def test_gelu_decompositions_match_ort():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [64])
    feed = {"x": np.linspace(-4, 4, 64, dtype=np.float32)}
    for approximate in ("none", "tanh"):
        model = _single("Gelu", 20, [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64])],
                        approximate=approximate)
        out, record = run_pass("lower_opset", model, OnnxConfig(max_opset=13))
        assert "Gelu (opset 20) decomposed" in record.notes[1]
        onnx.checker.check_model(out.model, full_check=True)
        assert_same(ort_run(model, feed), ort_run(out.model, feed), atol=1e-6)


@pytest.mark.e2e
def test_real_ppocrv4_rec_lowered_to_13(real_models, tmp_path):
    rec = real_models / "ch_PP-OCRv4_rec_infer"
    raw = tmp_path / "rec.onnx"
    script = ("import paddle2onnx, sys; paddle2onnx.export(sys.argv[1], sys.argv[2], sys.argv[3], opset_version=11, "
              "auto_upgrade_opset=True, optimize_tool='None')")
    subprocess.run([sys.executable, "-c", script, str(rec / "inference.pdmodel"), str(rec / "inference.pdiparams"),
                    str(raw)], check=True, capture_output=True, timeout=300)
    model = load(raw)
    assert opset_of(model) == 14  # hard_swish makes paddle2onnx write 14

    out, record = run_pass("lower_opset", model, OnnxConfig(max_opset=13))

    path = tmp_path / "rec13.onnx"
    onnx.save(out.model, str(path))
    written = load(path)
    assert opset_of(written) <= 13
    onnx.checker.check_model(written, full_check=True)
    assert op_count(written, "HardSwish") == 0 and record.changed["HardSwish"] < 0
    rng = np.random.default_rng(3)
    for _ in range(2):
        feed = {"x": rng.uniform(-1, 1, (1, 3, 48, 320)).astype(np.float32)}
        expected, actual = ort_run(model, feed), ort_run(written, feed)
        assert_same(expected, actual, atol=1e-5)
        np.testing.assert_array_equal(expected[0].argmax(-1), actual[0].argmax(-1))

"""fp16 emulation and --layerwise on ops with several float outputs (Split, LSTM, GRU), on a real Paddle
model exported at test time; a graph npuconv rewrote and ONNX Runtime refuses is npuconv's bug."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from converter.errors import InputError
from converter.passes.base import ModelSet
from converter.passes.emulate_fp16 import EmulateFp16Config
from converter.passes.registry import get
from converter.runners.onnxruntime import OnnxRuntimeRunner, RewriteRefused


def _stage_onnx(run_cli, recipe) -> onnx.ModelProto:
    built = run_cli("onnx", recipe, "--json")
    assert built.code == 0, built.stderr
    return onnx.load(built.json()["onnx"])


def test_emulation_and_layerwise_cover_every_output_of_split_lstm_gru(multi_output_recipe, run_cli):
    recipe = multi_output_recipe()
    model = _stage_onnx(run_cli, recipe)
    ops = [n.op_type for n in model.graph.node]
    assert {"Split", "LSTM", "GRU"} <= set(ops)
    # Split 2, LSTM 3, GRU 2 outputs; every node output of this graph is a float tensor.
    outputs = [o for n in model.graph.node for o in n.output if o]
    assert sum(len([o for o in n.output if o]) for n in model.graph.node if n.op_type in ("Split", "LSTM", "GRU")) == 7

    res = run_cli("verify", recipe, "--target", "emulate:fp16", "--layerwise", "--json")
    assert res.code == 0, res.stderr
    data = res.json()
    assert data["passed"] is True and len(data["outputs"]) == 2
    assert all(0 < o["max_abs"] < 5e-2 for o in data["outputs"])  # rounded, not bit-exact: emulation ran
    layerwise = data["layerwise"]
    assert layerwise["available"] and data["first_divergent_node"] is None
    assert layerwise["compared"] == len(outputs)
    assert data["overflow_nodes"] == [] and data["keep_dtype_suggestion"] is None


@pytest.mark.parametrize("keep, first_op", [
    (["OpType::MatMul"], "Split"),
    (["OpType::MatMul", "OpType::Split", "OpType::Transpose"], "LSTM"),
    (["OpType::MatMul", "OpType::Split", "OpType::Transpose", "OpType::LSTM", "OpType::Reshape"], "GRU"),
])
def test_layerwise_names_the_first_fp16_node_among_multi_output_ops(multi_output_recipe, run_cli, keep, first_op):
    # Everything before `first_op` stays fp32, so it is the first node whose outputs are rounded; a
    # limit far below fp16's precision (2^-11 relative) must break there.
    tight = {"tolerance_fp16": {"default": {"max_abs": 1e-7, "rtol": 0.0, "cosine": 0.99}}}
    recipe = multi_output_recipe(verify=tight, om={"soc_version": "Ascend310P3", "keep_dtype": keep})
    model = _stage_onnx(run_cli, recipe)
    node = next(n for n in model.graph.node if n.op_type == first_op)
    res = run_cli("verify", recipe, "--target", "emulate:fp16", "--layerwise", "--json")
    assert res.code == 1, res.stderr
    first = res.json()["first_divergent_node"]
    assert (first["node"], first["op_type"]) == (node.name, first_op)
    assert first["output"] in node.output and first["inputs"] == [i for i in node.input if i]
    assert 0 < first["max_abs"] < 1e-1 and first["failures"]


def _split_graph(last: str = "out", mid: str = "s") -> onnx.ModelProto:
    """x [2, 4] -> Split (two float outputs a, b) -> Add -> `mid` -> Identity `last` -> y."""
    nodes = [helper.make_node("Split", ["x"], ["a", "b"], name="split", axis=1),
             helper.make_node("Add", ["a", "b"], [mid], name="add"),
             helper.make_node("Identity", [mid], ["y"], name=last)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("names", [{}, {"last": "split/round:a/to_fp16"}, {"mid": "a__fp32raw"}, {"mid": "x__fp16in"}])
def test_every_name_the_rewrite_adds_is_unique(names):
    # The graph already uses a name the rewrite would pick (a node name, a tensor name).
    model = _split_graph(**names)
    result = get("emulate_fp16").run(ModelSet.single(model), EmulateFp16Config())
    rewritten = result.models.model
    names = [n.name for n in rewritten.graph.node]
    tensors = [o for n in rewritten.graph.node for o in n.output]
    assert len(names) == len(set(names)) and len(tensors) == len(set(tensors))
    split = next(n for n in result.card["emulation"].nodes if n.op_type == "Split")
    assert split.fp16 and split.outputs == ("a", "b") and len(split.raw) == 2
    x = np.array([[1.0, 2.0, 1 / 3, 70000.0], [0.1, 0.2, 0.3, 0.4]], np.float32)
    with OnnxRuntimeRunner(rewritten.SerializeToString(), rewritten_by="test") as runner:
        y = runner.infer({"x": x})["y"]
    # by hand: fp16(1) + fp16(1/3) = 1.333 (fp16 of 1/3 is 0.33325195); 70000 overflows fp16 -> inf.
    assert y[0, 0] == np.float32(np.float16(np.float16(1.0) + np.float16(1 / 3)))
    assert np.isinf(y[0, 1])


def test_a_refused_rewrite_is_npuconvs_bug_not_the_users_file():
    model = _split_graph()
    model.graph.node[1].name = "split"  # two nodes with one name: what the old rewrite produced
    data = model.SerializeToString()
    with pytest.raises(RewriteRefused, match="bug in npuconv, not in your model"), \
            OnnxRuntimeRunner(data, rewritten_by="the fp16 emulation pass (emulate_fp16)"):
        pass
    assert not issubclass(RewriteRefused, InputError)  # the CLI treats it as an internal error
    with pytest.raises(InputError, match="cannot load the model"), OnnxRuntimeRunner(data):
        pass

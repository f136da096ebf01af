"""`int32`: int64 arithmetic and OneHot inputs in int32 where the values provably fit; graph inputs and
outputs keep their dtypes; outputs equal before and after."""

from __future__ import annotations

import numpy as np
import onnx
from pass_support import assert_same, load, ort_run, run_pass, seeded_feed
from onnx import TensorProto, helper, numpy_helper

from converter.passes.graphs import Types
from converter.passes.int32 import ARITHMETIC


def _int64_arithmetic(model: onnx.ModelProto) -> list[str]:
    types = Types(model)
    return [n.name or n.output[0] for n in model.graph.node if n.op_type in ARITHMETIC and types.dtype(n.output[0]) == TensorProto.INT64]


def _io(model):
    return [(v.name, v.type.tensor_type.elem_type) for v in (*model.graph.input, *model.graph.output)]


def test_argmax_arithmetic_and_one_hot_in_int32(exported):
    model = load(exported["one_hot"])
    assert len(_int64_arithmetic(model)) == 2  # ids + argmin, pos * pos
    before = model.SerializeToString()

    out, record = run_pass("int32", model)

    assert model.SerializeToString() == before
    narrowed = out.model
    assert _int64_arithmetic(narrowed) == []
    assert _io(narrowed) == _io(model)  # the int64 output stays int64
    # hand-computed bounds: argmax and argmin over 6 classes lie in [0, 5]
    arithmetic = sorted(n for n in record.notes if "int64 -> int32" in n)
    assert [n.split(": ")[1] for n in arithmetic] == ["int64 -> int32 (values in [0, 10])",
                                                      "int64 -> int32 (values in [0, 100])"]
    assert sum(n.startswith("OneHot '") and n.endswith(" as int32") for n in record.notes) == 1
    onehot = next(n for n in narrowed.graph.node if n.op_type == "OneHot")
    assert Types(narrowed).dtype(onehot.input[0]) == TensorProto.INT32
    onnx.checker.check_model(narrowed, full_check=True)
    for seed in range(4):
        feed = seeded_feed(model, seed, -3, 3)
        assert_same(ort_run(model, feed), ort_run(narrowed, feed))


def _step_graph(offset: int) -> onnx.ModelProto:
    """A decoder step's counter handling: next = counter + offset (an output), and a row mask
    Equal(arange(8), counter) selecting where the step's value is written."""
    nodes = [helper.make_node("Constant", [], ["offset"], value=numpy_helper.from_array(np.array([offset], np.int64))),
             helper.make_node("Add", ["counter", "offset"], ["next"]),
             helper.make_node("Constant", [], ["rows"], value=numpy_helper.from_array(np.arange(8, dtype=np.int64))),
             helper.make_node("Equal", ["rows", "counter"], ["mask"]),
             helper.make_node("Where", ["mask", "value", "buf"], ["buf_next"])]
    graph = helper.make_graph(nodes, "step", [helper.make_tensor_value_info("counter", TensorProto.INT64, [1]),
                                              helper.make_tensor_value_info("value", TensorProto.FLOAT, [8]),
                                              helper.make_tensor_value_info("buf", TensorProto.FLOAT, [8])],
                              [helper.make_tensor_value_info("next", TensorProto.INT64, [1]),
                               helper.make_tensor_value_info("buf_next", TensorProto.FLOAT, [8])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_step_counter_with_host_loop_bounds():
    model = _step_graph(offset=1)
    out, record = run_pass("int32", model, role="step")  # no bounds: the counter could be anything
    assert out.graphs["step"] is model and record.notes == ()

    loop = {"value_ranges": {"step": {"counter": [0, 7]}}}  # the host loop never passes the capacity
    out, record = run_pass("int32", model, role="step", loop=loop)
    narrowed = out.graphs["step"]
    assert record.notes == ("Add 'next': int64 -> int32 (values in [1, 8])", "Equal 'mask': takes rows, counter as int32")
    assert _int64_arithmetic(narrowed) == [] and _io(narrowed) == _io(model)
    onnx.checker.check_model(narrowed, full_check=True)
    rng = np.random.default_rng(0)
    for counter in (0, 3, 7):
        feed = {"counter": np.array([counter], np.int64), "value": rng.standard_normal(8).astype(np.float32),
                "buf": rng.standard_normal(8).astype(np.float32)}
        assert_same(ort_run(model, feed), ort_run(narrowed, feed))


def test_values_that_may_not_fit_stay_int64():
    model = _step_graph(offset=2 ** 40)
    out, record = run_pass("int32", model, role="step", loop={"value_ranges": {"step": {"counter": [0, 7]}}})
    narrowed = out.graphs["step"]
    assert _int64_arithmetic(narrowed) == ["next"]  # counter + 2^40 does not fit
    assert all("Add" not in n for n in record.notes)

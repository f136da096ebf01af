"""`repairs`: paddle2onnx output ONNX Runtime refuses becomes a graph it loads, with the source model's
outputs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from pass_support import assert_same, load, op_count, ort_run, paddle_run, run_pass, seeded_feed
from onnx import TensorProto, helper, numpy_helper


def _ort_refuses(model: onnx.ModelProto, text: str) -> None:
    with pytest.raises(Exception, match=text):
        ort_run(model, seeded_feed(model))


def test_bool_where_in_loop_body_and_top_level(exported, paddle_dirs):
    raw = load(exported["where_loop"])
    before = raw.SerializeToString()
    _ort_refuses(raw, "Where")

    out, record = run_pass("repairs", raw)

    assert raw.SerializeToString() == before  # the input model is left as it was
    assert len(record.notes) == 2
    assert sum("(in Loop '" in n and " body)" in n for n in record.notes) == 1
    assert all(n.startswith("Where '") and "cast back to bool" in n for n in record.notes)
    # each bool Where: two operand casts and one result cast; the Where nodes themselves stay
    assert record.changed == {"Cast": 6}
    assert op_count(out.model, "Where") == op_count(raw, "Where") == 2
    onnx.checker.check_model(out.model, full_check=True)

    for seed in range(3):
        feed = seeded_feed(raw, seed)
        assert_same(paddle_run(paddle_dirs["where_loop"], feed), ort_run(out.model, feed), atol=1e-6)


def test_nothing_to_repair_returns_the_same_model(exported):
    raw = load(exported["const_if"])
    out, record = run_pass("repairs", raw)
    assert out.model is raw
    assert record.notes == () and record.changed == {}


def test_where_on_numbers_is_left_alone():
    nodes = [helper.make_node("Where", ["c", "a", "b"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("c", TensorProto.BOOL, [3]),
                                           helper.make_tensor_value_info("a", TensorProto.INT32, [3]),
                                           helper.make_tensor_value_info("b", TensorProto.INT32, [3])],
                              [helper.make_tensor_value_info("y", TensorProto.INT32, [3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    out, record = run_pass("repairs", model)
    assert out.model is model and record.notes == ()


def _rank0_concat_model(other_rank: int) -> onnx.ModelProto:
    """The paddle2onnx 2.1.x pattern: a target shape concatenated from a rank-1 slice of Shape(x), a
    rank-0 Gather of it and a rank-0 constant -1 (other_rank=2 puts a rank-2 input next to them instead)."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Slice", ["s", "zero", "one"], ["head"]),
             helper.make_node("Gather", ["s", "idx"], ["dim1"], axis=0),
             helper.make_node("Concat", ["head" if other_rank == 1 else "wide", "dim1", "minus1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["y"])]
    inits = [numpy_helper.from_array(np.array([0], np.int64), "zero"),
             numpy_helper.from_array(np.array([1], np.int64), "one"),
             numpy_helper.from_array(np.array(1, np.int64), "idx"),
             numpy_helper.from_array(np.array(-1, np.int64), "minus1"),
             numpy_helper.from_array(np.array([[2]], np.int64), "wide")]
    graph = helper.make_graph(nodes, "p2o21", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])


def test_rank0_concat_inputs_are_unsqueezed():
    model = _rank0_concat_model(other_rank=1)
    with pytest.raises(Exception, match="same rank"):  # onnx raises an InferenceError here
        onnx.checker.check_model(model, full_check=True)

    out, record = run_pass("repairs", model)

    assert record.notes == ("Concat 'shape': rank-0 input(s) dim1, minus1 unsqueezed to rank 1",)
    assert record.changed == {"Unsqueeze": 2}  # opset 11: axes as an attribute
    onnx.checker.check_model(out.model, full_check=True)
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    (y,) = ort_run(out.model, {"x": x})
    np.testing.assert_array_equal(y, x.reshape(2, 3, -1))


def test_rank0_next_to_rank2_is_not_exact_and_left_alone():
    model = _rank0_concat_model(other_rank=2)
    out, record = run_pass("repairs", model)
    assert out.model is model
    assert len(record.notes) == 1 and "left alone" in record.notes[0] and "rank [2]" in record.notes[0]


@pytest.mark.e2e
def test_slanet_raw_export_runs_in_ort_after_repairs(slanet_raw, slanet_dir):
    raw = load(slanet_raw)
    _ort_refuses(raw, "Where")
    out, record = run_pass("repairs", raw)
    assert record.changed == {"Cast": 3}
    assert len(record.notes) == 1 and "(in Loop '" in record.notes[0]

    # a white page with a ruled grid, normalized as the recipe does: a table the decoder stops on early
    page = np.full((1, 3, 488, 488), 255, np.float32)
    page[:, :, ::40, :] = 0
    page[:, :, :, ::80] = 0
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
    feed = {"x": ((page / 255 - mean) / std).astype(np.float32)}
    expected = paddle_run(slanet_dir, feed)
    actual = ort_run(out.model, feed)
    assert [a.shape for a in actual] == [e.shape for e in expected]
    assert 2 < actual[1].shape[1] < 501  # stopped at the end token
    np.testing.assert_array_equal(actual[1].argmax(-1), expected[1].argmax(-1))
    for e, a in zip(expected, actual):
        np.testing.assert_allclose(a, e, rtol=0, atol=1e-4)

"""`fold_control_flow`: constant If replaced by its branch, loops with a constant path unrolled, the rest
left alone; outputs equal before and after (ONNX Runtime) and to Paddle's."""

from __future__ import annotations

import numpy as np
import onnx
from pass_support import assert_same, load, op_count, ort_run, paddle_run, run_pass, seeded_feed
from onnx import TensorProto, helper, numpy_helper

from converter.passes.control_flow import FoldConfig, FoldControlFlow
from converter.recipe.model import OnnxConfig


def _repaired(path) -> onnx.ModelProto:
    out, _ = run_pass("repairs", load(path))
    return out.model


def test_to_static_for_loop_with_constant_bound_is_unrolled(exported, paddle_dirs):
    model = _repaired(exported["where_loop"])  # ORT cannot run the raw export (bool Where)
    before = model.SerializeToString()

    out, record = run_pass("fold_control_flow", model)

    assert model.SerializeToString() == before
    assert record.notes == ("Loop 'Loop.0': unrolled, 5 steps (its path is constant at every step)",)
    folded = out.model
    assert op_count(folded, "Loop") == 0 and record.changed["Loop"] == -1
    # the body's one Linear + tanh, once per step
    assert op_count(folded, "MatMul") == op_count(folded, "Tanh") == 5
    onnx.checker.check_model(folded, full_check=True)
    for seed in range(3):
        feed = seeded_feed(model, seed)
        assert_same(ort_run(model, feed), ort_run(folded, feed))
        assert_same(paddle_run(paddle_dirs["where_loop"], feed), ort_run(folded, feed), atol=1e-6)


def test_loop_longer_than_unroll_max_is_left_alone(exported):
    model = _repaired(exported["where_loop"])
    out, record = run_pass("fold_control_flow", model, {"onnx": {"unroll_max": 4}})
    assert out.model is model and record.changed == {}
    assert record.notes == ("Loop 'Loop.0': left as a loop: it runs more than 4 steps, over onnx.unroll_max = 4 "
                            "(raise it to unroll)",)


def test_constant_if_is_replaced_by_its_branch(exported):
    model = load(exported["const_if"])
    out, record = run_pass("fold_control_flow", model)
    assert record.notes == ("If 'If.0': replaced by its then_branch (10 nodes; the condition is constant True)",)
    assert op_count(out.model, "If") == 0
    assert op_count(out.model, "MatMul") == 1  # the then-branch's Linear; the else-branch's x + 1 is gone
    onnx.checker.check_model(out.model, full_check=True)
    feed = seeded_feed(model, 1)
    # (Paddle Inference itself cannot load this program: its IR passes reject the pd_op.if)
    assert_same(ort_run(model, feed), ort_run(out.model, feed))


def test_data_dependent_loop_is_left_alone(exported):
    model = load(exported["eos_loop"])
    out, record = run_pass("fold_control_flow", model)
    assert out.model is model
    assert record.notes == () and record.changed == {}


def _trip_count_loop() -> onnx.ModelProto:
    """Loop(M=3, no condition) carrying acc [2]; the body holds If(i == 1) (acc * 10, else acc + i) and a
    scan output acc * 2: constant only once the iteration number is substituted."""
    const = lambda name, value: helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(value), name))  # noqa: E731
    then_g = helper.make_graph([const("ten", np.float32(10)), helper.make_node("Mul", ["acc", "ten"], ["t_out"])],
                               "then", [], [helper.make_tensor_value_info("t_out", TensorProto.FLOAT, [2])])
    else_g = helper.make_graph([helper.make_node("Add", ["acc", "i_f"], ["e_out"])],
                               "else", [], [helper.make_tensor_value_info("e_out", TensorProto.FLOAT, [2])])
    body = helper.make_graph(
        [helper.make_node("Cast", ["i"], ["i_f"], to=TensorProto.FLOAT),
         const("one", np.int64(1)),
         helper.make_node("Equal", ["i", "one"], ["is_one"]),
         helper.make_node("If", ["is_one"], ["acc_next"], then_branch=then_g, else_branch=else_g),
         const("two", np.float32(2)),
         helper.make_node("Mul", ["acc_next", "two"], ["row"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_next", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("row", TensorProto.FLOAT, [2])])
    graph = helper.make_graph(
        [const("m", np.int64(3)), helper.make_node("Loop", ["m", "", "x"], ["acc_final", "rows"], body=body, name="steps")],
        "trip", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("acc_final", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("rows", TensorProto.FLOAT, [3, 2])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_trip_count_loop_unrolls_stacks_scans_and_folds_the_ifs_inside():
    model = _trip_count_loop()
    out, record = run_pass("fold_control_flow", model)
    assert record.notes[0] == "Loop 'steps': unrolled, 3 steps (its path is constant at every step); 1 scan output(s) stacked"
    assert len(record.notes) == 4 and all("replaced by its" in n for n in record.notes[1:])
    assert sum("then_branch" in n for n in record.notes) == 1  # only step 1 multiplies
    assert op_count(out.model, "Loop") == op_count(out.model, "If") == 0
    onnx.checker.check_model(out.model, full_check=True)

    x = np.array([0.5, -2.0], np.float32)
    acc, rows = x.copy(), []
    for i in range(3):  # the loop by hand
        acc = acc * 10 if i == 1 else acc + i
        rows.append(acc * 2)
    got = ort_run(out.model, {"x": x})
    np.testing.assert_allclose(got[0], acc, rtol=1e-6)
    np.testing.assert_allclose(got[1], np.stack(rows), rtol=1e-6)
    assert_same(ort_run(model, {"x": x}), got)


def test_config_comes_from_the_recipe_onnx_section():
    assert FoldControlFlow().configure(None) == FoldConfig(unroll_max=64)
    assert FoldControlFlow().configure(OnnxConfig(unroll_max=8)) == FoldConfig(unroll_max=8)
    assert FoldControlFlow().configure({"onnx": {"unroll_max": 2}}) == FoldConfig(unroll_max=2)

"""The pure parts of verify: target strings, CTC decoding, the early-exit window from a model card, JUnit
counts, input files, keep_dtype rules, layerwise chunking (limits and metrics: tests/compare)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from converter.errors import InputError
from converter.passes.keep_dtype import parse_entries
from converter.recipe.verify import VerifyConfig
from converter.runners.factory import parse_target
from converter.verify.keep_dtype import cfg_text
from converter.verify.layerwise import LayerTensor, chunks
from converter.verify.parity import compare_sample
from converter.verify.report import VerifyReport
from converter.verify.tasks import ctc_decode


def test_target_strings():
    assert str(parse_target("onnx:cuda")) == "onnx:CUDAExecutionProvider"
    assert str(parse_target("onnx")) == "onnx:CPUExecutionProvider"
    assert str(parse_target("emulate:force_fp16")) == "emulate:fp16"
    assert parse_target("onnx-file:a/b.onnx").arg == "a/b.onnx"
    for bad in ("npu", "om:1", "onnx:quantum", "onnx-file:", "emulate:int4"):
        with pytest.raises(InputError):
            parse_target(bad)


def test_ctc_greedy_decoding_collapses_repeats_and_drops_blanks():
    chars = ("", "a", "b", " ")
    steps = [0, 1, 1, 0, 1, 2, 2, 0, 3]
    probs = np.eye(4, dtype=np.float32)[steps][None]
    assert ctc_decode(probs, chars) == ["aab "]


def test_rows_the_steps_wrote_limit_the_comparison():
    """A split decoder's reference records, per sample, how many rows its steps wrote; only those are
    compared (the rest of a fixed-capacity buffer is not the model's answer)."""
    ref = np.zeros((1, 6, 3), np.float32)
    ref[0, :, 0] = 1
    act = ref.copy()
    act[0, 4:] = 7.0                   # garbage in rows the steps never wrote
    facts = {"rows": [{"out": [1, 3]}, {"out": [1, 5]}]}
    (check,) = compare_sample(0, {"out": ref}, {"out": act}, VerifyConfig(), "fp32", facts).checks
    assert check.passed and check.metrics.max_abs == 0.0 and (check.window.axis, check.window.rows, check.window.of) == (1, 3, 6)
    assert check.to_json()["compared"] == "first 3 of 6 rows along axis 1"
    (full,) = compare_sample(0, {"out": ref}, {"out": act}, VerifyConfig(), "fp32", {}).checks
    assert not full.passed and full.metrics.max_abs == 7.0 and full.window is None
    (second,) = compare_sample(1, {"out": ref}, {"out": act}, VerifyConfig(), "fp32", facts).checks
    assert not second.passed and second.window.rows == 5
    (none,) = compare_sample(0, {"out": ref}, {"out": act}, VerifyConfig(), "fp32", {"rows": [{"out": [1, 0]}]}).checks
    assert not none.passed  # a sample where no row was produced fails


def test_every_output_is_checked_and_junit_counts_them(tmp_path):
    from converter.verify.junit import junit_xml

    ref = {"a": np.ones(4, np.float32), "b": np.ones(4, np.float32)}
    act = {"a": np.ones(4, np.float32), "b": np.array([1, 1, np.nan, 1], np.float32)}
    checks = [*compare_sample(0, ref, act, VerifyConfig(), "fp32").checks, *compare_sample(1, ref, ref, VerifyConfig(), "fp32").checks]
    report = VerifyReport("m", "paddle", "onnxruntime:cpu", "fp32", ("s0", "s1"), tuple(checks))
    assert not report and [c.passed for c in checks] == [True, False, True, True]
    data = report.to_json()
    assert [o["passed"] for o in data["outputs"]] == [True, False] and data["outputs"][1]["nan"] == 1
    root = ET.fromstring(junit_xml(report))
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("4", "1")
    (failed,) = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed.get("name") == "b[sample 0]" and "NaN" in failed.find("failure").get("message")


def test_npz_npy_inputs_and_their_errors(tmp_path):
    from converter.recipe.loader import load_recipe
    from converter.verify.inputs import load_samples

    x = np.random.default_rng(1).random((1, 3, 4, 4)).astype(np.float32)
    np.save(tmp_path / "one.npy", x[0])           # batch dimension added
    np.savez(tmp_path / "two.npz", x=x)
    np.savez(tmp_path / "bad.npz", y=x)
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text("name: m\nsource: {format: onnx, path: m.onnx}\ninputs: [{name: x, shape: [1, 3, 4, 4]}]\n")
    for name in ("one.npy", "two.npz"):
        (sample,) = load_samples(load_recipe(recipe_file, [f"verify.data={tmp_path / name}"]))  # CLI path: cwd-relative
        assert np.array_equal(sample.feed["x"], x)
    with pytest.raises(InputError, match="no array named 'x'"):
        load_samples(load_recipe(recipe_file, [f"verify.data={tmp_path / 'bad.npz'}"]))
    random = load_samples(load_recipe(recipe_file, ["verify.samples=3", "verify.seed=5"]))
    assert [s.label for s in random] == ["seed 5", "seed 6", "seed 7"]


def test_keep_dtype_entries_match_names_onnx_and_ascend_op_types():
    rules = parse_entries(["conv_7", "OpType::MatMulV2", "OpType::Softmax", "", "# comment"])
    assert rules.keeps("conv_7", "Conv") and rules.keeps("x", "MatMul") and rules.keeps("y", "Softmax")
    assert not rules.keeps("x", "Conv") and not rules.keeps("", "Relu")
    assert cfg_text(["a", "OpType::Relu"]) == "a\nOpType::Relu\n"


def test_layerwise_chunks_respect_the_byte_budget():
    tensors = [LayerTensor(i, f"n{i}", "Relu", f"t{i}", size) for i, size in enumerate([40, 40, 40, None, 10, 100])]
    groups = chunks(tensors, 100)
    assert [[t.tensor for t in g] for g in groups] == [["t0", "t1"], ["t2"], ["t3"], ["t4"], ["t5"]]


def _chain(scale_last: float = 1.0):
    """x [1, 64] -> n0 Relu -> n1 Tile (a 4 MB tensor) -> n2 ReduceMean -> n3 Mul(scale) -> y."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Relu", ["x"], ["t0"], name="n0"),
             helper.make_node("Tile", ["t0", "reps"], ["t1"], name="n1"),
             helper.make_node("ReduceMean", ["t1"], ["t2"], name="n2", axes=[0], keepdims=1),
             helper.make_node("Mul", ["t2", "k"], ["y"], name="n3")]
    inits = [numpy_helper.from_array(np.array([16384, 1], np.int64), "reps"),
             numpy_helper.from_array(np.array(scale_last, np.float32), "k")]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_layerwise_skips_huge_tensors_and_chunking_does_not_change_the_finding():
    from converter.compare import FP32
    from converter.verify.layerwise import first_divergence

    feed = {"x": np.random.default_rng(0).normal(size=(1, 64)).astype(np.float32)}
    reference, target = _chain(), _chain(scale_last=1.5)
    big = first_divergence(reference, target, feed, FP32, via="t", budget_mb=64)
    assert (big.first.layer.node, big.first.layer.op_type, big.compared, big.skipped) == ("n3", "Mul", 4, ())
    small = first_divergence(reference, target, feed, FP32, via="t", budget_mb=1e-4, max_tensor_mb=1.0)
    assert small.skipped == ("t1",)  # 16384 x 64 floats = 4 MB > 1 MB: not fetched
    assert (small.first.layer.node, small.compared) == ("n3", 3)
    same = first_divergence(reference, reference, feed, FP32, via="t", budget_mb=1e-4)
    assert same.first is None and same.compared == 4


def test_sequence_task_compares_tokens_up_to_the_end_token():
    from converter.recipe.verify import SequenceTask
    from converter.verify.tasks import check_task

    eye = np.eye(4, dtype=np.float32)
    ref = eye[[1, 2, 3, 0, 0]][None]          # tokens 1 2 3(end) then never-read rows
    same = eye[[1, 2, 3, 1, 1, 2]][None]     # one more row, different after the end: still the same sequence
    flipped = eye[[1, 1, 3, 0, 0]][None]     # the second token differs
    longer = eye[[1, 2, 2, 3, 0]][None]      # does not end where the reference ends
    task = SequenceTask(kind="sequence", end_token=3)
    assert check_task(task, 0, "probs", ref, same).agreement == 1.0
    assert check_task(task, 0, "probs", ref, flipped).agreement == 2 / 3
    result = check_task(task, 0, "probs", ref, longer)
    assert not result.passed and result.detail["target_tokens"] == [[1, 2, 2, 3]]

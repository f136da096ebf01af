"""npuconv lint: real PP-OCRv4 models are clean; small graphs with control flow and data-dependent
shapes are flagged, and constness analysis keeps constant-K TopK (etc.) out of the report."""

from __future__ import annotations

import numpy as np
import pytest
from om_support import MODELS, REPO, needs_models
from onnx import TensorProto, helper, numpy_helper, save

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _save(tmp_path, name, nodes, inputs, outputs, inits=(), opset=14, extra_opsets=()):
    graph = helper.make_graph(nodes, name, inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), *extra_opsets])
    model.ir_version = 8
    path = tmp_path / f"{name}.onnx"
    save(model, str(path))
    return path


def _vi(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


def _const(name, values, dtype="int64"):
    return numpy_helper.from_array(np.array(values, dtype=dtype), name)


def _rules(report, severity="block"):
    return sorted((f.rule, f.op_type) for f in report.findings if f.severity == severity)


def _lint(path, **kw):
    from converter.lint import lint_onnx

    return lint_onnx(path, **kw)


def test_topk_constant_k_is_not_flagged(tmp_path):
    path = _save(tmp_path, "topk_const", [helper.make_node("TopK", ["x", "k"], ["v", "i"], name="topk")],
                 [_vi("x", F, [1, 10])], [_vi("v", F, [1, 3]), _vi("i", I64, [1, 3])], [_const("k", [3])])
    report = _lint(path)
    assert report.findings == ()
    assert report


def test_topk_k_from_static_shape_is_constant(tmp_path):
    # K = Shape(x)[1] // 2: computed by nodes, but only from a static shape -> constant
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "one"], ["n"], axis=0, name="gather"),
        helper.make_node("Div", ["n", "two"], ["half"], name="div"),
        helper.make_node("Unsqueeze", ["half", "zero"], ["k"], name="unsq"),
        helper.make_node("TopK", ["x", "k"], ["v", "i"], name="topk"),
    ]
    path = _save(tmp_path, "topk_shape", nodes, [_vi("x", F, [1, 10])], [_vi("v", F, None), _vi("i", I64, None)],
                 [_const("one", 1), _const("two", 2), _const("zero", [0])])
    report = _lint(path)
    assert _rules(report) == []
    assert [f.rule for f in report.findings] == []  # the int64 Div is folded at compile time: no warning


def test_topk_dynamic_k_is_flagged(tmp_path):
    path = _save(tmp_path, "topk_dyn", [helper.make_node("TopK", ["x", "k"], ["v", "i"], name="topk")],
                 [_vi("x", F, [1, 10]), _vi("k", I64, [1])], [_vi("v", F, None), _vi("i", I64, None)])
    report = _lint(path)
    [finding] = report.blocking
    assert (finding.rule, finding.op_type, finding.node) == ("data-dependent-shape", "TopK", "topk")
    assert finding.message == "TopK takes k at run time, so its output shape is only known at run time"
    assert not report


def test_nonzero_and_unique_flagged(tmp_path):
    nodes = [helper.make_node("NonZero", ["x"], ["nz"], name="nonzero"),
             helper.make_node("Unique", ["x"], ["u"], name="unique")]
    path = _save(tmp_path, "nz", nodes, [_vi("x", F, [4, 4])], [_vi("nz", I64, None), _vi("u", F, None)])
    assert _rules(_lint(path)) == [("data-dependent-shape", "NonZero"), ("data-dependent-shape", "Unique")]


def test_loop_and_if_flagged(tmp_path):
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["v_in", "v_in"], ["v_out"])],
        "body", [_vi("i", I64, []), _vi("cond_in", TensorProto.BOOL, []), _vi("v_in", F, [2])],
        [_vi("cond_out", TensorProto.BOOL, []), _vi("v_out", F, [2])])
    then_g = helper.make_graph([helper.make_node("Identity", ["a"], ["t"])], "then", [], [_vi("t", F, [2])])
    else_g = helper.make_graph([helper.make_node("Neg", ["a"], ["e"])], "else", [], [_vi("e", F, [2])])
    nodes = [
        helper.make_node("Loop", ["trip", "cond", "a"], ["looped"], body=body, name="loop"),
        helper.make_node("If", ["flag"], ["chosen"], then_branch=then_g, else_branch=else_g, name="if"),
    ]
    path = _save(tmp_path, "ctrl", nodes, [_vi("a", F, [2]), _vi("flag", TensorProto.BOOL, [])],
                 [_vi("looped", F, [2]), _vi("chosen", F, [2])],
                 [_const("trip", 3), numpy_helper.from_array(np.array(True), "cond")])
    report = _lint(path)
    assert _rules(report) == [("control-flow", "If"), ("control-flow", "Loop")]


def test_scatternd_runtime_vs_constant_indices(tmp_path):
    node = helper.make_node("ScatterND", ["data", "idx", "upd"], ["out"], name="scatter")
    dyn = _save(tmp_path, "scatter_dyn", [node], [_vi("data", F, [4]), _vi("idx", I64, [1, 1]), _vi("upd", F, [1])],
                [_vi("out", F, [4])])
    const = _save(tmp_path, "scatter_const", [node], [_vi("data", F, [4]), _vi("upd", F, [1])],
                  [_vi("out", F, [4])], [_const("idx", [[2]])])
    assert _rules(_lint(dyn)) == [("dynamic-indices", "ScatterND")]
    assert _lint(const).findings == ()


def test_reshape_from_runtime_values_with_fixed_output_is_a_warning(tmp_path):
    # the shape tensor arrives at run time, but shape inference still fixes the output: warn, not block
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")]
    path = _save(tmp_path, "reshape", nodes, [_vi("x", F, [2, 3]), _vi("shape", I64, [2])], [_vi("y", F, [3, 2])])
    report = _lint(path)
    assert _rules(report) == []
    assert _rules(report, "warn") == [("data-dependent-shape", "Reshape")]


def test_dynamic_input_custom_domain_int64_and_opset(tmp_path):
    nodes = [
        helper.make_node("Add", ["ids", "ids"], ["twice"], name="add_i64"),
        helper.make_node("Mul", ["twice", "ids"], ["sq"], name="mul_i64"),
        helper.make_node("FancyOp", ["sq"], ["out"], domain="com.example", name="fancy"),
    ]
    path = _save(tmp_path, "mixed", nodes, [_vi("ids", I64, ["batch", 16])], [_vi("out", I64, None)],
                 opset=17, extra_opsets=[helper.make_opsetid("com.example", 1)])
    report = _lint(path, cann_version="6.0")
    assert _rules(report) == [("custom-domain", "FancyOp"), ("dynamic-input", None), ("opset-range", None)]
    messages = {f.rule: f.message for f in report.findings}
    assert messages["opset-range"] == "ai.onnx opset 17 is outside 9..13, what CANN 6.0 atc parses"
    assert messages["dynamic-input"].startswith("input ids [?,16] keeps dynamic axes [0]")
    assert messages["int64-arithmetic"].startswith("2 arithmetic node(s) compute in int64 (67% of the graph, int64-heavy)")
    # gears that fill that axis turn the dynamic input into an expected (info) fact
    covered = _lint(path, cann_version="8.0", gears=[{"ids": [1, 16]}, {"ids": [4, 16]}])
    assert [(f.rule, f.severity) for f in covered.findings if f.rule == "dynamic-input"] == [("dynamic-input", "info")]


def test_cli_plain_onnx_strict_and_json(cli, tmp_path):
    flagged = _save(tmp_path, "nz", [helper.make_node("NonZero", ["x"], ["nz"], name="nonzero")],
                    [_vi("x", F, [4, 4])], [_vi("nz", I64, None)])
    res = cli("lint", flagged, "--json")
    assert res.code == 0  # a report, not a gate, without --strict
    data = res.json()
    assert data["passed"] is False and data["counts"]["block"] == 1
    assert data["findings"][0]["op_type"] == "NonZero"
    strict = cli("lint", flagged, "--strict")
    assert strict.code == 1
    assert "NonZero" in strict.stdout and "1 finding(s) block a static 310-class build" in strict.stdout
    missing = cli("lint", tmp_path / "none.onnx", "--json")
    assert missing.code == 2 and missing.json()["error"]["type"] == "InputError"


def test_cli_recipe_uses_onnx_stage(cli, make_recipe):
    recipe = make_recipe({"soc_version": "Ascend310P3", "precision_mode_v2": "origin",
                          "dynamic": {"batch": [1, 2, 4]}})
    res = cli("lint", recipe, "--strict", "--json")
    assert res.code == 0, res.stderr
    data = res.json()
    assert data["inputs"] == {"x": ["?", 3, 16, 16]}
    # atc compiles each gear as a static graph: each gear is linted with its shapes, nothing stays dynamic
    assert data["gears"] == [{"x": [1, 3, 16, 16]}, {"x": [2, 3, 16, 16]}, {"x": [4, 3, 16, 16]}]
    assert [(f["rule"], f["severity"]) for f in data["findings"]] == [("dynamic-input", "info")]


@pytest.mark.e2e
@needs_models("ch_PP-OCRv4_det_infer", "ch_PP-OCRv4_rec_infer", "ch_ppocr_mobile_v2_cls_infer")
@pytest.mark.parametrize("recipe, shape", [
    ("ppocrv4_det", [1, 3, 640, 640]),
    ("ppocrv4_rec", [1, 3, 48, 320]),
    ("ppocr_cls", [1, 3, 48, 192]),
])
def test_real_ppocr_models_are_clean(recipe, shape, cli, tmp_path, monkeypatch):
    path = REPO / "recipes" / f"{recipe}.yaml"
    if not path.is_file():
        pytest.skip(f"{path} is not in this checkout")
    monkeypatch.setenv("NPUCONV_MODELS", str(MODELS))
    res = cli("lint", path, "--strict", "--json", "-o", tmp_path / "out")
    assert res.code == 0, res.stderr
    data = res.json()
    assert data["passed"] is True
    assert data["findings"] == []
    assert data["note"] is None
    assert data["inputs"] == {"x": shape}
    assert data["nodes"] > 100 and 9 <= data["opset"] <= 18


def test_cli_recipe_lints_unfixed_graph_when_onnx_stage_refuses(cli, make_recipe, tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("NonZero", ["r"], ["nz"], name="nonzero")]
    source = _save(tmp_path, "nz_src", nodes, [_vi("x", F, ["N", 4])], [_vi("nz", I64, [2, "K"])])
    recipe = make_recipe({"soc_version": "Ascend310P3", "precision_mode_v2": "origin"}, source=source,
                         inputs=[{"name": "x", "shape": [1, 4]}], preprocess=False)
    res = cli("lint", recipe, "--strict", "--json")
    assert res.code == 1, res.stderr
    data = res.json()
    assert data["note"].startswith("the onnx stage failed (")
    assert data["model"] == str(source)
    assert [(f["rule"], f["op_type"]) for f in data["findings"] if f["severity"] == "block"] == [
        ("dynamic-input", None), ("data-dependent-shape", "NonZero")]

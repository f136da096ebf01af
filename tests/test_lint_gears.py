"""lint and om agree on gears: atc compiles every gear of a gear build as a static graph, so lint judges
each gear with its static shapes (a Reshape fed by the batch dim is fine) and merges the findings."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper, save

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _reshape_by_batch(path, opset=14):
    """x [N, 3, 4] -> Reshape(x, concat(Shape(x)[0:1], [-1])) -> [N, 12]: the shape is computed from the
    batch dim at run time (what paddle2onnx writes for `flatten`)."""
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Slice", ["s", "zero", "one"], ["n"], name="batch"),
        helper.make_node("Concat", ["n", "minus1"], ["target"], axis=0, name="concat"),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="reshape"),
        helper.make_node("Relu", ["y"], ["out"], name="relu"),
    ]
    inits = [numpy_helper.from_array(np.array(v, dtype="int64"), n)
             for n, v in (("zero", [0]), ("one", [1]), ("minus1", [-1]))]
    graph = helper.make_graph(nodes, "reshape_by_batch", [helper.make_tensor_value_info("x", F, ["N", 3, 4])],
                              [helper.make_tensor_value_info("out", F, ["N", 12])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    save(model, str(path))
    return path


def _findings(report):
    return [(f.rule, f.severity, f.op_type) for f in report.findings]


def test_reshape_by_batch_blocks_without_gears_and_passes_per_gear(tmp_path):
    from converter.lint import lint_onnx

    path = _reshape_by_batch(tmp_path / "m.onnx")
    plain = lint_onnx(path)
    assert ("data-dependent-shape", "block", "Reshape") in _findings(plain)
    assert ("dynamic-input", "block", None) in _findings(plain)
    geared = lint_onnx(path, gears=[{"x": [1, 3, 4]}, {"x": [4, 3, 4]}, {"x": [8, 3, 4]}])
    assert _findings(geared) == [("dynamic-input", "info", None)]
    assert geared.findings[0].message == ("input x [?,3,4] keeps dynamic axes [0] (covered by the om.dynamic gears: "
                                          "each gear is linted with its static shapes)")
    assert geared and geared.gears == ({"x": [1, 3, 4]}, {"x": [4, 3, 4]}, {"x": [8, 3, 4]})


def test_a_block_in_every_gear_is_reported_once(tmp_path):
    from converter.lint import lint_onnx

    graph = helper.make_graph([helper.make_node("NonZero", ["x"], ["nz"], name="nonzero")], "nz",
                              [helper.make_tensor_value_info("x", F, ["N", 4])],
                              [helper.make_tensor_value_info("nz", I64, [2, "K"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    save(model, str(tmp_path / "nz.onnx"))
    report = lint_onnx(tmp_path / "nz.onnx", gears=[{"x": [1, 4]}, {"x": [2, 4]}])
    blocks = [f for f in report.findings if f.severity == "block"]
    assert [(f.rule, f.node) for f in blocks] == [("data-dependent-shape", "nonzero")]
    assert "only in gear" not in blocks[0].message
    assert not report


def test_gears_that_do_not_fit_the_onnx_block(tmp_path):
    from converter.lint import lint_onnx

    path = _reshape_by_batch(tmp_path / "m.onnx")
    rank = lint_onnx(path, gears=[{"x": [1, 3, 4]}, {"x": [2, 12]}])
    assert [(f.rule, f.severity, f.message) for f in rank.findings if f.rule == "gear-shape"] == [
        ("gear-shape", "block", "gear x:2,12 gives input x rank 2, the ONNX input is [?,3,4]")]
    fixed = lint_onnx(path, gears=[{"x": [1, 3, 4]}, {"x": [2, 5, 4]}])
    assert [(f.rule, f.message) for f in fixed.findings if f.rule == "gear-shape"] == [
        ("gear-shape", "gear x:2,5,4 sets axes [1] of input x, which the ONNX fixes ([?,3,4]); rebuild the ONNX "
                       "with the gear axes symbolic")]


def test_gear_shapes_follow_atc_fill_order():
    """atc fills a --dynamic_dims profile into the -1s of --input_shape: inputs in recipe order, each
    input's axes ascending (whatever order om.dynamic.axes lists them in)."""
    from converter.recipe.model import Recipe
    from converter.stages.atc.validate import check_config

    base = {"name": "t", "source": {"format": "onnx", "path": "m.onnx"},
            "inputs": [{"name": "image", "shape": [1, 3, 32, 64]}, {"name": "feats", "shape": [1, 10]}]}
    dims = Recipe.model_validate({**base, "om": {"soc_version": "Ascend310P3", "input_format": "ND", "dynamic": {
        "dims": [[2, 128, 3], [4, 256, 5]], "axes": {"feats": [0], "image": [3, 0]}}}})
    _, plan = check_config(dims, dims.om)
    assert plan.gears == ({"image": (2, 3, 32, 128), "feats": (3, 10)}, {"image": (4, 3, 32, 256), "feats": (5, 10)})
    batch = Recipe.model_validate({**base, "om": {"soc_version": "Ascend310P3", "dynamic": {"batch": [1, 8]}}})
    _, plan = check_config(batch, batch.om)
    assert plan.gears == ({"image": (1, 3, 32, 64), "feats": (1, 10)}, {"image": (8, 3, 32, 64), "feats": (8, 10)})
    sizes = Recipe.model_validate({**base, "om": {"soc_version": "Ascend310P3",
                                                  "dynamic": {"image_size": [[32, 64], [48, 96]]}}})
    _, plan = check_config(sizes, sizes.om)
    assert plan.gears == ({"image": (1, 3, 32, 64), "feats": (1, 10)}, {"image": (1, 3, 48, 96), "feats": (1, 10)})


def test_real_paddle_model_batch_gears_om_and_lint_agree(paddle_models, make_recipe, run_cli):
    """The CRNN's flatten becomes a Reshape whose shape is computed from the batch dim: `om --dry-run`
    accepts the batch gears, and so must `lint --strict`."""
    gears = [1, 4, 8]
    recipe = make_recipe("crnn", paddle_models["crnn"], om={"soc_version": "Ascend310P3", "precision_mode_v2": "origin",
                                                            "dynamic": {"batch": gears}})
    om = run_cli("om", recipe, "--dry-run", "--json")
    assert om.code == 0, om.stderr
    assert "--dynamic_batch_size=1,4,8" in om.json()["argv"]
    lint = run_cli("lint", recipe, "--strict", "--json")
    assert lint.code == 0, lint.stderr
    data = lint.json()
    assert data["inputs"] == {"x": ["?", 3, 32, 64]}
    assert data["gears"] == [{"x": [b, 3, 32, 64]} for b in gears]
    assert [(f["rule"], f["severity"]) for f in data["findings"]] == [("dynamic-input", "info")]

"""`npuconv export` on real tiny Paddle modules written by the test: the saved model runs in Paddle
Inference and computes what the dygraph layer computes (run here, in the test), a rerun is a cache hit,
and every failure is one clear error naming what to fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from export_support import NET_SPEC, load_module, save_weights, write_project, write_recipe

from converter.pipeline.runner import run_stage
from converter.stage import StageRun
from converter.recipe import load_recipe
from converter.stages.export import BuilderImportError, ExportSection, ExportStage, NotALayer

NET = {"builder": "tinynet:Net", "kwargs": {"hidden": 8}, "weights": "net.pdparams", "input_spec": NET_SPEC}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    folder = write_project(tmp_path_factory.mktemp("user") / "proj")
    save_weights(folder)
    return folder


def _export(recipe: Path):
    r = load_recipe(recipe)
    return run_stage(StageRun("export", ExportStage(), ExportSection.from_recipe(r)), {})


def _paddle_inference(model: Path, params: Path, x: np.ndarray) -> list[np.ndarray]:
    import paddle.inference as pi

    config = pi.Config(str(model), str(params))
    config.disable_gpu()
    config.disable_glog_info()
    predictor = pi.create_predictor(config)
    predictor.get_input_handle(predictor.get_input_names()[0]).copy_from_cpu(x)
    predictor.run()
    return [predictor.get_output_handle(n).copy_to_cpu() for n in predictor.get_output_names()]


def test_saved_model_matches_the_dygraph_layer_and_reruns_from_cache(project, tmp_path, run_cli):
    import paddle

    recipe = write_recipe(project, "tiny", NET, out=tmp_path / "out")
    res = run_cli("export", recipe, "--json")
    assert res.code == 0, res.stderr
    got = res.json()
    folder = tmp_path / "out" / "tiny_static"
    assert got["passed"] is True and got["cached"] is False and got["parity"]["passed"] is True
    assert (got["model"], got["params"], got["card"]) == (str(folder / "inference.json"), str(folder / "inference.pdiparams"),
                                                          str(folder / "inference.card.json"))
    assert got["input_spec"] == [{"name": "x", "shape": [-1, 3, -1, -1], "dtype": "float32"}]
    assert [(o["shape"], o["dtype"]) for o in got["outputs"]] == [([-1, 5], "float32"), ([-1, 8], "float32")]
    assert got["paddle"] == paddle.__version__

    # The dygraph reference, computed here: the user's module, the user's weights, an input whose batch,
    # height and width all differ from the recipe's fixed shape (the saved model keeps them dynamic).
    tinynet = load_module(project / "tinynet.py", "tinynet_reference")
    with paddle.utils.unique_name.guard():
        layer = tinynet.Net(hidden=8)
    layer.set_state_dict(paddle.load(str(project / "net.pdparams")))
    layer.eval()
    x = np.random.default_rng(3).uniform(-1, 1, (3, 3, 20, 28)).astype("float32")
    with paddle.no_grad():
        expected = [t.numpy() for t in layer(paddle.to_tensor(x))]
    actual = _paddle_inference(folder / "inference.json", folder / "inference.pdiparams", x)
    assert [a.shape for a in actual] == [(3, 5), (3, 8)]
    for e, a in zip(expected, actual):
        assert float(np.abs(e - a).max()) <= 1e-6
    assert float(np.abs(expected[1]).max()) > 1e-2  # a real signal, not zeros compared with zeros

    again = run_cli("export", recipe, "--json")
    assert again.code == 0, again.stderr
    assert again.json()["cached"] is True and again.json()["key"] == got["key"]
    assert "starting paddle" not in again.stderr


def test_builder_module_that_fails_to_import_names_the_missing_dependency(project, tmp_path):
    with pytest.raises(BuilderImportError) as exc:
        _export(write_recipe(project, "dep", {**NET, "builder": "brokendep:build"}))
    assert exc.value.message == ("importing the builder module 'brokendep' failed: ModuleNotFoundError: No module named "
                                 f"'npuconv_test_no_such_dependency' at {project / 'brokendep.py'}:2: "
                                 "import npuconv_test_no_such_dependency  # noqa: F401")
    assert "install 'npuconv_test_no_such_dependency'" in exc.value.hint


def test_builder_that_returns_no_layer(project):
    with pytest.raises(NotALayer) as exc:
        _export(write_recipe(project, "pair", {**NET, "builder": "tinynet:build_pair"}))
    assert exc.value.message == "tinynet:build_pair(hidden=8) returned a tuple of 2 (Net, dict), not a paddle.nn.Layer"
    assert "return the model itself" in exc.value.hint


def test_weights_that_do_not_fit_list_every_key(project, run_cli):
    res = run_cli("export", write_recipe(project, "bad", {**NET, "weights": "bad.pdparams"}), "--json")
    assert res.code == 2
    assert "Traceback" not in res.stderr
    error = res.json()["error"]
    assert error["type"] == "WeightsMismatch"
    assert error["message"] == (f"export.weights {project / 'bad.pdparams'} does not fit the model: "
                                "1 missing (head.bias [5]); 1 unexpected (extra.scale [3]); "
                                "1 mis-shaped (head.weight: weights [16, 5], model [8, 5])")
    assert error["details"] == {
        "missing": [{"key": "head.bias", "shape": [5]}],
        "unexpected": [{"key": "extra.scale", "shape": [3]}],
        "mis_shaped": [{"key": "head.weight", "weights": [16, 5], "model": [8, 5]}],
        "mis_typed": [],
    }


def test_code_to_static_cannot_convert_shows_the_line(project, run_cli):
    rows = write_recipe(project, "rows", {"builder": "tinynet:Rows", "weights": "rows.pdparams",
                                          "input_spec": [{"name": "x", "shape": [-1, 4]}]},
                        inputs=[{"name": "x", "shape": [2, 4]}])
    res = run_cli("export", rows)
    assert res.code == 2
    assert "Traceback" not in res.stderr
    lineno = next(i for i, line in enumerate((project / "tinynet.py").read_text().splitlines(), 1) if ".tolist()" in line)
    error = next(line for line in res.stderr.splitlines() if line.startswith("error:"))
    assert error.startswith(f"error: paddle.jit.to_static cannot convert {project / 'tinynet.py'}:{lineno} (in forward): "
                            "for row in self.fc(x).tolist(): -- AssertionError: 'tolist' only can be called by "
                            "`paddle.Tensor` in dynamic graph mode")
    assert f">  {lineno:4d} |         for row in self.fc(x).tolist():" in res.stderr  # the source shown in context
    assert "hint: rewrite that line with paddle ops on tensors" in res.stderr


def test_saved_model_that_computes_something_else_fails_the_check(project, tmp_path, run_cli):
    recipe = write_recipe(project, "branches", {"builder": "tinynet:Branches", "weights": "rows.pdparams",
                                                "input_spec": [{"name": "x", "shape": [-1, 4]}]},
                          inputs=[{"name": "x", "shape": [2, 4], "range": [0.5, 1.0]}], out=tmp_path / "out")
    res = run_cli("export", recipe, "--json")
    assert res.code == 1, res.stderr
    got = res.json()
    assert got["passed"] is False and got["parity"]["passed"] is False
    assert got["parity"]["reference"] == "dygraph" and got["parity"]["inputs"] == {"x": [2, 4]}
    assert got["parity"]["outputs"]["fetch_name_0"]["max_abs"] > 1e-2  # the saved graph doubles what the dygraph code gives
    assert Path(got["model"]).is_file() and Path(got["params"]).is_file()  # written all the same, for inspection


def test_a_failed_export_check_stops_onnx_and_om(project, tmp_path, run_cli):
    recipe = write_recipe(project, "branches", {"builder": "tinynet:Branches", "weights": "rows.pdparams",
                                                "input_spec": [{"name": "x", "shape": [-1, 4]}]},
                          inputs=[{"name": "x", "shape": [2, 4], "range": [0.5, 1.0]}], out=tmp_path / "out")
    for args in (("onnx",), ("om", "--dry-run", "--set", "om={soc_version: Ascend310P3, precision_mode_v2: origin}")):
        res = run_cli(*args, recipe, "--json")
        assert res.code == 1, res.stderr  # the check's exit code, not a crash reading the export as an ONNX
        error = res.json()["error"]
        assert error["type"] == "CheckFailed"
        assert error["message"].startswith("the export stage's check failed for ") and "onnx stage was not run" in error["message"]
        assert error["hint"].startswith(f"see `npuconv export {recipe}` for the numbers")


def test_onnx_stage_reads_the_export_artifact(project, tmp_path, run_cli):
    recipe = write_recipe(project, "tiny", NET, out=tmp_path / "out")
    res = run_cli("onnx", recipe, "--json")
    assert res.code == 0, res.stderr
    got = res.json()
    assert got["passed"] is True and got["dynamic_dims"] == []
    assert [o["shape"] for o in got["outputs"]] == [[1, 5], [1, 8]]  # the fixed `inputs:` shape, batch 1
    assert (tmp_path / "out" / "tiny_static" / "inference.json").is_file()  # export ran first (or came from the cache)

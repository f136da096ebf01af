"""The `export:` recipe section and what the export stage keys on, without starting paddle."""

from __future__ import annotations

from pathlib import Path

import pytest
from export_support import NET_SPEC, write_project, write_recipe

from converter.errors import RecipeError
from converter.pipeline.runner import run_stage, stage_key
from converter.stage import StageRun
from converter.recipe import load_recipe
from converter.stages.export import BuilderImportError, ExportSection, ExportStage
from converter.stages.export_weights import prefix_hint

EXPORT = {"builder": "tinynet:Net", "kwargs": {"hidden": 8}, "weights": "net.pdparams", "input_spec": NET_SPEC}


@pytest.fixture
def project(tmp_path) -> Path:
    folder = write_project(tmp_path / "proj")
    (folder / "net.pdparams").write_bytes(b"weights v1")  # the key reads bytes only; paddle never sees it here
    return folder


def test_export_section_loads_with_paths_relative_to_the_recipe(project):
    r = load_recipe(write_recipe(project, "m", EXPORT))
    assert r.source is None
    cfg = r.export
    assert (cfg.module, cfg.attribute, cfg.kwargs) == ("tinynet", "Net", {"hidden": 8})
    assert cfg.weights == project / "net.pdparams"
    assert cfg.search_path == [project]
    assert [(s.name, s.shape, s.dtype) for s in cfg.input_spec] == [("x", [-1, 3, -1, -1], "float32")]
    assert r.input_shapes() == {"x": [1, 3, 16, 24]}  # inputs: still the fixed shapes the NPU sees
    assert cfg.key_json() == {"builder": "tinynet:Net", "kwargs": {"hidden": 8},
                              "input_spec": [{"name": "x", "shape": [-1, 3, -1, -1], "dtype": "float32"}]}


def test_input_spec_defaults_to_the_fixed_inputs(project):
    export = {k: v for k, v in EXPORT.items() if k != "input_spec"}
    inputs = [{"name": "a", "shape": [2, 4], "dtype": "int64"}, {"name": "b", "shape": [2, 3, 8]}]
    r = load_recipe(write_recipe(project, "m", export, inputs=inputs))
    assert [(s.name, s.shape, s.dtype) for s in r.export.input_spec] == [("a", [2, 4], "int64"), ("b", [2, 3, 8], "float32")]


def test_exactly_one_of_source_and_export(project):
    both = project / "both.yaml"
    both.write_text("name: m\nsource: {format: onnx, path: m.onnx}\ninputs: [{name: x, shape: [1, 3, 16, 24]}]\n"
                    "export:\n  builder: tinynet:Net\n  weights: net.pdparams\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(both)
    assert exc.value.message == (f"{both}:4: export: a recipe reads a saved model (`source:`) or builds one from "
                                 f"dygraph code (`export:`), not both (source: is at {both}:2)")
    neither = project / "neither.yaml"
    neither.write_text("name: m\ninputs: [{name: x, shape: [1]}]\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(neither)
    assert exc.value.message == f"{neither}: source: required key is missing (or `export:` to build the model from dygraph code)"


def test_input_spec_must_take_the_fixed_inputs(project):
    spec = [{"name": "x", "shape": [-1, 3, 32, -1], "dtype": "int64"}, {"name": "y", "shape": [-1]}]
    with pytest.raises(RecipeError) as exc:
        load_recipe(write_recipe(project, "m", {**EXPORT, "input_spec": spec}))
    msg = exc.value.message
    assert "m.yaml:" in msg and ": export: " in msg
    assert "input_spec names ['x', 'y'] differ from the inputs ['x']" in msg
    assert "input_spec.0 (x) [-1, 3, 32, -1] cannot take the fixed shape [1, 3, 16, 24]" in msg
    assert "input_spec.0 (x) is int64, inputs says float32" in msg
    with pytest.raises(RecipeError, match=r"input_spec.0 \(x\) has 2 dims, inputs gives \[1, 3, 16, 24\]"):
        load_recipe(write_recipe(project, "m", {**EXPORT, "input_spec": [{"name": "x", "shape": [-1, 3]}]}))


def test_builder_and_dims_are_checked_with_lines(project):
    path = write_recipe(project, "m", {**EXPORT, "builder": "tinynet.Net", "input_spec": [{"name": "x", "shape": [0, 3, -1, -1]}]})
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    msg = exc.value.message
    assert "export.builder: Value error, expected module:function or module:Class" in msg
    assert "export.input_spec.0.shape: Value error, a dim is >= 1, or -1 / null for a dynamic dim; got 0" in msg
    with pytest.raises(RecipeError, match=r"--model-dir applies to `source.format: paddle` recipes only") as exc:
        load_recipe(write_recipe(project, "m", EXPORT), model_dir=project)
    assert "--set export.weights=FILE" in exc.value.hint


def _key(recipe: Path, *overrides: str) -> str:
    r = load_recipe(recipe, overrides)
    return stage_key(StageRun("export", ExportStage(), ExportSection.from_recipe(r)), {})


def test_key_follows_sources_weights_and_sections_not_paths(project, tmp_path):
    recipe = write_recipe(project, "m", EXPORT)
    first = _key(recipe)
    assert _key(recipe, "bench.iterations=5", f"output_dir={tmp_path / 'elsewhere'}") == first
    assert _key(recipe, "export.kwargs.hidden=16") != first
    assert _key(recipe, "inputs.0.shape=[1,3,16,32]") != first  # the check runs on the fixed inputs
    (project / "net.pdparams").write_bytes(b"weights v2")
    second = _key(recipe)
    assert second != first
    (project / "layers.py").write_text("# a sibling module the builder might import\n")
    third = _key(recipe)
    assert third != second
    (project / "notes.txt").write_text("not python")
    assert _key(recipe) == third
    moved = tmp_path / "moved"
    project.rename(moved)
    assert _key(moved / "m.yaml") == third  # digests and relative names: moving the folder keeps the key


def test_builder_that_cannot_be_found_fails_before_paddle_starts(project, tmp_path, run_cli):
    recipe = write_recipe(project, "m", {**EXPORT, "builder": "tinynett:Net"}, out=tmp_path / "out")
    r = load_recipe(recipe)
    with pytest.raises(BuilderImportError) as exc:
        run_stage(StageRun("export", ExportStage(), ExportSection.from_recipe(r)), {})
    assert exc.value.message.startswith(f"cannot import the builder module 'tinynett': no module named 'tinynett' "
                                        f"in {project} (export.search_path) nor among the installed packages of ")
    assert exc.value.details == {"module": "tinynett", "missing": "tinynett", "search_path": [str(project)]}
    res = run_cli("export", recipe, "--json")
    assert res.code == 2
    assert res.json()["error"]["type"] == "BuilderImportError"
    assert "Traceback" not in res.stderr
    sub = write_recipe(project, "s", {**EXPORT, "builder": "tinynet.heads:build"})
    with pytest.raises(BuilderImportError, match=r"'tinynet.heads': no module named 'tinynet.heads' in"):
        run_stage(StageRun("export", ExportStage(), ExportSection.from_recipe(load_recipe(sub))), {})


def test_weights_saved_from_a_wrapper_get_a_prefix_hint():
    model = {"backbone.conv.weight", "backbone.conv.bias", "head.fc.weight"}
    wrapped = {"model." + k for k in model}
    assert prefix_hint(model, wrapped) == ("the file's keys carry the prefix 'model.': save the matching layer's "
                                           "state_dict(), or name a builder that returns that layer")
    assert prefix_hint({"_layers." + k for k in model}, model).startswith("the model's keys carry the prefix '_layers.'")
    assert prefix_hint({"head.fc.weight"}, {"neck.fc.weight"}) is None


def test_export_needs_an_export_section(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: m1\nsource: {format: onnx, path: m.onnx}\ninputs: [{name: x, shape: [1, 4]}]\n")
    with pytest.raises(RecipeError, match=r"recipe m1 has no `export:` section: npuconv export builds a model from dygraph code"):
        ExportSection.from_recipe(load_recipe(path))

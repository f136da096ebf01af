"""Recipe loading and validation: every error names the file, the line, the key and what is allowed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from converter.errors import RecipeError
from converter.recipe import load_recipe

REPO = Path(__file__).resolve().parent.parent
GOOD = """\
name: m1
source:
  format: paddle
  model_dir: models/m1
inputs:
  - name: x
    shape: [1, 3, 48, 320]
    range: [-1, 1]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("recipe", ["ppocrv4_det", "ppocrv4_rec", "ppocr_cls"])
def test_shipped_recipes_validate(recipe):
    r = load_recipe(REPO / "recipes" / f"{recipe}.yaml")
    assert r.name == recipe
    assert r.source.format == "paddle"
    # the shipped recipes read ${NPUCONV_MODELS:-../models}, relative to recipes/
    models = Path(os.path.normpath(REPO / "recipes" / os.environ.get("NPUCONV_MODELS", "../models")))
    assert r.source.model_dir == models / r.source.model_dir.name
    assert r.output_dir == REPO / "build" / recipe
    expected = {"ppocrv4_det": [1, 3, 640, 640], "ppocrv4_rec": [1, 3, 48, 320], "ppocr_cls": [1, 3, 48, 192]}
    assert r.input_shapes() == {"x": expected[recipe]}


def test_defaults_and_relative_paths(tmp_path):
    r = load_recipe(write(tmp_path, GOOD))
    assert r.source.model_dir == tmp_path / "models" / "m1"
    assert r.source.params_file() == tmp_path / "models" / "m1" / "inference.pdiparams"
    assert r.output_dir == tmp_path / "build" / "m1"
    assert (r.onnx.opset, r.onnx.disable_passes, r.onnx.parity) == (11, [], True)
    assert r.inputs[0].dtype == "float32" and r.inputs[0].range == (-1.0, 1.0)
    assert r.om is None and r.preprocess is None


def test_unknown_key_names_line_key_and_suggestion(tmp_path):
    path = write(tmp_path, GOOD + "onnx:\n  opset: 13\n  partiy: true\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    msg = exc.value.message
    assert msg.startswith(f"{path}:11: onnx.partiy: unknown key (did you mean 'parity'?)")
    assert "allowed: opset, parity, disable_passes, unroll_max, max_opset, decoder" in msg
    assert "npuconv schema" in exc.value.hint


def test_unknown_key_inside_tagged_union(tmp_path):
    path = write(tmp_path, GOOD.replace("  model_dir: models/m1\n", "  model_dir: models/m1\n  modle_file: x\n"))
    with pytest.raises(RecipeError, match=r"r.yaml:5: source.modle_file: unknown key \(did you mean 'model_filename'\?\); "
                                          r"allowed: format, model_dir, model_filename, params_filename"):
        load_recipe(path)


@pytest.mark.parametrize("bad, expected", [
    ("name: 'bad name!'", r"r.yaml:1: name: String should match pattern"),
    ("name: m1\nsource: {format: tflite, path: x}", r"source: Input tag 'tflite' found using 'format' does not match any of the expected tags: 'paddle', 'onnx'"),
])
def test_bad_values_name_allowed_values(tmp_path, bad, expected):
    text = GOOD.replace("name: m1", bad) if bad.startswith("name: '") else bad + "\ninputs: [{name: x, shape: [1]}]\n"
    with pytest.raises(RecipeError, match=expected):
        load_recipe(write(tmp_path, text))


def test_dims_must_be_positive_and_opset_in_range(tmp_path):
    path = write(tmp_path, GOOD.replace("[1, 3, 48, 320]", "[1, 3, 0, 320]") + "onnx: {opset: 25}\n")
    with pytest.raises(RecipeError) as exc:
        load_recipe(path)
    assert "r.yaml:7: inputs.0.shape.2: Input should be greater than or equal to 1 (got 0)" in exc.value.message
    assert "onnx.opset: Input should be less than or equal to 21 (got 25)" in exc.value.message


def test_missing_required_keys(tmp_path):
    with pytest.raises(RecipeError) as exc:
        load_recipe(write(tmp_path, "name: m1\n"))
    assert "source: required key is missing" in exc.value.message
    assert "inputs: required key is missing" in exc.value.message


def test_broken_yaml_names_line_and_column(tmp_path):
    with pytest.raises(RecipeError, match=r"r.yaml:4:2: invalid YAML: expected <block end>"):
        load_recipe(write(tmp_path, "name: m1\nsource:\n  format: paddle\n model_dir: x\n"))


def test_env_expansion_with_default_and_unset(tmp_path, monkeypatch):
    text = GOOD.replace("models/m1", "${MODELS_HOME:-fallback}/m1")
    monkeypatch.delenv("MODELS_HOME", raising=False)
    assert load_recipe(write(tmp_path, text)).source.model_dir == tmp_path / "fallback" / "m1"
    monkeypatch.setenv("MODELS_HOME", "/srv/models")
    assert load_recipe(write(tmp_path, text)).source.model_dir == Path("/srv/models/m1")
    with pytest.raises(RecipeError, match=r"r.yaml:4: source.model_dir: environment variable NOT_SET_ANYWHERE is not set"):
        load_recipe(write(tmp_path, GOOD.replace("models/m1", "${NOT_SET_ANYWHERE}/m1")))


def test_set_overrides_are_typed_and_validated(tmp_path):
    path = write(tmp_path, GOOD)
    r = load_recipe(path, ["onnx.opset=13", "inputs.0.shape=[1,3,48,640]", "onnx.disable_passes=[simplify]"])
    assert r.onnx.opset == 13 and r.onnx.disable_passes == ["simplify"]
    assert r.inputs[0].shape == [1, 3, 48, 640]
    with pytest.raises(RecipeError, match=r"onnx.opset: Input should be less than or equal to 21"):
        load_recipe(path, ["onnx.opset=99"])
    with pytest.raises(RecipeError, match=r"--set inputs.3.shape: inputs has no item 3"):
        load_recipe(path, ["inputs.3.shape=[1]"])
    with pytest.raises(RecipeError, match=r"expected KEY.PATH=VALUE"):
        load_recipe(path, ["onnx.opset"])


def test_cli_paths_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = load_recipe(write(tmp_path, GOOD), model_dir="elsewhere/m", output_dir="out")
    assert r.source.model_dir == tmp_path / "elsewhere" / "m"
    assert r.output_dir == tmp_path / "out"


def test_duplicate_input_names_rejected(tmp_path):
    text = GOOD + "  - name: x\n    shape: [1]\n"
    with pytest.raises(RecipeError, match=r"input names must be unique, repeated: \['x'\]"):
        load_recipe(write(tmp_path, text))


def test_schema_command_lists_keys(run_cli):
    res = run_cli("schema")
    assert res.code == 0
    schema = json.loads(res.stdout)
    assert set(schema["required"]) == {"name", "inputs"}
    assert schema["oneOf"] == [{"required": ["source"]}, {"required": ["export"]}]
    assert {"source", "export", "onnx", "preprocess", "om", "verify", "bench", "output_dir"} <= set(schema["properties"])


def test_error_inside_a_list_of_variants_has_no_union_noise(tmp_path):
    text = GOOD + "om:\n  - variant: a\n    soc_version: Ascend310P3\n    precison_mode_v2: origin\n"
    with pytest.raises(RecipeError) as exc:
        load_recipe(write(tmp_path, text))
    assert exc.value.message.startswith(f"{tmp_path / 'r.yaml'}:12: om.0.precison_mode_v2: unknown key "
                                        "(did you mean 'precision_mode_v2'?)")
    assert "valid dictionary" not in exc.value.message


VARIANTS = GOOD + """\
om:
  - variant: a
    soc_version: Ascend310P3
    cann_version: "8.0"
"""


def test_set_value_for_a_string_field_stays_a_string(tmp_path):
    path = write(tmp_path, VARIANTS)
    r = load_recipe(path, ["om.0.cann_version=6.0", "om.0.variant=1.10", "name=yes"])
    assert (r.om[0].cann_version, r.om[0].variant, r.name) == ("6.0", "1.10", "yes")
    # typed fields still get YAML values; null unsets an optional key
    r = load_recipe(path, ["om.0.extra_args={log: error, deterministic: 1}", "om.0.cann_version=null",
                           "verify.tolerance.default.max_abs=0.001"])
    assert r.om[0].extra_args == {"log": "error", "deterministic": 1}
    assert r.om[0].cann_version is None
    assert r.verify.tolerance["default"].max_abs == 0.001


def test_set_errors_name_the_set_not_a_recipe_line(tmp_path):
    path = write(tmp_path, VARIANTS)
    with pytest.raises(RecipeError) as exc:
        load_recipe(path, ["om.0.cann_version=v8"])
    assert exc.value.message == (r"--set om.0.cann_version=v8: om.0.cann_version: String should match pattern "
                                 r"'^\d+\.\d+' (got 'v8')")
    with pytest.raises(RecipeError) as exc:
        load_recipe(path, ["inputs.0.shape=[1,3,0,320]"])
    assert exc.value.message == ("--set inputs.0.shape=[1,3,0,320]: inputs.0.shape.2: Input should be greater than or "
                                 "equal to 1 (got 0)")
    with pytest.raises(RecipeError) as exc:
        load_recipe(path, ["om.0.precison_mode_v2=origin"])
    assert exc.value.message.startswith("--set om.0.precison_mode_v2=origin: om.0.precison_mode_v2: unknown key "
                                        "(did you mean 'precision_mode_v2'?)")
    # an error in the recipe itself still names its line, next to a --set elsewhere
    with pytest.raises(RecipeError) as exc:
        load_recipe(write(tmp_path, VARIANTS.replace('"8.0"', "v8")), ["onnx.opset=13"])
    assert exc.value.message.startswith(f"{path}:12: om.0.cann_version: String should match pattern")


def test_set_paths_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    recipes, work = tmp_path / "recipes", tmp_path / "work"
    recipes.mkdir()
    work.mkdir()
    path = recipes / "r.yaml"
    path.write_text(GOOD + "verify:\n  data: recipe_data\n")
    monkeypatch.chdir(work)
    r = load_recipe(path, ["verify.data=saved", "source.model_dir=m/m1", "output_dir=out",
                           "verify.task={kind: ctc, dict: keys.txt}"])
    assert r.verify.data == work / "saved"
    assert r.source.model_dir == work / "m" / "m1"
    assert r.output_dir == work / "out"
    assert r.verify.task.dict == work / "keys.txt"
    assert load_recipe(path, ["verify.data=/abs/data"]).verify.data == Path("/abs/data")
    # recipe paths stay relative to the recipe file
    assert load_recipe(path).verify.data == recipes / "recipe_data"


def test_verify_save_then_set_data_replays_from_another_directory(tmp_path, run_cli):
    """The README's replay: `verify --save DIR`, then `--set verify.data=DIR`, run from a directory that
    is not the recipe's."""
    from onnx import TensorProto, helper, save

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "relu",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    (tmp_path / "recipes").mkdir()
    save(model, str(tmp_path / "recipes" / "relu.onnx"))
    recipe = tmp_path / "recipes" / "relu.yaml"
    recipe.write_text("name: relu\nsource: {format: onnx, path: relu.onnx}\ninputs: [{name: x, shape: [1, 4], "
                      "range: [-1, 1]}]\nonnx: {parity: false}\n")
    work = tmp_path / "work"
    work.mkdir()
    saved = run_cli("verify", recipe, "--target", "onnx:cpu", "--save", "saved", "--json", cwd=work)
    assert saved.code == 0, saved.stderr
    assert (work / "saved" / "inputs" / "0000.npz").is_file()
    replay = run_cli("verify", recipe, "--target", "onnx:cpu", "--set", "verify.data=saved", "--json", cwd=work)
    assert replay.code == 0, replay.stderr
    assert replay.json()["samples"] == ["0000.npz"]

"""`--target om`: one clear error where the Ascend runtime is absent (everywhere here), and the runner's
plumbing through a FAKE ais_bench package (an "OM" that is really the ONNX, run by ONNX Runtime)."""

from __future__ import annotations

import json
import shutil

import pytest


def _om_copy(recipe_dir, run_cli, recipe):
    """The onnx stage's ONNX, copied to where the om stage writes the OM (the fake runtime runs ONNX)."""
    built = run_cli("onnx", recipe, "--json")
    assert built.code == 0, built.stderr
    om = recipe_dir / "out" / "overflow.om"
    shutil.copyfile(built.json()["onnx"], om)
    return om


def test_without_the_ascend_runtime_one_error_line_and_exit_2(overflow_recipe, run_cli, tmp_path):
    recipe = overflow_recipe()
    res = run_cli("verify", recipe, "--target", "om")
    assert res.code == 2
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Ascend runtime is not available" in errors[0] and "ais_bench" in errors[0]
    assert "Traceback" not in res.stderr
    data = run_cli("verify", recipe, "--target", "om", "--json").json()
    assert data["passed"] is False and data["error"]["type"] == "ToolNotFound"
    assert not (tmp_path / "out" / "overflow.onnx").exists()  # failed before building anything


@pytest.mark.parametrize("om, precision, passed", [
    ("{soc_version: Ascend310P3, precision_mode_v2: origin}", "fp32", True),
    ("{soc_version: Ascend310P3}", "fp16", True),  # atc's default is fp16: fp16 tolerances apply
])
def test_fake_ais_bench_runs_the_om_and_outputs_pair_by_position(overflow_recipe, run_cli, fake_ais_bench, tmp_path,
                                                                 om, precision, passed):
    recipe = overflow_recipe(low=0.0, high=1.0, om=om)
    om_file = _om_copy(tmp_path, run_cli, recipe)
    res = run_cli("verify", recipe, "--target", "om", "--json", "--samples", "2", env=fake_ais_bench)
    assert res.code == 0, res.stderr
    data = res.json()
    assert data["passed"] is passed and data["precision"] == precision
    assert data["outputs"][0]["tolerance"]["source"] == f"builtin:{precision}"
    assert [c["target_output"] for c in data["checks"]] == ["output_0", "output_0"]
    assert data["outputs"][0]["max_abs"] == 0.0  # same graph, same runtime underneath
    log = [json.loads(line) for line in open(fake_ais_bench["FAKE_AIS_BENCH_LOG"])]
    assert [e["event"] for e in log] == ["load", "infer", "infer", "free"]
    assert log[0]["model_path"] == str(om_file) and log[1]["mode"] == "static"


def test_om_layerwise_falls_back_to_emulation_and_says_so(overflow_recipe, run_cli, fake_ais_bench, tmp_path):
    recipe = overflow_recipe(om="{soc_version: Ascend310P3}")
    _om_copy(tmp_path, run_cli, recipe)
    data = run_cli("verify", recipe, "--target", "om", "--layerwise", "--json", env=fake_ais_bench).json()
    assert data["passed"] is True  # the fake "OM" computes in fp32
    assert data["layerwise"]["via"].startswith("emulate:fp16")
    first = data["first_divergent_node"]
    assert first["node"] == "fc1" and first["inf"] > 0  # where an fp16 OM would first break


def test_om_file_given_explicitly_must_exist(overflow_recipe, run_cli, fake_ais_bench, tmp_path):
    res = run_cli("verify", overflow_recipe(), "--target", "om", "--om", tmp_path / "missing.om", "--json",
                  env=fake_ais_bench)
    assert res.code == 2 and res.json()["error"]["type"] == "InputError" and "missing.om" in res.json()["error"]["message"]

"""`--target om`: the OM's card decides what it is compared with (its ONNX digest, its precision class),
checked before any NPU runtime is looked for; one clear error where the Ascend runtime is absent
(everywhere here); and the runner's plumbing through a FAKE ais_bench package (an "OM" that is really the
ONNX, run by ONNX Runtime). OMs are built by `npuconv om` with the recording fake atc, so every OM has
the card the om stage writes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

FAKE_ATC = Path(__file__).resolve().parents[1] / "om" / "fake_atc"


def _build_om(run_cli, recipe, tmp_path, *extra: str) -> Path:
    """`npuconv om` with the fake atc; then the "OM" bytes become the ONNX's, which the fake runtime runs."""
    env = {"PATH": f"{FAKE_ATC}{os.pathsep}{os.environ['PATH']}", "FAKE_ATC_RECORD": str(tmp_path / "atc.jsonl")}
    built = run_cli("om", recipe, "--json", *extra, env=env)
    assert built.code == 0, built.stderr
    om = Path(built.json()["om"])
    shutil.copyfile(built.json()["graphs"][0]["onnx"], om)
    return om


def test_without_the_ascend_runtime_one_error_line_and_exit_2(overflow_recipe, run_cli, tmp_path):
    recipe = overflow_recipe()
    _build_om(run_cli, recipe, tmp_path)
    res = run_cli("verify", recipe, "--target", "om")
    assert res.code == 2
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Ascend runtime is not available" in errors[0] and "ais_bench" in errors[0]
    assert "Traceback" not in res.stderr
    data = run_cli("verify", recipe, "--target", "om", "--json").json()
    assert data["passed"] is False and data["error"]["type"] == "ToolNotFound"


def test_stale_om_is_refused_before_looking_for_a_runtime(overflow_recipe, run_cli, tmp_path):
    """An OM built from yesterday's model: the source was retrained since (one weight changed), so the card's
    ONNX digest is not the current ONNX's. Refused here, where no NPU runtime exists, with the rebuild."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    recipe = overflow_recipe()
    om = _build_om(run_cli, recipe, tmp_path)
    source = onnx.load(str(tmp_path / "overflow.onnx"))
    weight = source.graph.initializer[0]
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) + np.float32(0.25), weight.name))
    onnx.save(source, str(tmp_path / "overflow.onnx"))
    res = run_cli("verify", recipe, "--target", "om", "--json")
    assert res.code == 2
    error = res.json()["error"]
    assert error["type"] == "InputError" and error["message"].startswith(f"{om} was built from another ONNX")
    assert error["hint"] == f"rebuild it: npuconv om {recipe}"


def test_om_without_card_is_refused(overflow_recipe, run_cli, tmp_path):
    recipe = overflow_recipe()
    om = _build_om(run_cli, recipe, tmp_path)
    (om.parent / "overflow.om.card.json").unlink()
    res = run_cli("verify", recipe, "--target", "om", "--json")
    assert res.code == 2 and "has no card (overflow.om.card.json is missing beside it)" in res.json()["error"]["message"]


@pytest.mark.parametrize("om, precision, passed", [
    ("{soc_version: Ascend310P3, precision_mode_v2: origin}", "fp32", True),
    ("{soc_version: Ascend310P3}", "fp16", True),  # atc's default is fp16: fp16 tolerances apply
])
def test_fake_ais_bench_runs_the_om_and_outputs_pair_by_position(overflow_recipe, run_cli, fake_ais_bench, tmp_path,
                                                                 om, precision, passed):
    recipe = overflow_recipe(low=0.0, high=1.0, om=om)
    om_file = _build_om(run_cli, recipe, tmp_path)
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


def test_precision_comes_from_the_card_not_todays_recipe(overflow_recipe, run_cli, fake_ais_bench, tmp_path):
    """Built with precision origin; the recipe now says fp16. The OM still computes what it was built with,
    so fp32 tolerances apply (the ONNX, hence the card's digest, is the same)."""
    recipe = overflow_recipe(low=0.0, high=1.0, om="{soc_version: Ascend310P3, precision_mode_v2: origin}")
    _build_om(run_cli, recipe, tmp_path)
    res = run_cli("verify", recipe, "--target", "om", "--json", "--set", "om.precision_mode_v2=fp16", env=fake_ais_bench)
    assert res.code == 0, res.stderr
    assert res.json()["precision"] == "fp32"


def test_om_layerwise_falls_back_to_emulation_and_says_so(overflow_recipe, run_cli, fake_ais_bench, tmp_path):
    recipe = overflow_recipe(om="{soc_version: Ascend310P3}")
    _build_om(run_cli, recipe, tmp_path)
    data = run_cli("verify", recipe, "--target", "om", "--layerwise", "--json", env=fake_ais_bench).json()
    assert data["passed"] is True  # the fake "OM" computes in fp32
    assert data["layerwise"]["via"].startswith("emulate:fp16")
    first = data["first_divergent_node"]
    assert first["node"] == "fc1" and first["inf"] > 0  # where an fp16 OM would first break


def test_saved_reference_replays_against_the_om_without_the_recipe(overflow_recipe, run_cli, fake_ais_bench, tmp_path):
    recipe = overflow_recipe(low=0.0, high=1.0, om="{soc_version: Ascend310P3, precision_mode_v2: origin}")
    om = _build_om(run_cli, recipe, tmp_path)
    saved = tmp_path / "saved"
    first = run_cli("verify", recipe, "--target", "onnx:cpu", "--samples", "3", "--save", saved, "--json")
    assert first.code == 0, first.stderr
    replay = run_cli("verify", saved, "--target", "om", "--om", om, "--json", env=fake_ais_bench)
    assert replay.code == 0, replay.stderr
    data = replay.json()
    assert data["reference"] == "saved" and data["samples"] == ["seed 0", "seed 1", "seed 2"]
    assert data["outputs"][0]["max_abs"] == 0.0


def test_om_file_given_explicitly_must_exist(overflow_recipe, run_cli, fake_ais_bench, tmp_path):
    res = run_cli("verify", overflow_recipe(), "--target", "om", "--om", tmp_path / "missing.om", "--json",
                  env=fake_ais_bench)
    assert res.code == 2 and res.json()["error"]["type"] == "InputError" and "missing.om" in res.json()["error"]["message"]

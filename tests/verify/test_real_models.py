"""verify on the real PP-OCRv4 models (`make models`): source vs static ONNX, a perturbed copy found by
--layerwise, fp16 emulation, JUnit for CI, image folders with CTC text agreement, save and replay."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

pytestmark = pytest.mark.e2e


def test_rec_matches_paddle_with_ctc_check_and_junit(real_recipe, ctc_dict, run_cli, tmp_path):
    recipe = real_recipe("rec", verify={"task": {"kind": "ctc", "dict": str(ctc_dict)}})
    junit = tmp_path / "parity.xml"
    res = run_cli("verify", recipe, "--target", "paddle", "--samples", "2", "--json", "--junit", junit)
    assert res.code == 0, res.stderr
    data = res.json()
    assert data["passed"] is True and data["target"] == "paddle" and data["precision"] == "fp32"
    (out,) = data["outputs"]
    assert 0 < out["max_abs"] < 1e-4 and out["cosine"] > 0.99999 and out["nan"] == out["inf"] == 0
    assert out["tolerance"] == {"max_abs": 1e-4, "rtol": 1e-4, "cosine": 0.99999, "source": "builtin:fp32",
                                "sources": {"max_abs": "builtin:fp32", "rtol": "builtin:fp32", "cosine": "builtin:fp32"}}
    assert out["cosine_judged"] is True  # rec's probabilities are far from ~0
    assert [c["sample"] for c in data["checks"]] == [0, 1]
    assert data["task"]["passed"] and len(data["task"]["results"]) == 2
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("4", "0")  # 1 output x 2 samples + 2 CTC checks
    assert {c.get("name") for c in suite.iter("testcase")} >= {"fetch_name_0[sample 0]", "fetch_name_0[sample 1]"}


def _perturbed_copy(onnx_path, dest):
    """Copy the static ONNX with one Conv weight shifted by 0.5; return (copy, the Conv's node name)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    users = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    weights = [t for t in model.graph.initializer if len(t.dims) == 4 and len(users.get(t.name, [])) == 1]
    weight = weights[len(weights) // 2]
    for t in model.graph.initializer:
        if t.name == weight.name:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) + np.float32(0.5), weight.name))
    onnx.save(model, str(dest))
    return dest, users[weight.name][0]


def test_perturbed_weight_fails_and_layerwise_names_its_node(real_recipe, run_cli, tmp_path):
    recipe = real_recipe("rec")
    built = run_cli("onnx", recipe, "--json")
    assert built.code == 0, built.stderr
    copy, node = _perturbed_copy(built.json()["onnx"], tmp_path / "perturbed.onnx")
    junit = tmp_path / "parity.xml"
    res = run_cli("verify", recipe, "--target", f"onnx-file:{copy}", "--layerwise", "--json", "--junit", junit)
    assert res.code == 1, res.stderr
    data = res.json()
    assert data["passed"] is False and data["outputs"][0]["max_abs"] > 1e-2
    first = data["first_divergent_node"]
    assert (first["node"], first["op_type"]) == (node.name, "Conv")
    assert first["output"] == node.output[0] and first["cosine"] < 0.99
    assert data["layerwise"]["compared"] > 10  # the layers before it were compared and matched
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("1", "1")
    failure = suite.find("testcase/failure")
    assert "max_abs + rtol" in failure.get("message") and "cosine=" in failure.text

    # The same comparison against the unperturbed raw paddle2onnx export passes, layer by layer too.
    raw = built.json()["raw_onnx"]  # the export before any pass, kept in the onnx stage's cache entry
    ok = run_cli("verify", recipe, "--target", f"onnx-file:{raw}", "--layerwise", "--json")
    assert ok.code == 0, ok.stderr
    assert ok.json()["first_divergent_node"] is None and ok.json()["layerwise"]["compared"] > 10


def test_rec_fp16_emulation_matches_the_measured_damage(real_recipe, run_cli):
    res = run_cli("verify", real_recipe("rec"), "--target", "emulate:fp16", "--json")
    assert res.code == 0, res.stderr
    data = res.json()
    (out,) = data["outputs"]
    # Measured (paddle2onnx.md): max abs 9.9e-3, cosine 0.9999918 on uniform[-1, 1), seed 0.
    assert 3e-3 < out["max_abs"] < 2e-2 and 0.9999 < out["cosine"] < 1.0
    assert out["tolerance"]["source"] == "builtin:fp16"
    assert data["overflow_nodes"] == [] and data["keep_dtype_suggestion"] is None


def test_text_images_decode_to_the_same_text_and_replay(real_recipe, ctc_dict, text_lines, run_cli, tmp_path):
    recipe = real_recipe("rec", verify={"data": str(text_lines), "task": {"kind": "ctc", "dict": str(ctc_dict)}})
    saved = tmp_path / "saved"
    res = run_cli("verify", recipe, "--target", "paddle", "--json", "--save", saved)
    assert res.code == 0, res.stderr
    data = res.json()
    assert data["samples"] == ["0.png", "1.png"]
    texts = [r["reference_text"][0] for r in data["task"]["results"]]
    assert texts[0] == "npuconv 2026" and texts[1].strip() == "HELLO WORLD"
    assert all(r["target_text"] == r["reference_text"] for r in data["task"]["results"])
    inputs = np.load(saved / "inputs" / "0000.npz")["x"]
    assert inputs.shape == (1, 3, 48, 320) and -1.0 <= inputs.min() < 0 < inputs.max() <= 1.0

    replay = run_cli("verify", recipe, "--target", "paddle", "--json", "--set", f"verify.data={saved}")
    assert replay.code == 0, replay.stderr
    assert replay.json()["samples"] == ["0000.npz", "0001.npz"]
    assert replay.json()["checks"][0]["max_abs"] == data["checks"][0]["max_abs"]


def test_text_images_under_fp16_suggest_the_node_that_loses_most(real_recipe, text_lines, run_cli):
    recipe = real_recipe("rec", verify={"data": str(text_lines), "tolerance_fp16": {"default": {"max_abs": 0.02}}})
    res = run_cli("verify", recipe, "--target", "emulate:fp16", "--json")
    data = res.json()
    assert res.code == 1 and data["overflow_nodes"] == []
    assert data["outputs"][0]["tolerance"]["source"] == "recipe:verify.tolerance_fp16.default+builtin:fp16"
    suggestion = data["keep_dtype_suggestion"]
    rounds = data["emulation"]["iterations"]
    assert suggestion["entries"] and suggestion["passes_with_suggestion"] is True
    assert rounds[-1]["worst_max_abs"] < 0.02 < rounds[0]["worst_max_abs"]


@pytest.mark.parametrize("kind", ["cls", "det"])
def test_cls_and_det_match_paddle(kind, real_recipe, run_cli):
    res = run_cli("verify", real_recipe(kind), "--target", "paddle", "--json")
    assert res.code == 0, res.stderr
    (out,) = res.json()["outputs"]
    assert out["max_abs"] < 1e-5 and out["cosine"] > 0.9999 and out["shape_match"]


def test_cls_argmax_task_under_fp16(real_recipe, run_cli):
    res = run_cli("verify", real_recipe("cls", verify={"task": {"kind": "argmax", "axis": -1}, "samples": 3}),
                  "--target", "emulate:fp16", "--json")
    assert res.code == 0, res.stderr
    data = res.json()
    assert [r["agreement"] for r in data["task"]["results"]] == [1.0, 1.0, 1.0]
    assert 0 < data["outputs"][0]["max_abs"] < 5e-3


def test_det_near_zero_map_under_fp16_is_not_judged_on_cosine(real_recipe, run_cli):
    # On random input PP-OCRv4 det's probability map is ~0 (max ~1e-3, within fp16's max_abs 5e-2) on both
    # sides; its cosine under fp16 emulation is noise (0.9958878 on seed 1, below the built-in 0.999). The
    # recipe here keeps the built-in limits.
    res = run_cli("verify", real_recipe("det", verify={"samples": 2}), "--target", "emulate:fp16", "--json")
    assert res.code == 0, res.stderr
    checks = res.json()["checks"]
    assert all(c["tolerance"]["source"] == "builtin:fp16" for c in checks)
    assert all(max(c["reference_max_abs"], c["target_max_abs"]) <= 5e-2 and not c["cosine_judged"] for c in checks)
    assert min(c["cosine"] for c in checks) < 0.999

"""`npuconv build` of several small real recipes, twice: the first run builds every stage (an empty cache),
the second finds every one in the cache and says so in its JSON and in the manifests; files, digests and
the bundles stay byte for byte the same."""

from __future__ import annotations

import json
from pathlib import Path

from build_support import fake_cann, fake_npu_runtime, paddle_recipe, rows, sha256

BUILT_STAGES = {"export", "onnx", "om", "reference", "verify", "bundle"}


def _units(result) -> dict[str, dict]:
    return {unit["unit"]: unit for unit in result.json()["recipes"]}


def test_build_twice_second_run_all_cached(paddle_models, run_cli, tmp_path):
    crnn = paddle_recipe(tmp_path, "crnn", paddle_models["crnn"], verify={"samples": 2})
    two = paddle_recipe(tmp_path, "two_inputs", paddle_models["two_inputs"], name="two", om=[
        {"variant": "a", "soc_version": "Ascend310P3", "precision_mode_v2": "origin"},
        {"variant": "b", "soc_version": "Ascend310P3"}])
    env = {"NPUCONV_CACHE": str(tmp_path / "cache"), **fake_cann(tmp_path / "cann"), **fake_npu_runtime(tmp_path / "site")}
    args = ["build", crnn, two, "--jobs", "2", "--bundle", tmp_path / "dist", "--json"]

    first = run_cli(*args, env=env)
    assert first.code == 0, first.stderr
    units = _units(first)
    assert list(units) == ["crnn", "two_a", "two_b"]
    # no `bench:` section in these recipes: no bench row
    assert list(rows(units["crnn"])) == ["onnx", "reference", "verify[paddle]", "bundle"]
    assert list(rows(units["two_a"])) == ["onnx", "om[a]", "reference", "verify[paddle]", "verify[om]", "bundle"]
    # an empty cache: every content key was built once (two_a and two_b share the ONNX, the reference and
    # the Paddle check; whichever came second waited for the first and found it in the cache)
    by_key: dict[str, list[str]] = {}
    for unit in units.values():
        for row in unit["stages"]:
            if row["stage"] != "bundle":
                by_key.setdefault(row["key"], []).append(row["status"])
    assert all("built" in found for found in by_key.values()), by_key
    # crnn: onnx, reference, verify[paddle]; two: onnx, reference and verify[paddle] (shared by a and b), om
    # and verify[om] per variant
    assert len(by_key) == 3 + 3 + 2 * 2
    assert {r["status"] for u in units.values() for r in u["stages"] if r["stage"] == "bundle"} == {"built"}

    second = run_cli(*args, env=env)
    assert second.code == 0, second.stderr
    again = _units(second)
    for name, unit in again.items():
        for row in unit["stages"]:
            assert row["status"] == "cached", (name, row)
            before = rows(units[name])[row["label"]]
            assert row["artifacts"] == before["artifacts"]  # same files, same sha256 and sizes
    # the manifests say the same, with every artifact's sha256 matching the file on disk
    for recipe, variants in (("crnn", {"default"}), ("two", {"a", "b"})):
        manifest = json.loads((tmp_path / "out" / recipe / f"{recipe}.manifest.json").read_text())
        assert manifest["format"] == "npuconv-manifest/1" and set(manifest["units"]) == variants
        for entry in manifest["units"].values():
            assert entry["passed"] is True
            assert {r["status"] for r in entry["stages"]} == {"cached"}
            for row in entry["stages"]:
                assert isinstance(row["seconds"], float)
                for artifact in row["artifacts"]:
                    assert sha256(artifact["path"]) == artifact["sha256"]
                    assert artifact["size"] == len(Path(artifact["path"]).read_bytes())
            bundle = entry["bundle"]
            assert bundle["sha256"] == sha256(tmp_path / "dist" / f"{entry['unit']}.tar.gz")


def test_manifest_records_the_om_tools_and_verdicts(paddle_models, run_cli, tmp_path):
    """The OM's CANN version, SoC and precision come from the om card (here: the fake CANN home's
    version.cfg, and the recipe's precision_mode_v2: origin is fp32, atc's default fp16)."""
    two = paddle_recipe(tmp_path, "two_inputs", paddle_models["two_inputs"], name="two", om=[
        {"variant": "a", "soc_version": "Ascend310P3", "precision_mode_v2": "origin"},
        {"variant": "b", "soc_version": "Ascend310B1"}], verify={"targets": ["om"]})
    env = {"NPUCONV_CACHE": str(tmp_path / "cache"), **fake_cann(tmp_path / "cann", version="8.0.RC2"),
           **fake_npu_runtime(tmp_path / "site")}
    res = run_cli("build", two, "--jobs", "2", "--json", env=env)
    assert res.code == 0, res.stderr
    manifest = json.loads((tmp_path / "out" / "two" / "two.manifest.json").read_text())
    expect = {"a": ("Ascend310P3", "fp32"), "b": ("Ascend310B1", "fp16")}
    for variant, (soc, precision) in expect.items():
        om = rows(manifest["units"][variant])[f"om[{variant}]"]
        assert om["tools"]["cann_version"] == "8.0.RC2"
        assert (om["tools"]["soc_version"], om["tools"]["precision"]) == (soc, precision)
        assert {a["role"] for a in om["artifacts"]} == {"model", "log", "sha256", "card"}
        verify = rows(manifest["units"][variant])["verify[om]"]
        assert verify["status"] == "built"
        # the fake runtime runs the ONNX itself: nothing differs, under the precision the card says
        assert verify["verdict"]["passed"] is True and verify["verdict"]["precision"] == precision
        assert all(o["max_abs"] == 0.0 for o in verify["verdict"]["outputs"].values())
        assert "verify[paddle]" not in rows(manifest["units"][variant])  # verify.targets: [om] only
    assert manifest["tools"]["onnxruntime"] and manifest["recipe"] == "two"

"""One unit failing does not stop the others: a failed stage (an error, or its own check) is listed with the
reason and the rows after it are skipped; a recipe that does not load is one failed `load` row named by
its file's stem; the passing units still get their manifests and bundles; exit 1, and --json still prints
the `recipes` object; --junit aggregates every unit's stages and verify checks."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from build_support import fake_cann, onnx_recipe, rows, statuses, tiny_onnx


def _recipes(tmp_path):
    model = tiny_onnx(tmp_path / "tiny.onnx")
    good = onnx_recipe(tmp_path, "good", model, verify={"targets": ["onnx:cpu"]})
    good_om = onnx_recipe(tmp_path, "good_om", model, om={"soc_version": "Ascend310P3", "precision_mode_v2": "origin"})
    # fp16 rounding of the input alone moves the outputs by ~1e-3: far beyond a 1e-9 limit
    strict = onnx_recipe(tmp_path, "strict", model, verify={"targets": ["emulate:fp16"],
                                                            "tolerance_fp16": {"default": {"max_abs": 1e-9}}},
                         bench={"iterations": 5})
    missing = onnx_recipe(tmp_path, "missing", tmp_path / "no_such.onnx")
    broken = tmp_path / "broken.yaml"
    broken.write_text(json.dumps({"name": "broken", "source": {"format": "onnx", "path": str(model)}, "inputz": []}))
    return [good, strict, missing, broken, good_om]


def test_failures_beside_passing_units(run_cli, tmp_path):
    recipes = _recipes(tmp_path)
    env = {**fake_cann(tmp_path / "cann"), "NPUCONV_CACHE": str(tmp_path / "cache")}
    res = run_cli("build", *recipes, "--jobs", "2", "--bundle", tmp_path / "dist", "--junit", tmp_path / "build.xml",
                  "--json", env=env)
    assert res.code == 1, res.stderr
    data = res.json()
    assert data["passed"] is False
    units = {u["unit"]: u for u in data["recipes"]}
    assert list(units) == ["good", "strict", "missing", "broken", "good_om"]  # the order given
    assert {name: u["passed"] for name, u in units.items()} == {
        "good": True, "strict": False, "missing": False, "broken": False, "good_om": True}

    # good, strict and good_om convert the same model the same way: one of them builds the ONNX, the others
    # (in parallel, waiting on the per-key lock, or later) reuse it
    onnx_rows = [statuses(units[u])["onnx"] for u in ("good", "strict", "good_om")]
    assert sorted(onnx_rows) == ["built", "cached", "cached"], onnx_rows
    assert {k: v for k, v in statuses(units["good"]).items() if k not in ("onnx", "reference")} == {
        "verify[onnx:cpu]": "built", "bundle": "built"}
    assert {k: v for k, v in statuses(units["good_om"]).items() if k not in ("onnx", "reference")} == {
        "om[default]": "built", "verify[om]": "skipped", "bundle": "built"}
    assert "Ascend runtime is not available" in rows(units["good_om"])["verify[om]"]["reason"]

    strict = rows(units["strict"])
    assert strict["verify[emulate:fp16]"]["status"] == "failed"
    assert strict["verify[emulate:fp16]"]["verdict"]["passed"] is False
    assert strict["verify[emulate:fp16]"]["reason"].startswith("parity check failed")
    assert strict["bench"] == {**strict["bench"], "status": "skipped", "reason": "verify[emulate:fp16] failed"}
    assert strict["bundle"]["reason"] == "verify[emulate:fp16] failed"

    missing = units["missing"]["stages"]
    assert [(r["label"], r["status"]) for r in missing] == [
        ("onnx", "failed"), ("reference", "skipped"), ("bundle", "skipped")]
    assert "no_such.onnx" in missing[0]["reason"] and missing[0]["error"]["type"] == "InputError"
    assert {r["reason"] for r in missing[1:]} == {"onnx failed"}

    broken = units["broken"]
    assert broken["name"] == "broken" and broken["variant"] is None
    assert [(r["stage"], r["status"]) for r in broken["stages"]] == [("load", "failed")]
    assert "inputz" in broken["stages"][0]["reason"] and broken["stages"][0]["error"]["type"] == "RecipeError"

    # passing units: manifests and bundles; failing ones: no bundle, a manifest that says what failed
    assert sorted(p.name for p in (tmp_path / "dist").iterdir()) == ["good.tar.gz", "good_om.tar.gz"]
    manifest = json.loads((tmp_path / "out" / "strict" / "strict.manifest.json").read_text())
    assert manifest["units"]["default"]["passed"] is False
    assert not (tmp_path / "out" / "broken").exists()

    suites = {s.get("name"): s for s in ET.parse(tmp_path / "build.xml").getroot()}
    assert set(suites) == {"npuconv.build.good", "npuconv.build.strict", "npuconv.build.missing",
                           "npuconv.build.broken", "npuconv.build.good_om", "npuconv.verify.good.onnx:cpu",
                           "npuconv.verify.strict.emulate:fp16"}
    failed = {(s.get("name"), c.get("name")) for s in suites.values() for c in s if c.find("failure") is not None}
    assert failed == {("npuconv.build.strict", "verify[emulate:fp16]"), ("npuconv.build.missing", "onnx"),
                      ("npuconv.build.broken", "load"), ("npuconv.verify.strict.emulate:fp16", "y[sample 0]")}
    root = ET.parse(tmp_path / "build.xml").getroot()
    assert int(root.get("failures")) == 4 and int(root.get("tests")) == sum(int(s.get("tests")) for s in suites.values())


def test_human_summary_names_the_failed_stages(run_cli, tmp_path):
    recipes = _recipes(tmp_path)
    res = run_cli("build", *recipes, env={**fake_cann(tmp_path / "cann"), "NPUCONV_CACHE": str(tmp_path / "cache")})
    assert res.code == 1
    assert "Traceback" not in res.stderr
    lines = res.stdout.splitlines()
    for unit, verdict in (("good ", "ok"), ("strict ", "FAILED"), ("missing ", "FAILED"), ("broken ", "FAILED")):
        assert any(line.startswith(f"│ {unit}") and verdict in line for line in lines), res.stdout
    assert "strict: verify[emulate:fp16] failed: parity check failed" in res.stdout
    assert any(line.startswith("broken: load failed:") and "inputz" in line for line in lines)
    assert any(line.startswith("missing: onnx failed:") and "no_such.onnx" in line for line in lines)

"""`npuconv build --bundle DIR`: one reproducible archive per unit, every file's sha256 in its manifest and
in the build manifest; replayed on a "device box" where paddle, paddle2onnx and onnxsim cannot be imported
and the NPU runtime is a fake ais_bench (the OM, built by the fake atc, holds the ONNX it was built from);
the replay compares with the saved reference and never runs a reference model."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from build_support import (
    REPO,
    fake_cann,
    fake_npu_runtime,
    members,
    onnx_recipe,
    paddle_recipe,
    rows,
    sha256,
    tiny_onnx,
)
from support.blocked_imports import blocked_env, run_npuconv

OM = {"soc_version": "Ascend310P3", "precision_mode_v2": "origin"}


@pytest.fixture(scope="module")
def built(paddle_models, tmp_path_factory):
    """The crnn recipe with an om section, built with the fake atc (no NPU runtime here) into a bundle."""
    tmp = tmp_path_factory.mktemp("bundle")
    recipe = paddle_recipe(tmp, "crnn", paddle_models["crnn"], name="rec", om=OM, verify={"samples": 3},
                           bench={"warmup": 2, "iterations": 7, "slo": {"p99_ms": 60000}})
    env = {**os.environ, **fake_cann(tmp / "cann"), "NPUCONV_CACHE": str(tmp / "cache"), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "converter", "build", str(recipe), "--bundle", str(tmp / "dist"),
                           "--json"], capture_output=True, text=True, env=env, timeout=600, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr
    return tmp, json.loads(proc.stdout)["recipes"][0]


def test_bundle_layout_and_digests(built):
    tmp, unit = built
    archive = tmp / "dist" / "rec.tar.gz"
    files = members(archive)
    manifest = json.loads(files.pop("rec/manifest.json"))
    assert sorted(files) == [
        "rec/README.txt", "rec/atc/build_om.sh", "rec/om/rec.atc.log", "rec/om/rec.om", "rec/om/rec.om.card.json",
        "rec/om/rec.om.sha256", "rec/onnx/rec.card.json", "rec/onnx/rec.onnx", "rec/paddlex/inference.om",
        "rec/paddlex/inference.yml", "rec/reference/inputs/0000.npz", "rec/reference/inputs/0001.npz",
        "rec/reference/inputs/0002.npz", "rec/reference/reference.json", "rec/reference/reference/0000.npz",
        "rec/reference/reference/0001.npz", "rec/reference/reference/0002.npz"]
    assert manifest["files"] == {name.removeprefix("rec/"): hashlib.sha256(data).hexdigest() for name, data in files.items()}
    assert manifest["format"] == "npuconv-bundle/1" and manifest["onnx"] == {"model": "onnx/rec.onnx"}
    assert manifest["om"] == {"model": "om/rec.om"} and manifest["paddlex"] == "paddlex"
    assert (manifest["soc_version"], manifest["precision"]) == ("Ascend310P3", "fp32")
    # what was built is what travels: the published ONNX and OM, byte for byte
    assert files["rec/onnx/rec.onnx"] == (tmp / "out" / "rec" / "rec.onnx").read_bytes()
    assert files["rec/om/rec.om"] == files["rec/paddlex/inference.om"] == (tmp / "out" / "rec" / "rec.om").read_bytes()
    card = json.loads(files["rec/om/rec.om.card.json"])
    assert card["card"]["onnx_sha256"] == {"model": hashlib.sha256(files["rec/onnx/rec.onnx"]).hexdigest()}
    reference = json.loads(files["rec/reference/reference.json"])
    assert reference["samples"] == ["seed 0", "seed 1", "seed 2"] and reference["format"] == "npuconv-reference/1"
    with tarfile.open(archive) as tar:
        assert tar.getmember("rec/atc/build_om.sh").mode == 0o755 and {m.mtime for m in tar.getmembers()} == {0}
    # the build manifest lists the bundle and every file in it
    entry = json.loads((tmp / "out" / "rec" / "rec.manifest.json").read_text())["units"]["default"]
    assert entry["bundle"]["sha256"] == sha256(archive) and entry["bundle"]["files"] == manifest["files"]
    assert rows(unit)["bundle"]["artifacts"] == [{"role": "bundle", "path": str(archive), "sha256": sha256(archive),
                                                  "size": archive.stat().st_size}]


def test_replay_on_a_device_box_without_the_conversion_stack(built, tmp_path):
    tmp, _ = built
    env = blocked_env(tmp_path)
    fake = fake_npu_runtime(tmp_path / "npu")
    env.update(FAKE_AIS_BENCH_LOG=fake["FAKE_AIS_BENCH_LOG"], PYTHONPATH=env["PYTHONPATH"] + os.pathsep + str(tmp_path / "npu"))
    res = run_npuconv(["verify", tmp / "dist" / "rec.tar.gz", "--target", "om", "--junit", tmp_path / "parity.xml",
                       "--json"], env)
    assert res.code == 0, res.stderr
    data = res.json()
    assert data["passed"] is True and data["reference"] == "saved" and data["precision"] == "fp32"
    assert data["samples"] == ["seed 0", "seed 1", "seed 2"]
    assert [o["max_abs"] for o in data["outputs"]] == [0.0]  # the "OM" is the very ONNX the reference ran
    calls = [json.loads(line) for line in Path(fake["FAKE_AIS_BENCH_LOG"]).read_text().splitlines()]
    assert [c["event"] for c in calls] == ["load", "infer", "infer", "infer", "free"]
    assert calls[0]["model_path"].endswith("/rec/om/rec.om")
    cases = ET.parse(tmp_path / "parity.xml").getroot().iter("testcase")
    assert [c.get("name") for c in cases] == [f"fetch_name_0[sample {i}]" for i in range(3)]
    anywhere = run_npuconv(["verify", tmp / "dist" / "rec.tar.gz", "--target", "onnx:cpu", "--json"], env)
    assert anywhere.code == 0 and anywhere.json()["reference"] == "saved", anywhere.stderr


def _with_manifest(archive: Path, dest: Path, **changes) -> Path:
    """A copy of a bundle whose manifest.json (not among the digested files) has `changes`."""
    with tarfile.open(archive) as src, tarfile.open(dest, "w:gz") as out:
        for member in src.getmembers():
            data = src.extractfile(member).read() if member.isfile() else None
            if member.name.endswith("/manifest.json"):
                data = json.dumps({**json.loads(data), **changes}).encode()
                member.size = len(data)
            out.addfile(member, io.BytesIO(data) if data is not None else None)
    return dest


def test_bench_a_bundle_on_a_device_box_with_the_recipes_bench_section(built, tmp_path):
    tmp, _ = built
    archive = tmp / "dist" / "rec.tar.gz"
    env = blocked_env(tmp_path)
    fake = fake_npu_runtime(tmp_path / "npu")
    env.update(FAKE_AIS_BENCH_LOG=fake["FAKE_AIS_BENCH_LOG"], PYTHONPATH=env["PYTHONPATH"] + os.pathsep + str(tmp_path / "npu"))
    res = run_npuconv(["bench", archive, "--backend", "om", "--backend", "onnx", "--json"], env)
    assert res.code == 0, res.stderr
    data = res.json()
    manifest = json.loads(members(archive)["rec/manifest.json"])
    [model] = data["models"]
    assert (model["recipe"], model["batch"], model["onnx_sha256"]) == ("rec", 1, manifest["files"]["onnx/rec.onnx"])
    # the recipe's bench section travelled in the bundle: 2 warm-up and 7 timed runs, its p99 SLO checked
    assert [(r["backend"], r["warmup"], r["iterations"]) for r in data["results"]] == [("om", 2, 7), ("onnx:cpu", 2, 7)]
    assert [g["kind"] for g in data["gates"]] == ["slo", "slo"] and all(g["passed"] for g in data["gates"])
    calls = [json.loads(line) for line in Path(fake["FAKE_AIS_BENCH_LOG"]).read_text().splitlines()]
    assert calls[0]["event"] == "load" and calls[0]["model_path"].endswith("/rec/om/rec.om")
    assert sum(c["event"] == "infer" for c in calls) >= 2 + 7
    # an SLO no model meets fails the run with the numbers; backends a bundle cannot carry are refused
    strict = _with_manifest(archive, tmp_path / "strict.tar.gz", bench={"slo": {"p99_ms": 1e-6}})
    failed = run_npuconv(["bench", strict, "--backend", "onnx", "--json"], env)
    assert failed.code == 1 and not failed.json()["gates"][0]["passed"], failed.stderr
    refused = run_npuconv(["bench", archive, "--backend", "paddle", "--json"], env)
    assert refused.code == 2 and "carries no Paddle model" in refused.json()["error"]["message"]


def test_the_bundled_script_builds_the_om_where_it_is_unpacked(built, tmp_path):
    tmp, _ = built
    with tarfile.open(tmp / "dist" / "rec.tar.gz") as tar:
        tar.extractall(tmp_path / "box", filter="data")
    root = tmp_path / "box" / "rec"
    shutil.rmtree(root / "om")
    shutil.rmtree(root / "paddlex")
    env = {**os.environ, **fake_cann(tmp_path / "cann", mode="ok")}
    env["PATH"] = f"{tmp_path / 'cann' / 'bin'}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(["sh", str(root / "atc" / "build_om.sh")], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    card = json.loads((root / "om" / "rec.om.card.json").read_text())["card"]
    assert card["onnx_sha256"] == {"model": sha256(root / "onnx" / "rec.onnx")} and card["cann_version"] == "8.0.RC2"
    assert (root / "paddlex" / "inference.om").read_bytes() == (root / "om" / "rec.om").read_bytes()
    (root / "onnx" / "rec.onnx").write_bytes(b"another model")  # the script refuses an ONNX it was not made for
    refused = subprocess.run(["sh", str(root / "atc" / "build_om.sh")], env=env, capture_output=True, text=True,
                             timeout=120, check=False)
    assert refused.returncode == 2 and "is not the ONNX this script was generated for" in refused.stderr


def test_unit_without_om_carries_onnx_and_reference(run_cli, tmp_path):
    recipe = onnx_recipe(tmp_path, "plain", tiny_onnx(tmp_path / "tiny.onnx"))
    res = run_cli("build", recipe, "--bundle", tmp_path / "dist", "--json", env={"NPUCONV_CACHE": str(tmp_path / "c")})
    assert res.code == 0, res.stderr
    unit = res.json()["recipes"][0]
    assert [r["label"] for r in unit["stages"]] == ["onnx", "reference", "bundle"]  # no verify target, no bench
    names = sorted(members(tmp_path / "dist" / "plain.tar.gz"))
    assert names == ["plain/README.txt", "plain/manifest.json", "plain/onnx/plain.card.json", "plain/onnx/plain.onnx",
                     "plain/reference/inputs/0000.npz", "plain/reference/reference.json",
                     "plain/reference/reference/0000.npz"]
    replay = run_cli("verify", tmp_path / "dist" / "plain.tar.gz", "--target", "om", "--json")
    assert replay.code == 2 and "holds no OM" in replay.json()["error"]["message"]
    again = run_cli("build", recipe, "--bundle", tmp_path / "dist", "--json", env={"NPUCONV_CACHE": str(tmp_path / "c")})
    assert rows(again.json()["recipes"][0])["bundle"]["status"] == "cached"  # the same bytes: left as it was

"""What the om stage publishes, and what it keys on: an ONNX per gear set, the OM card, the CANN version
however atc was found, emitted scripts that refuse another ONNX, --paddlex without atc, names with dots,
and permissions the service account can read."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

from om_support import FAKE_ATC_DIR, atc_calls

BASE = {"soc_version": "Ascend310P3", "precision_mode_v2": "origin"}


def _run_script(script: Path, *args, env_extra=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{FAKE_ATC_DIR}{os.pathsep}{os.environ['PATH']}", **(env_extra or {})}
    return subprocess.run(["sh", str(script), *map(str, args)], capture_output=True, text=True, env=env)


def test_variants_with_different_gears_get_an_onnx_each(cli, make_recipe, tmp_path):
    recipe = make_recipe([{**BASE, "variant": "batch", "dynamic": {"batch": [1, 4, 8]}},
                          {**BASE, "variant": "hw", "dynamic": {"image_size": [[16, 16], [32, 32]]}}])
    scripts = {}
    for variant in ("batch", "hw"):
        scripts[variant] = tmp_path / f"{variant}.sh"
        res = cli("om", recipe, "--variant", variant, "--emit-script", scripts[variant], "--json")
        assert res.code == 0, res.stderr
    out = tmp_path / "build"
    assert (out / "tiny_b1-4-8.onnx").is_file() and (out / "tiny_hw16x16-32x32.onnx").is_file()
    # the first script still points at its own ONNX, and that ONNX is still the one it was made for
    assert "DEFAULT_MODEL=" + str(out / "tiny_b1-4-8.onnx") in scripts["batch"].read_text()
    done = _run_script(scripts["batch"], out / "tiny_b1-4-8.onnx", tmp_path / "srv",
                       env_extra={"FAKE_ATC_RECORD": str(tmp_path / "rec.jsonl")})
    assert done.returncode == 0, done.stderr


def test_script_refuses_an_onnx_changed_since_it_was_emitted(cli, make_recipe, tmp_path):
    recipe = make_recipe(BASE)
    script = tmp_path / "om.sh"
    assert cli("om", recipe, "--emit-script", script).code == 0
    onnx_file = tmp_path / "build" / "tiny.onnx"
    # a temporary --set overwrites the ONNX under the already-emitted script
    assert cli("om", recipe, "--dry-run", "--set", "inputs.0.shape=[2,3,16,16]").code == 0
    record = tmp_path / "rec.jsonl"
    proc = _run_script(script, onnx_file, tmp_path / "srv", env_extra={"FAKE_ATC_RECORD": str(record)})
    assert proc.returncode == 2
    assert f"{onnx_file} is not the ONNX this script was generated for" in proc.stderr
    assert not record.exists()  # atc never started


def test_script_writes_the_om_card_verify_reads(cli, make_recipe, tmp_path):
    recipe = make_recipe({**BASE, "paddlex_model_name": "PP-OCRv4_mobile_rec"})
    script = tmp_path / "om.sh"
    emitted = cli("om", recipe, "--emit-script", script, "--paddlex", "--json")
    assert emitted.code == 0, emitted.stderr
    srv = tmp_path / "srv"
    home = tmp_path / "cann"
    home.mkdir()
    (home / "version.cfg").write_text("Version=8.0.RC2\n")
    proc = _run_script(script, emitted.json()["graphs"][0]["onnx"], srv,
                       env_extra={"FAKE_ATC_RECORD": str(tmp_path / "rec.jsonl"), "ASCEND_TOOLKIT_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    card = json.loads((srv / "tiny.om.card.json").read_text())["card"]
    onnx_digest = json.loads((tmp_path / "build" / "tiny.card.json").read_text())["files"]["model"]["sha256"]
    assert card["onnx_sha256"] == {"model": onnx_digest}
    assert (card["precision"], card["soc_version"], card["cann_version"]) == ("fp32", "Ascend310P3", "8.0.RC2")
    px = srv / "paddlex"
    assert sorted(p.name for p in px.iterdir()) == ["inference.om", "inference.yml"]
    assert (px / "inference.om").read_bytes() == (srv / "tiny.om").read_bytes()
    assert "PP-OCRv4_mobile_rec" in (px / "inference.yml").read_text()


def test_dry_run_with_paddlex_writes_the_layout(cli, make_recipe, tmp_path):
    res = cli("om", make_recipe(BASE), "--dry-run", "--paddlex", "--json")
    assert res.code == 0, res.stderr
    px = tmp_path / "build" / "paddlex"
    assert res.json()["paddlex"]["dir"] == str(px) and (px / "inference.yml").is_file()


def _fake_toolkit(tmp_path: Path, version: str | None) -> Path:
    """A CANN toolkit layout with atc (the recording fake) on PATH: <home>/bin/atc, <home>/version.cfg."""
    home = tmp_path / "toolkit"
    (home / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy(FAKE_ATC_DIR / "atc", home / "bin" / "atc")
    if version:
        (home / "version.cfg").write_text(f"Version={version}\n")
    return home


def test_om_key_has_the_cann_version_of_an_atc_found_on_path(cli, make_recipe, tmp_path, monkeypatch):
    home = _fake_toolkit(tmp_path, "8.0.RC2")
    record = tmp_path / "rec.jsonl"
    monkeypatch.setenv("PATH", f"{home / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ATC_RECORD", str(record))
    monkeypatch.setenv("NPUCONV_CACHE", str(tmp_path / "cache"))
    recipe = make_recipe(BASE)
    first = cli("om", recipe, "--json")
    assert first.code == 0, first.stderr
    assert first.json()["cann_version"] == "8.0.RC2"
    assert cli("om", recipe, "--json").json()["cached"] is True
    (home / "version.cfg").write_text("Version=8.0.RC3\n")  # a CANN upgrade, same atc launcher
    again = cli("om", recipe, "--json")
    assert again.json()["cached"] is False and again.json()["cann_version"] == "8.0.RC3"
    assert len(atc_calls(record)) == 2


def test_unreadable_cann_version_still_runs_and_warns(cli, make_recipe, tmp_path, monkeypatch):
    home = _fake_toolkit(tmp_path, None)
    monkeypatch.setenv("PATH", f"{home / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ATC_RECORD", str(tmp_path / "rec.jsonl"))
    monkeypatch.setenv("NPUCONV_CACHE", str(tmp_path / "cache"))
    res = cli("om", make_recipe(BASE), "--json")
    assert res.code == 0, res.stderr
    assert res.json()["cann_version"] == "unknown"
    assert any("CANN version of" in w and "cannot be read" in w for w in res.json()["warnings"])
    card = json.loads((tmp_path / "build" / "tiny.om.card.json").read_text())["card"]
    assert card["cann_version"] == "unknown" and len(card["atc"]["digest"]) == 64


def test_names_with_dots_and_readable_artifacts(cli, make_recipe, fake_atc, tmp_path):
    recipe = make_recipe([{**BASE, "variant": "p3.origin"}], name="ocr.v4")
    res = cli("om", recipe, "--json")
    assert res.code == 0, res.stderr
    out = tmp_path / "build"
    names = sorted(p.name for p in out.iterdir() if p.is_file())
    assert {"ocr.v4_p3.origin.om", "ocr.v4_p3.origin.om.card.json", "ocr.v4_p3.origin.om.sha256",
            "ocr.v4_p3.origin.atc.log", "ocr.v4.onnx", "ocr.v4.card.json"} <= set(names)
    umask = os.umask(0)
    os.umask(umask)
    for name in ("ocr.v4_p3.origin.om", "ocr.v4_p3.origin.om.card.json", "ocr.v4.onnx"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o666 & ~umask

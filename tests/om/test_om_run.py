"""Running atc (the recording fake): argv list, log streamed to atc.log, success = exit 0 + marker + .om,
atomic OM, failures translated, atc found under ASCEND_TOOLKIT_HOME, and the atc-absent message."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import textwrap

import yaml
from om_support import FAKE_ATC_DIR, atc_calls

BASE = {"soc_version": "Ascend310P3", "precision_mode_v2": "origin"}

E19010_LOG = textwrap.dedent("""\
    ATC start working now, please wait for a moment.
    ATC run failed, Please check the detail log, Try 'atc --help' for more information
    E19010: No parser is registered for Op [NonZero_12, optype [ai.onnx::11::NonZero]].
            Solution: Check the version of the installation package and reinstall the package. For details, see the operator specifications.
            TraceBack (most recent call last):
            No parser is registered for Op [Unique_7, optype [ai.onnx::11::Unique]].
            Failed to convert model, ret: 4294967295[FUNC:ParseGraph][FILE:onnx_parser.cc][LINE:912]
    E19010: No parser is registered for Op [Unique_7, optype [ai.onnx::11::Unique]].
""")


def test_success_writes_om_atomically(cli, make_recipe, fake_atc, tmp_path):
    recipe = make_recipe({**BASE, "keep_dtype": ["OpType::Relu"], "precision_mode_v2": "fp16"})
    plan = cli("om", recipe, "--dry-run", "--json").json()
    res = cli("om", recipe, "--json")
    assert res.code == 0, res.stderr
    data = res.json()
    out = tmp_path / "build"
    om = out / "tiny.om"
    assert data["om"] == str(om)
    assert data["sha256"] == hashlib.sha256(om.read_bytes()).hexdigest()
    assert data["size_bytes"] == om.stat().st_size
    assert (out / "tiny.om.sha256").read_text() == f"{data['sha256']}  tiny.om\n"
    assert "ATC run success" in (out / "tiny.atc.log").read_text()
    [call] = atc_calls(fake_atc)
    argv = call["argv"]
    assert argv[0] == str(FAKE_ATC_DIR / "atc")
    # the same argv as --dry-run, except atc writes into a scratch dir of the OM cache first
    scratch = [a for a in argv if a.startswith("--output=")][0].removeprefix("--output=")
    assert os.path.dirname(os.path.dirname(scratch)) == str(tmp_path / "cache" / "om" / ".scratch") and scratch.endswith("/tiny")
    # the same options as --dry-run; paths point into the cache (the ONNX, the cfg files) instead
    def options(tokens):
        return [t.split("=", 1)[0] + "=" + os.path.basename(t.split("=", 1)[1])
                if t.startswith(("--model=", "--keep_dtype=")) else t for t in tokens if not t.startswith("--output=")]

    assert options(argv[1:])[1:] == options(plan["argv"][1:])[1:]
    assert argv[1] == f"--model={call_onnx(tmp_path)}" and plan["argv"][1] == f"--model={out / 'tiny.onnx'}"
    assert (out / "atc" / "default" / "keep_dtype.cfg").read_text() == "OpType::Relu\n"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".atc-")) == []


def call_onnx(tmp_path):
    """The onnx stage's cache entry holding the ONNX atc read."""
    [entry] = [p for p in (tmp_path / "cache" / "onnx").iterdir() if not p.name.startswith(".") and p.is_dir()]
    return entry / "model.onnx"


def test_failure_log_is_translated(cli, make_recipe, fake_atc, tmp_path, monkeypatch):
    log = tmp_path / "e19010.txt"
    log.write_text(E19010_LOG)
    monkeypatch.setenv("FAKE_ATC_MODE", "fail")
    monkeypatch.setenv("FAKE_ATC_LOG", str(log))
    res = cli("om", make_recipe(BASE), "--json")
    assert res.code == 2
    error = res.json()["error"]
    assert error["type"] == "AtcFailed"
    assert error["message"] == "atc failed (exit code 255): E19010"
    assert error["unsupported_ops"] == [
        {"name": "NonZero_12", "type": "NonZero", "raw_type": "ai.onnx::11::NonZero"},
        {"name": "Unique_7", "type": "Unique", "raw_type": "ai.onnx::11::Unique"},
    ]
    assert [e["code"] for e in error["errors"]] == ["E19010"]
    assert "unsupported ops: NonZero_12 (NonZero), Unique_7 (Unique)" in error["hint"]
    assert error["log_path"] == str(tmp_path / "build" / "tiny.atc.log")
    assert (tmp_path / "build" / "tiny.atc.log").read_text().endswith(E19010_LOG)
    assert not (tmp_path / "build" / "tiny.om").exists()
    assert not [p for p in (tmp_path / "build").iterdir() if p.name.startswith(".atc-")]


def test_failure_human_output(cli, make_recipe, fake_atc, tmp_path, monkeypatch):
    log = tmp_path / "e.txt"
    log.write_text("ATC run failed, Please check the detail log\n"
                   "E10056: Both --precision_mode and --precision_mode_v2 are set.\n")
    monkeypatch.setenv("FAKE_ATC_MODE", "fail")
    monkeypatch.setenv("FAKE_ATC_LOG", str(log))
    res = cli("om", make_recipe(BASE))
    assert res.code == 2
    assert "error: atc failed (exit code 255): E10056" in res.stderr
    assert "E10056: --precision_mode and --precision_mode_v2 were both given; fix: keep only precision_mode_v2" in res.stderr


def test_exit_zero_without_marker_is_a_failure(cli, make_recipe, fake_atc, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_ATC_MODE", "no-marker")
    res = cli("om", make_recipe(BASE), "--json")
    assert res.code == 2
    assert res.json()["error"]["message"] == "atc failed (exit code 0 but no 'ATC run success' in its output)"
    assert not (tmp_path / "build" / "tiny.om").exists()


def test_marker_without_om_is_a_failure(cli, make_recipe, fake_atc, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_ATC_MODE", "no-om")
    res = cli("om", make_recipe(BASE), "--json")
    assert res.code == 2
    assert res.json()["error"]["message"] == "atc reported success but wrote no tiny.om"


def test_failed_rebuild_keeps_previous_om(cli, make_recipe, fake_atc, tmp_path, monkeypatch):
    recipe = make_recipe(BASE)
    assert cli("om", recipe).code == 0
    om = tmp_path / "build" / "tiny.om"
    before = om.read_bytes()
    monkeypatch.setenv("FAKE_ATC_MODE", "no-marker")
    assert cli("om", recipe, "--set", "om.soc_version=Ascend310P1").code == 2
    assert om.read_bytes() == before


def test_atc_absent_says_so_once(cli, make_recipe, tmp_path):
    res = cli("om", make_recipe(BASE))
    assert res.code == 2
    error_lines = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert error_lines == ["error: atc (CANN toolkit) is not installed here: not on PATH, nor under "
                           "ASCEND_TOOLKIT_HOME or ASCEND_HOME_PATH"]
    assert "--dry-run" in res.stderr and "--emit-script" in res.stderr
    assert not (tmp_path / "build").exists()  # fails fast: not even the onnx stage ran
    res = cli("om", make_recipe(BASE), "--json")
    assert res.json() == {"passed": False, "error": {
        "type": "ToolNotFound",
        "message": "atc (CANN toolkit) is not installed here: not on PATH, nor under ASCEND_TOOLKIT_HOME or "
                   "ASCEND_HOME_PATH",
        "hint": "get the exact command anyway with `npuconv om RECIPE --dry-run --json`, or a script for a build "
                "server with `npuconv om RECIPE --emit-script FILE`"}}


def test_atc_under_ascend_toolkit_home(cli, make_recipe, tmp_path, monkeypatch):
    home = tmp_path / "Ascend" / "ascend-toolkit" / "latest"
    (home / "compiler" / "bin").mkdir(parents=True)
    shutil.copy(FAKE_ATC_DIR / "atc", home / "compiler" / "bin" / "atc")
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv("FAKE_ATC_RECORD", str(record))
    monkeypatch.setenv("ASCEND_TOOLKIT_HOME", str(home))
    res = cli("om", make_recipe(BASE), "--json")
    assert res.code == 0, res.stderr
    assert res.json()["atc"] == str(home / "compiler" / "bin" / "atc")
    [call] = [json.loads(x) for x in record.read_text().splitlines()]
    assert call["env"] == {"ASCEND_TOOLKIT_HOME": str(home), "ASCEND_OPP_PATH": str(home / "opp")}


def test_paddlex_layout(cli, make_recipe, fake_atc, tmp_path):
    recipe = make_recipe({**BASE, "paddlex_model_name": "PP-OCRv4_mobile_rec"})
    res = cli("om", recipe, "--paddlex", "--json")
    assert res.code == 0, res.stderr
    px = tmp_path / "build" / "paddlex"
    assert res.json()["paddlex"]["dir"] == str(px)
    assert sorted(p.name for p in px.iterdir()) == ["inference.om", "inference.yml"]
    assert (px / "inference.om").read_bytes() == (tmp_path / "build" / "tiny.om").read_bytes()
    yml = yaml.safe_load((px / "inference.yml").read_text())
    assert yml["Global"] == {"model_name": "PP-OCRv4_mobile_rec"}
    assert yml["hpi_config"] == {"auto_config": False, "backend": "om"}
    assert yml["input_shape"] == [3, 16, 16]
    assert yml["atc_input_shape"] == "x:1,3,16,16"


def test_paddlex_needs_static_shapes(cli, make_recipe, fake_atc):
    recipe = make_recipe({**BASE, "dynamic": {"batch": [1, 2]}})
    res = cli("om", recipe, "--paddlex", "--json")
    assert res.code == 2
    assert res.json()["error"]["message"].startswith("om rule paddlex-static-only:")
    assert not fake_atc.exists()


def test_rerun_reuses_the_om_and_changes_rebuild(cli, make_recipe, fake_atc, tmp_path):
    recipe = make_recipe(BASE)
    first = cli("om", recipe, "--json")
    assert first.code == 0, first.stderr
    assert first.json()["cached"] is False and len(atc_calls(fake_atc)) == 1
    om = tmp_path / "build" / "tiny.om"
    om.unlink()
    again = cli("om", recipe, "--json")
    assert again.code == 0 and again.json()["cached"] is True
    assert len(atc_calls(fake_atc)) == 1  # atc did not run again
    assert om.is_file() and again.json()["sha256"] == first.json()["sha256"]
    assert "ATC run success" in (tmp_path / "build" / "tiny.atc.log").read_text()
    # Another precision is another OM; --force rebuilds the same one.
    assert cli("om", recipe, "--json", "--set", "om.precision_mode_v2=fp16").json()["cached"] is False
    assert cli("om", recipe, "--json", "--force").json()["cached"] is False
    assert len(atc_calls(fake_atc)) == 3

"""--emit-script: a standalone POSIX sh script (0755) that passes `sh -n` and shellcheck, quotes every
value, and runs the same argv as --dry-run when executed with the fake atc."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess

import pytest
from om_support import FAKE_ATC_DIR, atc_calls

FULL = {
    "soc_version": "Ascend310P3",
    "precision_mode_v2": "mixed_float16",
    "keep_dtype": ["conv0"],
    "modify_mixlist": {"black-list": {"to-add": ["Relu"]}},
    "aipp": {"input_format": "RGB888_U8"},
    # a hostile free-form value: must reach atc verbatim and never be run by the shell
    "extra_args": {"out_nodes": "relu0:0;a b $(touch PWNED) `touch PWNED2` 'q' \"d\""},
}


def _emit(cli, recipe, script):
    res = cli("om", recipe, "--emit-script", script, "--json")
    assert res.code == 0, res.stderr
    return res.json()


def test_script_is_valid_sh(cli, make_recipe, fake_atc, tmp_path):
    script = tmp_path / "out" / "build_om.sh"
    data = _emit(cli, make_recipe(FULL), script)
    assert data["script"] == str(script)
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    text = script.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert "\nset -eu\n" in text
    assert "grep -q 'ATC run success'" in text
    assert "sha256sum" in text
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    assert not fake_atc.exists()  # emitting never starts atc


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_script_passes_shellcheck(cli, make_recipe, tmp_path):
    script = tmp_path / "build_om.sh"
    _emit(cli, make_recipe({**FULL, "dynamic": None}), script)
    proc = subprocess.run(["shellcheck", "-s", "sh", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def _run_script(script, *args, env_extra=None, cwd=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(["sh", str(script), *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd)


def test_script_runs_the_dry_run_argv(cli, make_recipe, fake_atc, tmp_path):
    recipe = make_recipe(FULL)
    plan = cli("om", recipe, "--dry-run", "--json").json()
    script = tmp_path / "build_om.sh"
    _emit(cli, recipe, script)
    server = tmp_path / "server"
    model = tmp_path / "copied.onnx"
    shutil.copy(plan["onnx"], model)
    proc = _run_script(script, model, server, env_extra={"PATH": f"{FAKE_ATC_DIR}:{os.environ['PATH']}"},
                       cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    [call] = atc_calls(fake_atc)
    argv = call["argv"]
    cfg = server / "atc" / "default"
    expected = []
    for token in plan["argv"][1:]:
        token = token.replace(plan["onnx"], str(model))
        token = token.replace(str(tmp_path / "build" / "atc" / "default"), str(cfg))
        expected.append(token)
    output = next(a for a in argv if a.startswith("--output="))
    assert output.startswith(f"--output={server}/.atc-tiny.") and output.endswith("/tiny")
    assert [a for a in argv[1:] if not a.startswith("--output=")] == [a for a in expected if not a.startswith("--output=")]
    assert "--out_nodes=relu0:0;a b $(touch PWNED) `touch PWNED2` 'q' \"d\"" in argv
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "PWNED2").exists()
    for path, text in plan["files"].items():  # the script wrote the same cfg files itself
        assert (cfg / os.path.basename(path)).read_text() == text
    om = server / "tiny.om"
    digest = hashlib.sha256(om.read_bytes()).hexdigest()
    assert (server / "tiny.om.sha256").read_text() == f"{digest}  tiny.om\n"
    assert "ATC run success" in (server / "tiny.atc.log").read_text()
    assert not [p for p in server.iterdir() if p.name.startswith(".atc-")]


def test_script_fails_without_marker(cli, make_recipe, fake_atc, tmp_path):
    recipe = make_recipe({"soc_version": "Ascend310P3", "precision_mode_v2": "origin"})
    plan = cli("om", recipe, "--dry-run", "--json").json()
    script = tmp_path / "s.sh"
    _emit(cli, recipe, script)
    env = {"PATH": f"{FAKE_ATC_DIR}:{os.environ['PATH']}", "FAKE_ATC_MODE": "no-marker"}
    proc = _run_script(script, plan["onnx"], tmp_path / "srv", env_extra=env)
    assert proc.returncode == 1
    assert "without printing" in proc.stderr
    assert not (tmp_path / "srv" / "tiny.om").exists()


def test_script_reports_atc_exit_code(cli, make_recipe, fake_atc, tmp_path):
    recipe = make_recipe({"soc_version": "Ascend310P3", "precision_mode_v2": "origin"})
    plan = cli("om", recipe, "--dry-run", "--json").json()
    script = tmp_path / "s.sh"
    _emit(cli, recipe, script)
    log = tmp_path / "fail.txt"
    log.write_text("E19010: No parser is registered for Op [x_1, optype [ai.onnx::11::Foo]].\n")
    env = {"PATH": f"{FAKE_ATC_DIR}:{os.environ['PATH']}", "FAKE_ATC_MODE": "fail", "FAKE_ATC_LOG": str(log),
           "FAKE_ATC_RC": "3"}
    proc = _run_script(script, plan["onnx"], tmp_path / "srv", env_extra=env)
    assert proc.returncode == 1
    assert "atc exited with code 3" in proc.stderr
    assert "E19010" in (tmp_path / "srv" / "tiny.atc.log").read_text()


def test_script_without_atc(cli, make_recipe, tmp_path):
    recipe = make_recipe({"soc_version": "Ascend310P3", "precision_mode_v2": "origin"})
    script = tmp_path / "s.sh"
    data = _emit(cli, recipe, script)
    proc = _run_script(script, data["onnx"], tmp_path / "srv")
    assert proc.returncode == 2
    assert "atc not found" in proc.stderr

"""The real console script: stdout carries exactly one JSON object (also on failure), help is instant."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from om_support import FAKE_ATC_DIR, REPO

NPUCONV = [sys.executable, "-c", "from converter.cli import main; main()"]


def _run(args, env=None):
    return subprocess.run([*NPUCONV, *map(str, args)], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_dry_run_json_is_one_object(make_recipe):
    recipe = make_recipe({"soc_version": "Ascend310P3"})
    proc = _run(["om", recipe, "--dry-run", "--json"])
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)  # exactly one JSON document, nothing else on stdout
    assert data["argv"][6] == "--input_shape=x:1,3,16,16"
    assert "atc will compile this fp32 model in FP16" in proc.stderr


def test_atc_absent_json_exit_2(make_recipe):
    proc = _run(["om", make_recipe({"soc_version": "Ascend310P3"}), "--json"])
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["type"] == "ToolNotFound"


def test_rule_error_with_fake_atc_json(make_recipe, tmp_path):
    record = tmp_path / "rec.jsonl"
    recipe = make_recipe({"soc_version": "Ascend310P3", "precision_mode": "force_fp16", "precision_mode_v2": "fp16"})
    proc = _run(["om", recipe, "--json"], env={"PATH": f"{FAKE_ATC_DIR}:{os.environ['PATH']}",
                                               "FAKE_ATC_RECORD": str(record)})
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["message"].startswith("om rule precision-exclusive:")
    assert not record.exists()


def test_help_does_not_import_heavy_modules():
    code = ("import sys\nfrom converter.cli import app\n"
            "for cmd in (['om', '--help'], ['lint', '--help'], ['doctor', '--help']):\n"
            "    try:\n        app(cmd)\n    except SystemExit:\n        pass\n"
            "heavy = [m for m in ('onnx', 'onnxruntime', 'paddle', 'jinja2') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr

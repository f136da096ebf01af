"""`npuconv onnx` as a user runs it: JSON contract, exit codes, one error line and one hint line for
bad input, and nothing half-written."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def assert_clean_failure(res, output_dir, message_part: str) -> None:
    assert res.code == 2, res.stderr
    lines = res.stderr.splitlines()
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1 and message_part in errors[0], res.stderr
    assert sum(ln.startswith("hint: ") for ln in lines) == 1
    assert "Traceback" not in res.stderr.split("hint: ")[0]  # a tool's own log may follow the hint
    leftovers = [p.name for p in output_dir.rglob("*")] if output_dir.exists() else []
    assert not [n for n in leftovers if n.endswith((".onnx", ".tmp", ".json"))], leftovers


def test_help_is_light():
    probe = ("import sys\nsys.argv = ['npuconv', '--help']\nfrom converter.cli import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('paddle', 'onnx', 'onnxruntime', 'numpy') if m in sys.modules), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert out.stderr.strip().splitlines()[-1] == "[]"
    for command in ("onnx", "om", "verify", "lint", "doctor", "schema"):
        assert command in out.stdout


def test_json_success_and_cache_hit(paddle_models, make_recipe, run_cli, tmp_path):
    recipe = make_recipe("crnn", paddle_models["crnn"])
    res = run_cli("onnx", recipe, "--json", "--force")
    assert res.code == 0, res.stderr
    data = res.json()
    assert {"onnx", "opset", "inputs", "dynamic_dims", "parity", "cached"} <= set(data)
    assert data["cached"] is False and data["dynamic_dims"] == [] and data["opset"] == 14
    assert data["inputs"] == [{"name": "x", "shape": [1, 3, 32, 64], "dtype": "float32"}]
    (out,) = data["parity"]["outputs"].values()
    assert out["max_abs"] < 1e-5 and out["cosine"] > 0.99999
    again = run_cli("onnx", recipe, "--json")
    assert again.code == 0 and again.json()["cached"] is True and again.json()["onnx"] == data["onnx"]


def test_table_output_and_cli_overrides(paddle_models, make_recipe, run_cli, tmp_path):
    recipe = make_recipe("fcn", tmp_path / "nowhere")
    res = run_cli("onnx", recipe, "--model-dir", paddle_models["fcn"], "-o", tmp_path / "elsewhere",
                  "--set", "inputs.0.shape=[1,3,32,48]")
    assert res.code == 0, res.stderr
    assert (tmp_path / "elsewhere" / "fcn.onnx").is_file()
    assert "x [1, 3, 32, 48] float32" in res.stdout and "pass" in res.stdout
    assert "parity vs paddle-inference" in res.stdout


@pytest.mark.parametrize("case", ["broken_yaml", "unknown_key", "missing_model_dir", "wrong_input_name",
                                  "wrong_rank", "truncated_params", "paddle2onnx_abort"])
def test_bad_input_gives_error_and_hint(case, paddle_models, make_recipe, run_cli, tmp_path):
    out_dir = tmp_path / "out"
    model = paddle_models["crnn"]
    if case == "broken_yaml":
        recipe, expect = make_recipe(text="name: x\nsource: [\n"), "invalid YAML"
    elif case == "unknown_key":
        recipe, expect = make_recipe("crnn", model, onnx={"opsett": 13}), "onnx.opsett: unknown key (did you mean 'opset'?)"
    elif case == "missing_model_dir":
        recipe, expect = make_recipe("crnn", tmp_path / "no_such_dir"), "source.model_dir does not exist"
    elif case == "wrong_input_name":
        recipe = make_recipe("crnn", model, inputs=[{"name": "image", "shape": [1, 3, 32, 64]}])
        expect = "the recipe names input 'image', but the model (inference.json) has: x[-1, 3, 32, -1] float32"
    elif case == "wrong_rank":
        recipe = make_recipe("crnn", model, inputs=[{"name": "x", "shape": [3, 32, 64]}])
        expect = "input 'x': the recipe gives rank 3 [3, 32, 64], the model has rank 4"
    elif case == "truncated_params":
        broken = tmp_path / "truncated"
        shutil.copytree(model, broken)
        params = broken / "inference.pdiparams"
        params.write_bytes(params.read_bytes()[: params.stat().st_size // 2])
        recipe, expect = make_recipe("crnn", broken), f": {params} is truncated or belongs to another model"
    else:
        recipe = make_recipe("adaptive_pool", paddle_models["adaptive_pool"])
        expect = "paddle2onnx export failed (SIGABRT): [ERROR][Paddle2ONNX] [OP: pd_op.pool2d] Adaptive only support static input shape."
    res = run_cli("onnx", recipe, "--json")  # people read stderr, machines the one JSON object: both here
    assert_clean_failure(res, out_dir, expect)
    if case == "truncated_params":  # the layer's weights, named by Paddle's name counter (linear_N)
        assert re.search(r"lacks 2 weight tensor\(s\) \(linear_\d+\.b_0, linear_\d+\.w_0\)", res.stderr)
    error = res.json()["error"]
    assert res.json()["passed"] is False and expect in error["message"] and error["hint"]


def test_usage_error_with_json_still_prints_one_object(run_cli):
    res = run_cli("onnx", "--json", "--no-such-flag")
    assert res.code == 2
    assert res.json()["error"]["type"] == "UsageError"


@pytest.mark.parametrize("command", ["schema", "onnx", "om", "lint", "verify", "doctor"])
def test_every_command_takes_json(command, run_cli):
    res = run_cli(command, "--help")
    assert res.code == 0 and "--json" in res.stdout

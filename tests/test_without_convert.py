"""The device box: `pip install npuconv` without the `convert` extra. Paddle, paddle2onnx and onnxsim are
made unimportable (tests/support/blocked_imports.py) and everything that does not convert a model still
works; converting says, in one line, which extra to install (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support.blocked_imports import CONVERT_STACK, blocked_env, run_npuconv, run_python

LOG = "tests/explain/logs/e10016_input_name.log"


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    return blocked_env(tmp_path_factory.mktemp("device-box"))


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """y = relu(x @ w + b) with x [1, 8]: small enough to verify in a blink, real enough for ORT and lint."""
    from onnx import TensorProto, helper, numpy_helper, save

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((8, 4)).astype("float32"), "w"),
             numpy_helper.from_array(rng.standard_normal(4).astype("float32"), "b")]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="matmul0"),
             helper.make_node("Add", ["m", "b"], ["a"], name="add0"),
             helper.make_node("Relu", ["a"], ["y"], name="relu0")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="tests")
    model.ir_version = 8
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    save(model, str(path))
    return path


def _recipe(tmp_path, name: str, source: dict, **sections) -> str:
    data = {"name": name, "source": source, "inputs": [{"name": "x", "shape": [1, 8]}],
            "output_dir": str(tmp_path / "build"), **sections}
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    return str(path)


def _paddle_dir(tmp_path):
    """A Paddle model directory; the stack check refuses before any byte of it is read."""
    model_dir = tmp_path / "paddle_model"
    model_dir.mkdir()
    (model_dir / "inference.pdmodel").write_bytes(b"not read: the conversion stack is missing")
    (model_dir / "inference.pdiparams").write_bytes(b"not read either")
    return model_dir


def test_the_blocker_hides_the_stack(env):
    for module, dist in CONVERT_STACK.items():
        proc = run_python(f"import {module}", env)
        assert proc.returncode == 1 and f"ModuleNotFoundError: No module named '{module}'" in proc.stderr
        proc = run_python(f"import importlib.metadata as m; m.version({dist!r})", env)
        assert "PackageNotFoundError" in proc.stderr, proc.stderr
    proc = run_python("import onnx, onnxruntime, numpy, converter.cli; print('ok')", env)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_help_and_explain(env):
    res = run_npuconv(["--help"], env)
    assert res.code == 0, res.stderr
    assert "explain" in res.stdout and "doctor" in res.stdout
    res = run_npuconv(["explain", LOG, "--json"], env)
    assert res.code == 1, res.stderr
    assert [e["code"] for e in res.json()["errors"]] == ["E10016"]


def test_doctor_names_the_missing_extra(env):
    res = run_npuconv(["doctor", "--json"], env)
    assert res.code == 0, res.stderr
    data = res.json()
    assert data["tools"]["paddlepaddle"] is None and data["tools"]["paddle2onnx"] is None
    assert data["tools"]["onnxsim"] is None and data["tools"]["onnxruntime"]
    assert data["convert"] == {"installed": False, "missing": ["paddlepaddle", "paddle2onnx", "onnxsim"],
                               "hint": "pip install 'npuconv[convert]' (the conversion stack; `make install` "
                                       "installs everything)"}
    human = run_npuconv(["doctor"], env)
    assert "conversion stack: paddlepaddle, paddle2onnx, onnxsim missing" in human.stdout
    assert "pip install 'npuconv[convert]'" in human.stdout


def test_lint_a_plain_onnx(env, tiny_onnx):
    res = run_npuconv(["lint", tiny_onnx, "--json"], env)
    assert res.code == 0, res.stderr
    data = res.json()
    assert data["nodes"] == 3 and data["opset"] == 13


def test_verify_an_onnx_recipe_on_cpu(env, tiny_onnx, tmp_path):
    recipe = _recipe(tmp_path, "tiny", {"format": "onnx", "path": str(tiny_onnx)}, onnx={"disable_passes": ["simplify"]})
    res = run_npuconv(["verify", recipe, "--target", "onnx:cpu", "--json"], env)
    assert res.code == 0, res.stderr
    data = res.json()
    assert data["passed"] is True
    assert [o["name"] for o in data["outputs"]] == ["y"] and data["outputs"][0]["max_abs"] == 0.0


def test_om_dry_run_of_an_onnx_recipe(env, tiny_onnx, tmp_path):
    recipe = _recipe(tmp_path, "tiny", {"format": "onnx", "path": str(tiny_onnx)}, onnx={"disable_passes": ["simplify"]},
                     om={"soc_version": "Ascend310P3"})
    res = run_npuconv(["om", recipe, "--dry-run", "--json"], env)
    assert res.code == 0, res.stderr
    assert "--soc_version=Ascend310P3" in res.json()["argv"]


def _refused(res, missing: str) -> None:
    assert res.code == 2, res.stderr
    error = res.json()["error"]
    assert error["type"] == "ToolNotFound"
    assert error["message"].startswith(missing)
    assert "pip install 'npuconv[convert]'" in error["hint"]


def test_converting_a_paddle_recipe_names_the_extra(env, tmp_path):
    recipe = _recipe(tmp_path, "paddle", {"format": "paddle", "model_dir": str(_paddle_dir(tmp_path))})
    _refused(run_npuconv(["onnx", recipe, "--json"], env), "paddlepaddle and paddle2onnx are not installed")
    _refused(run_npuconv(["lint", recipe, "--json"], env), "paddlepaddle and paddle2onnx are not installed")
    human = run_npuconv(["onnx", recipe], env)
    assert human.code == 2
    lines = human.stderr.strip().splitlines()
    assert lines[-2].startswith("error: paddlepaddle and paddle2onnx are not installed")
    assert lines[-1].startswith("hint: pip install 'npuconv[convert]'")
    assert "Traceback" not in human.stderr


def test_simplifying_without_onnxsim_names_the_extra(env, tiny_onnx, tmp_path):
    recipe = _recipe(tmp_path, "tiny", {"format": "onnx", "path": str(tiny_onnx)}, onnx={})
    res = run_npuconv(["onnx", recipe, "--json"], env)
    _refused(res, "onnxsim is not installed")
    assert "Traceback" not in res.stderr

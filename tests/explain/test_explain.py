"""`npuconv explain` on recorded atc logs (shaped after atc's message templates: the CANN GE error-code
catalog, msit's ATC-error fixtures, logs quoted in public issues): every error kind translated, the op
names and types, the recipe key to change, the closest chips for a refused --soc_version; the CLI's exit
codes and JSON; and the emitted build script pointing at `npuconv explain` for its own log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from converter.ascend import closest_socs
from converter.stages.atc.explain import explain

HERE = Path(__file__).resolve().parent
LOGS = HERE / "logs"
FAKE_ATC_DIR = HERE.parent / "om" / "fake_atc"


def _explain(name: str):
    result = explain((LOGS / name).read_text())
    assert result is not None
    return result


def _changes(result) -> dict[str, str]:
    return {c.key: c.advice for c in result.changes}


def test_e10016_unknown_input_name():
    result = _explain("e10016_input_name.log")
    assert not result and result.status == "failed"
    [error] = result.diagnosis.errors
    assert error.code == "E10016"
    assert error.message.startswith("Opname [image] specified in [--input_shape] is not found in the model.")
    assert error.meaning == "an input name in --input_shape (or a node in --out_nodes) is not in the model"
    option = result.option_for("E10016")
    assert (option["option"], option["value"], option["recipe_key"]) == ("input_shape", "image", "inputs[].name")
    assert _changes(result) == {"inputs[].name": "image is not a graph input; use the ONNX graph's input names "
                                                 "exactly (`npuconv lint MODEL.onnx` lists them)"}
    assert result.diagnosis.unsupported_ops == ()


def test_e10001_soc_version_lists_the_closest_chips():
    result = _explain("e10001_soc_version.log")
    [error] = result.diagnosis.errors
    assert error.code == "E10001"
    option = result.option_for("E10001")
    assert option["option"] == "soc_version" and option["value"] == "Ascend310P"
    assert option["reason"] == "The soc version is not supported by the installed operator package."
    assert option["closest"] == ["Ascend310P1", "Ascend310P3", "Ascend310P5"]
    assert option["recipe_key"] == "om.soc_version"
    advice = _changes(result)["om.soc_version"]
    assert advice.endswith("closest known: Ascend310P1, Ascend310P3, Ascend310P5")
    assert "npu-smi info" in advice


def test_e10001_precision_mode_v2_lists_what_is_allowed():
    result = _explain("e10001_precision_mode_v2.log")
    option = result.option_for("E10001")
    assert (option["option"], option["value"]) == ("precision_mode_v2", "fp32")
    allowed = ["fp16", "origin", "cube_fp16in_fp32out", "mixed_float16", "mixed_bfloat16", "cube_hif8", "mixed_hif8"]
    assert option["allowed"] == allowed
    assert _changes(result) == {"om.precision_mode_v2": f"use one of {', '.join(allowed)}"}


def test_e19010_no_parser_ops_and_opset():
    result = _explain("e19010_unsupported_ops.log")
    assert [e.code for e in result.diagnosis.errors] == ["E19010"]
    ops = [(o["name"], o["type"], o["raw_type"]) for o in result.diagnosis.unsupported_ops]
    assert ops == [("p2o.Div.4", "Div", "ai.onnx::23::Div"),  # listed twice in the log, once here
                   ("p2o.GridSample.0", "GridSample", "ai.onnx::20::GridSample"),
                   ("custom_nms_0", "MultiClassNMS", "com.paddle::1::MultiClassNMS")]
    changes = _changes(result)
    assert changes["onnx.opset"] == ("atc parses ai.onnx opsets up to 18; Div (opset 23), GridSample (opset 20) "
                                     "need a lower onnx.opset (<= 18)")
    assert changes["the model's ops"].startswith("replace or remove p2o.Div.4 (Div), p2o.GridSample.0 (GridSample), "
                                                 "custom_nms_0 (MultiClassNMS) before atc (`npuconv lint`")
    assert [c.because for c in result.changes] == [("E19010",), ("E19010",)]


def test_ez3002_dynamic_shape_merges_the_node_name():
    result = _explain("ez3002_dynamic_shape.log")
    assert [e.code for e in result.diagnosis.errors] == ["EZ3002"]
    [op] = result.diagnosis.unsupported_ops  # EZ3002 names the type, the traceback's EZ3003 line the node
    assert op == {"name": "NonZero_118", "type": "NonZero", "raw_type": "NonZero", "kernel": "AIcoreEngine",
                  "reason": "Dynamic shape is not supported on this chip!."}
    advice = _changes(result)["inputs[].shape / om.dynamic"]
    assert advice.startswith("make every shape static: fixed inputs[].shape, no om.dynamic; if NonZero computes")


def test_ez3002_titled_dtype_points_to_precision():
    result = _explain("ez3002_dtype_titled.log")  # newer CANN: `Unsupported_Operator(EZ3002):` after PID and time
    [error] = result.diagnosis.errors
    assert error.code == "EZ3002"
    assert error.message.startswith("Optype [MaxPoolV3] of Ops kernel [AIcoreEngine] is unsupported. Reason: ")
    [op] = result.diagnosis.unsupported_ops
    assert (op["name"], op["type"], op["kernel"]) == ("", "MaxPoolV3", "AIcoreEngine")
    assert "data type DT_FLOAT of input [x] is not supported" in op["reason"]
    assert list(_changes(result)) == ["om.precision_mode_v2"]
    assert "the kernel of MaxPoolV3 has no implementation for this dtype" in _changes(result)["om.precision_mode_v2"]


def test_ez3003_no_kernel_on_this_chip():
    result = _explain("ez3003_no_kernel.log")
    assert [e.code for e in result.diagnosis.errors] == ["EZ3003"]
    assert [(o["name"], o["type"]) for o in result.diagnosis.unsupported_ops] == [("p2o.Roll.0", "Roll"),
                                                                                  ("p2o.Roll.1", "Roll")]
    advice = _changes(result)["the model's ops"]
    assert advice.startswith("replace or remove p2o.Roll.0 (Roll), p2o.Roll.1 (Roll) before atc")
    assert advice.endswith("or target a chip that has them (om.soc_version)")


def test_build_script_output_knows_the_chip():
    result = _explain("build_script_ez3002_310p3.log")
    assert result.soc_version == "Ascend310P3" and result.exit_code == 255
    assert result.problems == ({"kind": "script", "message": "error: atc exited with code 255",
                                "fix": "the error codes above say why"},)
    [op] = result.diagnosis.unsupported_ops
    assert (op["type"], op["kernel"]) == ("Range", "AIcoreEngine")
    advice = _changes(result)["inputs[].shape / om.dynamic"]
    assert "(Ascend310P3 is a 310-class chip: no dynamic-shape kernels)" in advice


def test_success_log():
    result = _explain("success.log")
    assert result and result.status == "success"
    assert result.to_json() == {"passed": True, "status": "success", "soc_version": None, "atc_exit_code": None,
                                "errors": [], "unsupported_ops": [], "problems": [], "recipe_changes": []}


def test_text_without_an_atc_run():
    assert explain("just some text\nno markers here\n") is None


@pytest.mark.parametrize(("given", "closest"), [
    ("Ascend310P", ["Ascend310P1", "Ascend310P3", "Ascend310P5"]),
    ("ascend310p3", ["Ascend310P3"]),          # a case slip
    ("310B1", ["Ascend310B1"]),                # the Ascend prefix forgotten
    ("Ascend910B", ["Ascend910B"]),            # a name npuconv knows exactly
    ("Ascend910B9", ["Ascend910B1", "Ascend910B2", "Ascend910B3"]),
    ("GeForce", []),
])
def test_closest_socs(given, closest):
    assert closest_socs(given) == closest


# ---- the command ------------------------------------------------------------------------------------

def test_cli_exit_codes_and_json(run_cli, tmp_path):
    ok = run_cli("explain", LOGS / "success.log")
    assert ok.code == 0 and "atc succeeded" in ok.stdout
    ok_json = run_cli("explain", LOGS / "success.log", "--json")
    assert ok_json.code == 0 and ok_json.json()["passed"] is True

    failed = run_cli("explain", LOGS / "e19010_unsupported_ops.log", "--json")
    assert failed.code == 1
    data = failed.json()
    assert data["log"] == str(LOGS / "e19010_unsupported_ops.log")
    assert data["passed"] is False and data["status"] == "failed"
    assert [e["code"] for e in data["errors"]] == ["E19010"]
    assert [o["name"] for o in data["unsupported_ops"]] == ["p2o.Div.4", "p2o.GridSample.0", "custom_nms_0"]
    assert [c["key"] for c in data["recipe_changes"]] == ["onnx.opset", "the model's ops"]

    soc = run_cli("explain", LOGS / "e10001_soc_version.log", "--json").json()
    assert soc["errors"][0]["option"]["closest"] == ["Ascend310P1", "Ascend310P3", "Ascend310P5"]

    missing = run_cli("explain", tmp_path / "nope.log", "--json")
    assert missing.code == 2
    assert missing.json()["error"]["type"] == "InputError"
    assert missing.json()["error"]["message"] == f"no such file: {tmp_path / 'nope.log'}"

    binary = tmp_path / "model.om"
    binary.write_bytes(b"FAKE-OM\0\x01\x02")
    res = run_cli("explain", binary)
    assert res.code == 2 and "is not a text log" in res.stderr

    other = tmp_path / "notes.txt"
    other.write_text("nothing from atc here\n")
    res = run_cli("explain", other)
    assert res.code == 2 and "shows no atc run" in res.stderr
    # the hint names the log where `npuconv om` and the emitted script write it: <output_dir>/<stem>.atc.log
    assert run_cli("explain", other, "--json").json()["error"]["hint"].startswith(
        "pass the atc log: `npuconv om` and the emitted build script write it to <output_dir>/<name>[_<variant>].atc.log")
    assert run_cli("explain", tmp_path).code == 2  # a directory


def test_cli_human_output(run_cli):
    res = run_cli("explain", LOGS / "e10001_soc_version.log")
    assert res.code == 1
    assert "atc failed" in res.stdout and "E10001" in res.stdout
    assert ("--soc_version 'Ascend310P' refused (E10001); closest known chips: Ascend310P1, Ascend310P3, "
            "Ascend310P5") in res.stdout
    assert "change in the recipe:" in res.stdout and "om.soc_version" in res.stdout


def test_cli_reads_stdin():
    text = (LOGS / "ez3003_no_kernel.log").read_text()
    proc = subprocess.run([sys.executable, "-m", "converter", "explain", "-", "--json"], input=text, text=True,
                          check=False, capture_output=True, cwd=HERE.parents[1], env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 1, proc.stderr
    assert '"code": "EZ3003"' in proc.stdout


def test_failed_build_script_points_to_explain(run_cli, tmp_path):
    """Emit a build script, run it with the fake atc failing with a recorded log, and explain both the log it
    names and its captured output."""
    from onnx import TensorProto, helper, save

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu0")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save(model, str(tmp_path / "m.onnx"))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: relu\nsource: {{format: onnx, path: {tmp_path / 'm.onnx'}}}\n"
                      "inputs: [{name: x, shape: [1, 3, 8, 8]}]\nonnx: {disable_passes: [simplify], parity: false}\n"
                      f"om: {{soc_version: Ascend310P3}}\noutput_dir: {tmp_path / 'build'}\n")
    script = tmp_path / "build_om.sh"
    emitted = run_cli("om", recipe, "--emit-script", script, "--json")
    assert emitted.code == 0, emitted.stderr
    server = tmp_path / "server"
    captured = tmp_path / "build.out"
    env = {**os.environ, "PATH": f"{FAKE_ATC_DIR}{os.pathsep}{os.environ['PATH']}", "FAKE_ATC_MODE": "fail",
           "FAKE_ATC_LOG": str(LOGS / "ez3002_dynamic_shape.log"), "FAKE_ATC_RC": "255"}
    with captured.open("w") as out:
        rc = subprocess.run(["sh", str(script), emitted.json()["onnx"], str(server)], stdout=out,
                            stderr=subprocess.STDOUT, env=env, check=False).returncode
    assert rc == 1
    lines = captured.read_text().splitlines()
    log = server / "relu.atc.log"
    assert lines[-1] == (f"error: atc exited with code 255; what went wrong and what to change: "
                         f"npuconv explain '{log}'")
    from_log = run_cli("explain", log, "--json")
    assert from_log.code == 1
    assert [e["code"] for e in from_log.json()["errors"]] == ["EZ3002"]
    from_output = run_cli("explain", captured, "--json").json()
    assert from_output["soc_version"] == "Ascend310P3" and from_output["atc_exit_code"] == 255
    assert [o["name"] for o in from_output["unsupported_ops"]] == ["NonZero_118"]
    [change] = from_output["recipe_changes"]
    assert "(Ascend310P3 is a 310-class chip: no dynamic-shape kernels)" in change["advice"]


def test_environment_and_script_lines():
    """A build server without the toolkit libraries on LD_LIBRARY_PATH: no atc output at all, only the
    loader's message and the script's failure line; and an atc killed for memory."""
    text = ("atc: compiling m.onnx for Ascend910B2, log: /srv/atc.log\n"
            "/usr/local/Ascend/ascend-toolkit/8.0.0/x86_64-linux/bin/atc.bin: error while loading shared libraries: "
            "libascend_hal.so: cannot open shared object file: No such file or directory\n"
            "error: atc exited with code 127; what went wrong and what to change: npuconv explain '/srv/atc.log'\n")
    result = explain(text)
    assert result.status == "failed" and result.soc_version == "Ascend910B2" and result.exit_code == 127
    assert [(p["kind"], p["fix"]) for p in result.problems] == [
        ("environment", "source CANN's set_env.sh (e.g. /usr/local/Ascend/ascend-toolkit/set_env.sh) before running atc"),
        ("script", "atc printed no error code: rerun with om.extra_args.log: debug and read the whole log")]
    assert result.changes == ()
    killed = explain("ATC start working now, please wait for a moment.\nerror: atc exited with code 137; what went "
                     "wrong and what to change: npuconv explain 'a.log'\n")
    assert killed.problems[0]["fix"].startswith("atc was killed (SIGKILL), usually out of memory")


def test_required_option_empty():
    result = explain("ATC run failed, Please check the detail log, Try 'atc --help' for more information\n"
                     "E10054: The requied parameter [--model] for ATC is empty. Another possible reason is that the "
                     "value of some parameter is not enclosed by quotation marks (\"\").\n")
    option = result.option_for("E10054")
    assert (option["option"], option["value"], option["recipe_key"]) == ("model", None, "source")
    assert [c.key for c in result.changes] == ["source"]
    assert result.changes[0].advice.startswith("atc got no ONNX: run `npuconv onnx RECIPE` first")

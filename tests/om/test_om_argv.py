"""Golden tests: the literal atc argv and cfg files `npuconv om --dry-run --json` prints."""

from __future__ import annotations

import json

import pytest
from om_support import MODELS, atc_calls, needs_models


def test_static_minimal_argv(cli, make_recipe, tmp_path, fake_atc):
    recipe = make_recipe({"soc_version": "Ascend310P3", "precision_mode_v2": "origin"})
    res = cli("om", recipe, "--dry-run", "--json")
    assert res.code == 0, res.stderr
    out = tmp_path / "build"
    assert res.json()["argv"] == [
        "atc",
        f"--model={out}/tiny.onnx",
        "--framework=5",
        f"--output={out}/tiny",
        "--soc_version=Ascend310P3",
        "--input_format=NCHW",
        "--input_shape=x:1,3,16,16",
        "--precision_mode_v2=origin",
    ]
    assert res.json()["files"] == {}
    assert res.json()["warnings"] == []
    assert not fake_atc.exists()  # --dry-run never starts atc, even when it is installed


def test_every_option_argv_and_files(cli, make_recipe, tmp_path):
    recipe = make_recipe({
        "soc_version": "Ascend910B2",
        "precision_mode_v2": "mixed_float16",
        "keep_dtype": ["conv0", "OpType::Relu"],
        "modify_mixlist": {"black-list": {"to-add": ["Relu"]}, "white-list": {"to-remove": ["Conv2D"]}},
        "op_select_implmode": "high_precision",
        "optypelist_for_implmode": ["Sigmoid", "Softmax"],
        "host_env_os": "linux",
        "host_env_cpu": "aarch64",
        "aipp": {"input_format": "RGB888_U8", "source_order": "BGR"},
        "extra_args": {"op_compiler_cache_mode": "enable", "log": "error"},
    })
    res = cli("om", recipe, "--dry-run", "--json")
    assert res.code == 0, res.stderr
    out = tmp_path / "build"
    cfg = out / "atc" / "default"
    data = res.json()
    assert data["argv"] == [
        "atc",
        f"--model={out}/tiny.onnx",
        "--framework=5",
        f"--output={out}/tiny",
        "--soc_version=Ascend910B2",
        "--input_format=NCHW",
        "--input_shape=x:1,3,16,16",
        "--precision_mode_v2=mixed_float16",
        f"--keep_dtype={cfg}/keep_dtype.cfg",
        f"--modify_mixlist={cfg}/modify_mixlist.json",
        "--op_select_implmode=high_precision",
        "--optypelist_for_implmode=Sigmoid,Softmax",
        f"--insert_op_conf={cfg}/aipp.cfg",
        "--host_env_os=linux",
        "--host_env_cpu=aarch64",
        "--log=error",
        "--op_compiler_cache_mode=enable",
    ]
    files = data["files"]
    assert files[f"{cfg}/keep_dtype.cfg"] == "conv0\nOpType::Relu\n"
    assert json.loads(files[f"{cfg}/modify_mixlist.json"]) == {
        "black-list": {"to-add": ["Relu"]}, "white-list": {"to-remove": ["Conv2D"]}}
    aipp = files[f"{cfg}/aipp.cfg"]
    # (pixel - 123.675) / 58.395 == (pixel - min_chn_0) * var_reci_chn_0
    for line in ("aipp_mode : static", "input_format : RGB888_U8", "rbuv_swap_switch : true", "csc_switch : false",
                 "mean_chn_0 : 0", "min_chn_0 : 123.675", "var_reci_chn_0 : 0.017124754",
                 "min_chn_1 : 116.28", "var_reci_chn_1 : 0.017507003", "min_chn_2 : 103.53",
                 "var_reci_chn_2 : 0.017429194", "related_input_rank : 0"):
        assert f"    {line}\n" in aipp, line
    for path, text in files.items():  # dry-run writes them so the printed argv runs as is
        assert (tmp_path / "build" / path).read_text() == text


def test_aipp_yuv_csc_and_scale(cli, make_recipe, tmp_path):
    recipe = make_recipe({"soc_version": "Ascend310P3", "precision_mode_v2": "fp16",
                          "aipp": {"input_format": "YUV420SP_U8"}},
                         preprocess=False)
    text = recipe.read_text() + "preprocess: {mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], scale: 0.00392156862745098, channel_order: BGR}\n"
    recipe.write_text(text)
    res = cli("om", recipe, "--dry-run", "--json")
    assert res.code == 0, res.stderr
    aipp = next(iter(res.json()["files"].values()))
    # BGR output from YUV: the B row (256, 454, 0) comes first
    for line in ("csc_switch : true", "matrix_r0c0 : 256", "matrix_r0c1 : 454", "matrix_r0c2 : 0",
                 "matrix_r2c2 : 359", "input_bias_1 : 128", "min_chn_0 : 127.5", "var_reci_chn_0 : 0.0078431373",
                 "rbuv_swap_switch : false"):
        assert f"    {line}\n" in aipp, line


def test_dynamic_batch(cli, make_recipe, tmp_path):
    import onnx

    recipe = make_recipe({"soc_version": "Ascend310P3", "precision_mode_v2": "origin", "dynamic": {"batch": [1, 2, 4, 8]}})
    res = cli("om", recipe, "--dry-run", "--json")
    assert res.code == 0, res.stderr
    argv = res.json()["argv"]
    assert argv[6:] == ["--input_shape=x:-1,3,16,16", "--dynamic_batch_size=1,2,4,8", "--precision_mode_v2=origin"]
    dims = onnx.load(res.json()["onnx"]).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value if d.HasField("dim_value") else "sym" for d in dims] == ["sym", 3, 16, 16]


def test_dynamic_image_size(cli, make_recipe):
    recipe = make_recipe({"soc_version": "Ascend310P3", "precision_mode_v2": "origin",
                          "dynamic": {"image_size": [[16, 16], [32, 48]]}})
    res = cli("om", recipe, "--dry-run", "--json")
    assert res.code == 0, res.stderr
    assert res.json()["argv"][5:8] == ["--input_format=NCHW", "--input_shape=x:1,3,-1,-1",
                                       "--dynamic_image_size=16,16;32,48"]


def test_dynamic_dims_nd(cli, make_recipe):
    recipe = make_recipe({"soc_version": "Ascend310P3", "precision_mode_v2": "origin", "input_format": "ND",
                          "dynamic": {"dims": [[1, 16], [2, 32], [4, 64]], "axes": {"x": [3, 0]}}})
    res = cli("om", recipe, "--dry-run", "--json")
    assert res.code == 0, res.stderr
    assert res.json()["argv"][5:8] == ["--input_format=ND", "--input_shape=x:-1,3,16,-1",
                                       "--dynamic_dims=1,16;2,32;4,64"]


def test_two_inputs(cli, make_recipe, tiny2_onnx):
    recipe = make_recipe({"soc_version": "Ascend310B1", "precision_mode": "force_fp32"}, source=tiny2_onnx,
                         inputs=[{"name": "x", "shape": [1, 3, 16, 16]}, {"name": "y", "shape": [1, 4]}])
    res = cli("om", recipe, "--dry-run", "--json")
    assert res.code == 0, res.stderr
    assert res.json()["argv"][4:] == ["--soc_version=Ascend310B1", "--input_format=NCHW",
                                      "--input_shape=x:1,3,16,16;y:1,4", "--precision_mode=force_fp32"]


def test_variants_pick_and_name_outputs(cli, make_recipe, tmp_path):
    recipe = make_recipe([
        {"variant": "p3_origin", "soc_version": "Ascend310P3", "precision_mode_v2": "origin"},
        {"variant": "b2_mixed", "soc_version": "Ascend910B2", "precision_mode_v2": "mixed_bfloat16"},
    ])
    res = cli("om", recipe, "--dry-run", "--json", "--variant", "b2_mixed")
    assert res.code == 0, res.stderr
    data = res.json()
    assert data["argv"][3:5] == [f"--output={tmp_path}/build/tiny_b2_mixed", "--soc_version=Ascend910B2"]
    assert data["argv"][-1] == "--precision_mode_v2=mixed_bfloat16"
    assert data["om"] == f"{tmp_path}/build/tiny_b2_mixed.om"
    assert data["log"] == f"{tmp_path}/build/tiny_b2_mixed.atc.log"
    first = cli("om", recipe, "--dry-run", "--json").json()
    assert first["variant"] == "p3_origin" and first["argv"][-1] == "--precision_mode_v2=origin"
    missing = cli("om", recipe, "--dry-run", "--json", "--variant", "nope")
    assert missing.code == 2
    assert missing.json()["error"]["type"] == "RecipeError"
    assert "p3_origin, b2_mixed" in missing.json()["error"]["hint"]


def test_set_overrides_recipe_field(cli, make_recipe):
    recipe = make_recipe({"soc_version": "Ascend310P3", "precision_mode_v2": "origin"})
    res = cli("om", recipe, "--dry-run", "--json", "--set", "om.precision_mode_v2=fp16",
              "--set", "om.soc_version=Ascend310P1")
    assert res.code == 0, res.stderr
    assert res.json()["argv"][4] == "--soc_version=Ascend310P1"
    assert res.json()["argv"][-1] == "--precision_mode_v2=fp16"


def test_default_precision_is_loud(cli, make_recipe):
    recipe = make_recipe({"soc_version": "Ascend310P3"})
    res = cli("om", recipe, "--dry-run", "--json")
    assert res.code == 0, res.stderr
    assert not any(a.startswith("--precision_mode") for a in res.json()["argv"])
    [warning] = res.json()["warnings"]
    assert "atc will compile this fp32 model in FP16" in warning
    assert "atc will compile this fp32 model in FP16" in res.stderr


def test_human_dry_run_prints_one_command_line(cli, make_recipe, tmp_path):
    recipe = make_recipe({"soc_version": "Ascend310P3", "precision_mode_v2": "origin",
                          "dynamic": {"image_size": [[16, 16], [32, 32]]}})
    res = cli("om", recipe, "--dry-run")
    assert res.code == 0, res.stderr
    assert res.stdout.strip().endswith(" --input_shape=x:1,3,-1,-1 '--dynamic_image_size=16,16;32,32' "
                                    "--precision_mode_v2=origin")
    assert res.stdout.startswith(f"atc --model={tmp_path}/build/tiny_hw16x16-32x32.onnx --framework=5 ")
    assert res.stdout.count("\n") == 1


def test_missing_om_section(cli, make_recipe, fake_atc):
    recipe = make_recipe(None)
    res = cli("om", recipe, "--json")
    assert res.code == 2
    err = res.json()["error"]
    assert err["type"] == "RecipeError"
    assert "`om`" in err["message"]
    assert "soc_version: Ascend310P3" in err["hint"]
    assert atc_calls(fake_atc) == []


@pytest.mark.e2e
@needs_models("ch_PP-OCRv4_rec_infer")
def test_real_rec_dry_run(cli, tmp_path):
    recipe = tmp_path / "rec.yaml"
    recipe.write_text(
        f"name: ppocrv4_rec\nsource: {{format: paddle, model_dir: {MODELS / 'ch_PP-OCRv4_rec_infer'}}}\n"
        "inputs: [{name: x, shape: [1, 3, 48, 320]}]\n"
        f"output_dir: {tmp_path / 'out'}\n"
        "om: {soc_version: Ascend310P3, precision_mode_v2: origin}\n")
    res = cli("om", recipe, "--dry-run", "--json")
    assert res.code == 0, res.stderr
    out = tmp_path / "out"
    assert res.json()["argv"] == [
        "atc", f"--model={out}/ppocrv4_rec.onnx", "--framework=5", f"--output={out}/ppocrv4_rec",
        "--soc_version=Ascend310P3", "--input_format=NCHW", "--input_shape=x:1,3,48,320",
        "--precision_mode_v2=origin",
    ]

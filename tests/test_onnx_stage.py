"""The onnx stage on small real Paddle models: static shapes, parity with Paddle Inference, the card,
and the content-hash cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from converter.recipe import load_recipe
from converter.stages import onnx_stage
from converter.stages.onnx_stage import build_onnx

REPO = Path(__file__).resolve().parent.parent


def static_dims(model: onnx.ModelProto) -> list[list[int]]:
    return [[d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in list(model.graph.input) + list(model.graph.output)]


def no_dim_param(model: onnx.ModelProto) -> bool:
    values = list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info)
    return all(d.HasField("dim_value") for vi in values for d in vi.type.tensor_type.shape.dim)


def test_crnn_dynamic_width_becomes_static(paddle_models, make_recipe):
    result = build_onnx(load_recipe(make_recipe("crnn", paddle_models["crnn"])), force=True)
    model = onnx.load(result.onnx)
    assert result.onnx.name == "crnn.onnx" and not result.cached
    assert static_dims(model) == [[1, 3, 32, 64], [1, 16, 11]]
    assert no_dim_param(model) and result.card["dynamic_dims"] == []
    assert result.card["opset_requested"] == 11 and result.card["opset_written"] == 14  # hardswish raises it
    assert {o.domain for o in model.opset_import} <= {"", "ai.onnx"}
    assert not any(n.op_type == "Constant" for n in model.graph.node)
    assert result.card["nodes_after"] < result.card["nodes_before"]
    parity = result.card["parity"]
    assert parity["passed"] and parity["reference"] == "paddle-inference"
    (out,) = parity["outputs"].values()
    assert out["shape"] == [1, 16, 11] and out["max_abs"] < 1e-5 and out["cosine"] > 0.99999
    assert json.loads(result.card_path.read_text())["parity"] == parity


def test_fcn_dynamic_hw_and_two_inputs(paddle_models, make_recipe, tmp_path):
    fcn = build_onnx(load_recipe(make_recipe("fcn", paddle_models["fcn"])))
    assert static_dims(onnx.load(fcn.onnx)) == [[1, 3, 64, 96], [1, 1, 64, 96]]
    assert fcn.card["parity"]["passed"]
    two = build_onnx(load_recipe(make_recipe("two_inputs", paddle_models["two_inputs"], name="two.yaml")))
    assert [i["shape"] for i in two.card["inputs"]] == [[2, 3, 16, 16], [2, 10]]
    assert [o["shape"] for o in two.card["outputs"]] == [[2, 4], [2, 10]]
    outputs = list(two.card["parity"]["outputs"].values())
    assert len(outputs) == 2 and all(o["passed"] for o in outputs)
    assert outputs[1]["max_abs"] == 0.0  # features * 2 is exact


@pytest.mark.parametrize("axes", [[0], [2, 3]])
def test_dynamic_axes_stay_symbolic_and_nothing_else(paddle_models, make_recipe, axes):
    result = build_onnx(load_recipe(make_recipe("fcn", paddle_models["fcn"])), dynamic_axes={"x": axes})
    model = onnx.load(result.onnx)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    expected = [f"x_{a}" if a in axes else v for a, v in enumerate([1, 3, 64, 96])]
    assert [d.dim_param or d.dim_value for d in dims] == expected
    assert result.onnx.name == "fcn_dyn.onnx"
    assert result.card["dynamic_axes"] == {"x": axes} and result.card["parity"]["passed"]


def test_onnx_source_is_fixed_and_checked_against_itself(paddle_models, make_recipe, tmp_path):
    # The raw paddle2onnx output of the CRNN keeps its dynamic batch and width.
    first = build_onnx(load_recipe(make_recipe("crnn", paddle_models["crnn"])))
    raw = Path(first.card["artifacts"]["raw_onnx"])
    assert [d.dim_param or d.dim_value for d in onnx.load(raw).graph.input[0].type.tensor_type.shape.dim][3] != 64
    recipe = make_recipe(text=f"""
        name: from_onnx
        source: {{format: onnx, path: {raw}}}
        inputs: [{{name: x, shape: [2, 3, 32, 128]}}]
        output_dir: {tmp_path / 'o2'}
    """, name="o.yaml")
    result = build_onnx(load_recipe(recipe))
    assert static_dims(onnx.load(result.onnx)) == [[2, 3, 32, 128], [2, 32, 11]]
    assert result.card["parity"]["reference"] == "onnxruntime-source" and result.card["parity"]["passed"]
    assert result.card["opset_requested"] is None


class TestCache:
    @pytest.fixture
    def fresh_cache(self, tmp_path, monkeypatch):
        monkeypatch.setenv("NPUCONV_CACHE", str(tmp_path / "cache"))

    @pytest.fixture
    def model_copy(self, paddle_models, tmp_path):
        import shutil

        dest = tmp_path / "model"
        shutil.copytree(paddle_models["fcn"], dest)
        return dest

    def test_rerun_is_a_hit_and_changes_rebuild(self, fresh_cache, model_copy, make_recipe, monkeypatch):
        path = make_recipe("fcn", model_copy)
        assert not build_onnx(load_recipe(path)).cached
        assert build_onnx(load_recipe(path)).cached
        # A bench section does not change the ONNX.
        assert build_onnx(load_recipe(path, ["bench.iterations=7"])).cached
        # The onnx and inputs sections do.
        assert not build_onnx(load_recipe(path, ["onnx.opset=13"])).cached
        assert not build_onnx(load_recipe(path, ["inputs.0.shape=[1,3,32,32]"])).cached
        # --force rebuilds even when nothing changed.
        assert not build_onnx(load_recipe(path), force=True).cached
        # Another tool version rebuilds.
        real = onnx_stage.tool_versions
        monkeypatch.setattr(onnx_stage, "tool_versions", lambda names: {**real(names), "onnxsim": "0.0.0-other"})
        assert not build_onnx(load_recipe(path)).cached
        monkeypatch.setattr(onnx_stage, "tool_versions", real)
        assert build_onnx(load_recipe(path)).cached
        # One changed byte in the params file rebuilds.
        params = model_copy / "inference.pdiparams"
        data = bytearray(params.read_bytes())
        data[-1] ^= 0x01
        params.write_bytes(bytes(data))
        assert not build_onnx(load_recipe(path)).cached

    def test_hit_imports_no_heavy_backend(self, fresh_cache, model_copy, make_recipe):
        path = make_recipe("fcn", model_copy)
        build_onnx(load_recipe(path))
        probe = (
            "import sys, json\n"
            "from converter.recipe import load_recipe\n"
            "from converter.stages.onnx_stage import build_onnx\n"
            f"r = build_onnx(load_recipe({str(path)!r}))\n"
            "heavy = sorted(m for m in ('paddle', 'onnx', 'onnxruntime', 'onnxsim', 'paddle2onnx') if m in sys.modules)\n"
            "print(json.dumps({'cached': r.cached, 'heavy': heavy}))\n"
        )
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
        assert json.loads(out.stdout) == {"cached": True, "heavy": []}

    def test_cached_output_is_restored_to_output_dir(self, fresh_cache, model_copy, make_recipe):
        path = make_recipe("fcn", model_copy)
        first = build_onnx(load_recipe(path))
        expected = first.onnx.read_bytes()
        first.onnx.unlink()
        again = build_onnx(load_recipe(path))
        assert again.cached and again.onnx.read_bytes() == expected


def test_parity_detects_a_wrong_model(paddle_models, make_recipe, tmp_path, monkeypatch):
    """The parity check is real: feed the Paddle reference a different model and it fails."""
    from converter.stages import checks

    real = checks.run_ort

    def perturbed(model, feed):
        return {k: v + np.float32(1e-3) for k, v in real(model, feed).items()}

    monkeypatch.setattr(checks, "run_ort", perturbed)
    result = build_onnx(load_recipe(make_recipe("fcn", paddle_models["fcn"])), force=True)
    assert not result
    (out,) = result.card["parity"]["outputs"].values()
    assert not out["passed"] and out["max_abs"] == pytest.approx(1e-3, rel=1e-2)

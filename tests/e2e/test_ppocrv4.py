"""End to end on the real PP-OCRv4 det/rec and mobile cls models (`make models`): the shipped recipes
convert to fully static ONNX that matches Paddle Inference."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e

EXPECTED = {
    "ppocrv4_det": ([1, 3, 640, 640], [[1, 1, 640, 640]]),
    "ppocrv4_rec": ([1, 3, 48, 320], [[1, 40, 6625]]),
    "ppocr_cls": ([1, 3, 48, 192], [[1, 2]]),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_recipe_converts_static_and_matches_paddle(name, real_models, run_cli, tmp_path):
    res = run_cli("onnx", REPO / "recipes" / f"{name}.yaml", "-o", tmp_path, "--json",
                  env={"NPUCONV_MODELS": str(real_models)})
    assert res.code == 0, res.stderr
    data = res.json()
    in_shape, out_shapes = EXPECTED[name]
    assert data["inputs"] == [{"name": "x", "shape": in_shape, "dtype": "float32"}]
    assert [o["shape"] for o in data["outputs"]] == out_shapes
    assert data["dynamic_dims"] == []
    assert data["opset"] == 14 and data["opset_requested"] == 11

    model = onnx.load(data["onnx"])
    tensors = list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info)
    assert all(d.HasField("dim_value") for t in tensors for d in t.type.tensor_type.shape.dim)
    assert {o.domain for o in model.opset_import} <= {"", "ai.onnx"}
    assert data["nodes"]["after"] < data["nodes"]["before"]

    parity = data["parity"]
    assert parity["passed"] and parity["reference"] == "paddle-inference"
    for out in parity["outputs"].values():
        assert out["max_abs"] <= 1e-4
        assert out["cosine"] >= 0.99999 or not out["cosine_judged"]


def test_rec_argmax_is_identical_to_paddle(real_models, tmp_path):
    """Beyond the metric thresholds: the CTC path (argmax per time step) of the converted recogniser is
    the one Paddle computes, on a real-looking input."""
    import numpy as np
    import paddle.inference as pi

    from pipeline_support import convert, onnx_path

    from converter.recipe import load_recipe
    from converter.runners.onnxruntime import OnnxRuntimeRunner

    recipe = load_recipe(REPO / "recipes" / "ppocrv4_rec.yaml", model_dir=real_models / "ch_PP-OCRv4_rec_infer",
                         output_dir=tmp_path)
    result = convert(recipe)
    rng = np.random.default_rng(7)
    # A dark text-like stripe pattern on a light background, normalised like PP-OCR does.
    image = np.full((48, 320), 0.8, np.float32)
    for x0 in range(20, 300, 24):
        image[12:36, x0:x0 + 10] = 0.1
    x = np.broadcast_to((image - 0.5) / 0.5, (1, 3, 48, 320)).astype(np.float32) + rng.normal(0, 0.01, (1, 3, 48, 320)).astype(np.float32)
    config = pi.Config(str(recipe.source.model_file()), str(recipe.source.params_file()))
    config.disable_gpu()
    predictor = pi.create_predictor(config)
    predictor.get_input_handle("x").copy_from_cpu(x)
    predictor.run()
    expected = predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()
    with OnnxRuntimeRunner(onnx_path(result)) as runner:
        (actual,) = runner.infer({"x": x}).values()
    assert actual.shape == (1, 40, 6625)
    assert np.array_equal(actual.argmax(-1), expected.argmax(-1))
    assert float(np.abs(actual - expected).max()) < 1e-4

"""`npuconv verify` as a user runs it: the table for people, exit 2 with one error line for bad input,
and the image path an OM with AIPP gets (raw uint8) next to the reference's preprocessed tensor."""

from __future__ import annotations

import numpy as np


def test_table_names_the_verdict_the_overflow_and_the_fix(overflow_recipe, run_cli):
    res = run_cli("verify", overflow_recipe(), "--target", "emulate:fp16")
    assert res.code == 1
    assert "FAIL" in res.stdout and "fp16 overflow starts at fc1" in res.stdout
    assert "keep_dtype: ['fc1', 'scale']" in res.stdout and "overflow.keep_dtype.suggested.cfg" in res.stdout
    assert "error:" not in res.stderr


def test_bad_input_is_exit_2_with_one_error_line(overflow_recipe, run_cli):
    recipe = overflow_recipe()
    for args, words in ((["--target", "emulate:fp16", "--set", "verify.data=nowhere.npz"], "verify.data not found"),
                        (["--target", "om", "--variant", "nope"], "--variant nope"),
                        (["--target", "paddle", "--set", "verify.tolerance.default.cosine=2"], "verify.tolerance.default.cosine")):
        res = run_cli("verify", recipe, *args)
        assert res.code == 2, res.stderr
        errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and words in errors[0], res.stderr


def test_aipp_om_gets_the_raw_image_and_the_reference_the_preprocessed_one(tmp_path):
    from PIL import Image

    from converter.recipe.loader import load_recipe
    from converter.verify.inputs import load_samples

    folder = tmp_path / "images"
    folder.mkdir()
    pixels = np.zeros((4, 6, 3), np.uint8)
    pixels[..., 0] = 200  # red
    Image.fromarray(pixels).save(folder / "red.png")
    recipe_file = tmp_path / "r.yaml"
    recipe_file.write_text(
        "name: m\nsource: {format: onnx, path: m.onnx}\ninputs: [{name: x, shape: [1, 3, 4, 6]}]\n"
        "preprocess: {mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], scale: 0.00392156862745098, channel_order: BGR}\n"
        "verify: {data: images}\n")
    (sample,) = load_samples(load_recipe(recipe_file), raw_images="BGR")
    raw, x = sample.target_feed["x"], sample.feed["x"]
    assert raw.dtype == np.uint8 and raw.shape == (1, 4, 6, 3) and raw[0, 0, 0].tolist() == [0, 0, 200]
    assert x.dtype == np.float32 and x.shape == (1, 3, 4, 6)
    # BGR order: channel 2 is red: (200/255 - 0.5) / 0.5; blue and green are (0 - 0.5) / 0.5.
    assert np.allclose(x[0, :, 0, 0], [-1.0, -1.0, 200 / 255 * 2 - 1], atol=1e-6)
    (plain,) = load_samples(load_recipe(recipe_file))
    assert plain.target_feed is None


def test_onnx_runtime_target_with_layerwise_on_the_same_graph(overflow_recipe, run_cli):
    data = run_cli("verify", overflow_recipe(), "--target", "onnx:cpu", "--layerwise", "--json").json()
    assert data["passed"] is True and data["target"] == "onnx:CPUExecutionProvider" and data["precision"] == "fp32"
    assert data["outputs"][0]["max_abs"] == 0.0
    assert data["layerwise"]["compared"] == 4 and data["first_divergent_node"] is None

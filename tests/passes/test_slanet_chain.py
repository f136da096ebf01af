"""The real SLANet-plus export through this branch's passes in chain order (repairs, fold_control_flow,
int32, lower_opset to 13): what each one changes, and outputs that still match Paddle Inference."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pass_support import load, op_count, ort_run, paddle_run

from converter.passes import registry
from converter.passes.base import ModelSet
from converter.passes.graphs import opset_of
from converter.recipe.model import OnnxConfig

pytestmark = pytest.mark.e2e


def _table_page() -> dict[str, np.ndarray]:
    """A white page ruled into cells, normalized with ImageNet mean/std as the recipe does."""
    page = np.full((1, 3, 488, 488), 255, np.float32)
    page[:, :, ::40, :] = 0
    page[:, :, :, ::80] = 0
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1)
    return {"x": ((page / 255 - mean) / std).astype(np.float32)}


def test_slanet_through_the_passes(slanet_raw, slanet_dir):
    raw = load(slanet_raw)
    section = OnnxConfig(max_opset=13)
    steps = [(p, p.configure(section)) for p in map(registry.get, ("repairs", "fold_control_flow", "int32", "lower_opset"))]

    models, records, _, _ = registry.apply(ModelSet.single(raw), steps)

    by_name = {r.name: r for r in records}
    assert by_name["repairs"].changed == {"Cast": 3}
    assert by_name["fold_control_flow"].changed == {} and by_name["fold_control_flow"].notes == ()  # data-dependent exit
    assert any(n.startswith("OneHot '") and "(in Loop 'Loop.0' body)" in n for n in by_name["int32"].notes)
    assert by_name["lower_opset"].notes[0] == "ai.onnx opset 17 -> 13"
    json.dumps([r.to_json() for r in records])  # what the card will carry
    model = models.model
    assert opset_of(model) == 13 and op_count(model, "Loop") == 1 and op_count(model, "HardSwish") == 0

    feed = _table_page()
    expected, actual = paddle_run(slanet_dir, feed), ort_run(model, feed)
    assert [a.shape for a in actual] == [e.shape for e in expected]
    np.testing.assert_array_equal(actual[1].argmax(-1), expected[1].argmax(-1))
    for e, a in zip(expected, actual):
        np.testing.assert_allclose(a, e, rtol=0, atol=1e-4)

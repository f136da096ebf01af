"""The onnx stage's parity through the comparator: positional pairing under the ONNX's names, the
recipe's fp32 limits, and the card's stored metrics judged again under other limits without arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest

from converter.compare import limits_for, rejudge
from converter.errors import StageFailed
from converter.recipe.verify import VerifyConfig
from converter.stages.onnx_parity import source_parity as stage_parity
from converter.stages.onnx_verdict import parity_report


def source_parity(reference, actual, name, seed):
    return stage_parity(reference, actual, name, seed, snapshots=[], records=[], feed={})


def test_card_parity_is_judged_again_with_the_recipes_current_limits():
    maps = np.full((1, 1, 4, 4), 3e-5, np.float32)
    boxes = np.array([[100.0, 200.0, 300.0, 400.0]], np.float32)
    reference = [maps, boxes]  # Paddle's outputs, by position
    actual = {"sigmoid_0.tmp_0": maps * np.float32(1.5), "boxes_out": boxes + np.float32(0.02)}
    card = {"parity": json.loads(json.dumps(source_parity(reference, actual, "paddle-inference", 0)))}
    verdict = parity_report(card, VerifyConfig())
    outputs = verdict.to_json()["outputs"]
    assert list(outputs) == ["sigmoid_0.tmp_0", "boxes_out"]
    maps_out, boxes_out = outputs.values()
    # maps: |a-b| = 1.5e-5 everywhere, both sides below max_abs 1e-4: cosine (1.0) not judged; passes.
    assert maps_out["passed"] and not maps_out["cosine_judged"] and maps_out["shape"] == [1, 1, 4, 4]
    # boxes: 0.02 > 1e-4 + 1e-4 * 100 = 0.0101 (the smallest coordinate): fails under the built-ins.
    assert not boxes_out["passed"] and not verdict

    # The recipe now says boxes may drift by 1e-3 relative: 0.02 <= 1e-4 + 1e-3 * 100. No arrays needed.
    cfg = VerifyConfig.model_validate({"tolerance": {"boxes_out": {"rtol": 1e-3}}})
    assert parity_report(card, cfg)
    again = rejudge(card["parity"]["outputs"], limits_for(cfg, "fp32"))
    assert again.passed and again.checks[1].limits.source == "recipe:verify.tolerance.boxes_out+builtin:fp32"


def test_output_count_mismatch_is_a_stage_failure():
    with pytest.raises(StageFailed, match="1 outputs, the ONNX has 2"):
        source_parity([np.zeros(2)], {"a": np.zeros(2), "b": np.zeros(2)}, "paddle-inference", 0)

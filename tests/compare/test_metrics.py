"""converter.compare on fixed arrays: every expected number is derived by hand (written out in the
comments) or with plain numpy formulas in the test, never by the comparator."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from converter.compare import (
    FP16,
    FP32,
    Comparison,
    Limits,
    compare_arrays,
    compare_outputs,
    pair_outputs,
    rejudge,
)

REF = np.array([1.0, -2.0, 0.0, 4.0], np.float32)
TGT = np.array([1.5, -2.0, 0.25, 3.0], np.float32)


def test_metrics_of_a_fixed_pair_by_hand():
    m = compare_arrays(REF, TGT)
    # |a-b| = [0.5, 0, 0.25, 1]
    assert m.max_abs == 1.0 and m.mean_abs == 1.75 / 4
    assert m.rmse == pytest.approx(math.sqrt((0.25 + 0 + 0.0625 + 1) / 4), rel=1e-15)
    # 0.25 / |0| uses the 1e-12 floor
    assert m.max_rel == pytest.approx(0.25 / 1e-12)
    # dot = 1.5 + 4 + 0 + 12; |ref|^2 = 21; |tgt|^2 = 2.25 + 4 + 0.0625 + 9
    assert m.cosine == pytest.approx(17.5 / math.sqrt(21 * 15.3125), rel=1e-15)
    assert (m.reference_max_abs, m.target_max_abs, m.size) == (4.0, 3.0, 4)
    assert (m.nan, m.inf, m.shape_match, m.dtype_match) == (0, 0, True, True)
    # points (|b|, |a-b|): (1, .5) (2, 0) (0, .25) (4, 1). (2, 0) is dominated by (1, .5); the chord from
    # (0, .25) to (4, 1) is at .4375 for m = 1, below .5, so (1, .5) stays on the hull.
    assert m.hull == ((0.0, 0.25), (1.0, 0.5), (4.0, 1.0))


def test_elementwise_rule_at_hand_derived_limits():
    # (4, 1) needs max_abs + rtol * 4 >= 1: with max_abs 0.5 that is rtol >= 0.125 (exact in binary).
    fails = compare_outputs({"y": REF}, {"y": TGT}, Limits(0.5, 0.1, -1.0)).checks[0]
    passes = compare_outputs({"y": REF}, {"y": TGT}, Limits(0.5, 0.125, -1.0)).checks[0]
    assert not fails and passes
    assert fails.failures[0].startswith("|a-b| > max_abs + rtol*|b|") and fails.needed_max_abs == pytest.approx(0.6)
    # rtol 0: only max_abs counts; 1.0 is the largest |a-b|.
    assert compare_outputs({"y": REF}, {"y": TGT}, Limits(1.0, 0.0, -1.0))
    assert not compare_outputs({"y": REF}, {"y": TGT}, Limits(0.999, 0.0, -1.0))


def test_box_coordinates_need_rtol_not_an_absolute_1e4():
    boxes = np.array([[120.5, 300.25, 410.0, 640.0], [8.0, 16.0, 250.5, 480.75]], np.float32)
    drift = (boxes.astype(np.float64) * (1 + 5e-5)).astype(np.float32)  # fp32 accumulation-order noise
    (check,) = compare_outputs({"boxes": boxes}, {"boxes": drift}, FP32).checks
    # max |a-b| is about 640 * 5e-5 = 0.032, 320x the absolute 1e-4, yet every element is within
    # 1e-4 + 1e-4 * |b| (640 -> 0.0641).
    assert 0.03 < check.metrics.max_abs < 0.035 and check.passed
    assert not compare_outputs({"boxes": boxes}, {"boxes": drift}, Limits(1e-4, 0.0, 0.99999)).passed
    off = drift.copy()
    off[0, 1] += 0.5  # a box edge moved by half a pixel: 0.5 > 1e-4 + 1e-4 * 300.25 = 0.030125
    (bad,) = compare_outputs({"boxes": boxes}, {"boxes": off}, FP32).checks
    assert not bad.passed and bad.cosine_judged and bad.metrics.cosine > 0.99999  # cosine alone would miss it
    assert len(bad.failures) == 1 and "max_abs + rtol" in bad.failures[0]


def test_near_zero_probability_map_is_not_judged_on_cosine():
    # A detector's map on random input: sigmoid of very negative logits, ~1e-7 everywhere.
    rng = np.random.default_rng(3)
    logits = rng.uniform(-17.0, -15.0, (1, 1, 32, 32))
    ref = (1 / (1 + np.exp(-logits))).astype(np.float32)
    tgt = (ref * (1 + rng.uniform(-0.05, 0.05, ref.shape))).astype(np.float32)
    r, a = ref.astype(np.float64).ravel(), tgt.astype(np.float64).ravel()
    cosine = r @ a / np.linalg.norm(r) / np.linalg.norm(a)
    assert cosine < 0.99999 and np.abs(a - r).max() < 1e-7  # what fails today
    (check,) = compare_outputs({"maps": ref}, {"maps": tgt}, FP32).checks
    assert check.passed and not check.cosine_judged and check.to_json()["cosine_judged"] is False
    assert check.metrics.cosine == pytest.approx(cosine, rel=1e-12)
    # One side not ~0 (a target value above max_abs): cosine is judged again, and fails.
    loud = tgt.copy()
    loud[0, 0, 0, 0] = 2e-4
    (judged,) = compare_outputs({"maps": ref}, {"maps": loud}, FP32).checks
    assert judged.cosine_judged and any(f.startswith("cosine") for f in judged.failures)


def test_cosine_is_judged_on_outputs_that_are_not_zero():
    ref = np.array([3.0, 4.0], np.float32)
    tgt = np.array([4.0, 3.0], np.float32)  # cosine 24/25 = 0.96, |a-b| = 1
    (check,) = compare_outputs({"y": ref}, {"y": tgt}, Limits(2.0, 0.0, 0.97)).checks
    assert check.metrics.cosine == pytest.approx(0.96, rel=1e-15)
    assert check.failures == ("cosine 0.9600000 < 0.97",)


def test_nan_inf_shapes_missing_outputs_and_dtypes():
    ref = np.array([0.0, -np.inf, 1.0], np.float32)
    same_mask = np.array([0.0, -np.inf, 1.0 + 1e-6], np.float32)
    (masked,) = compare_outputs({"y": ref}, {"y": same_mask}).checks
    # -inf on both sides at the same place is equal (an attention mask); metrics cover the rest.
    assert masked.passed and (masked.metrics.inf, masked.metrics.nonfinite_matched, masked.metrics.size) == (1, 1, 2)
    nan = np.array([0.0, -np.inf, np.nan], np.float32)
    (bad,) = compare_outputs({"y": ref}, {"y": nan}).checks
    assert not bad.passed and bad.failures == ("1 NaN, 1 Inf in the target (1 of them also in the reference)",)
    finite = np.array([0.0, -3.0, 1.0], np.float32)
    (hole,) = compare_outputs({"y": ref}, {"y": finite}).checks
    assert not hole.passed and hole.failures == ("the reference holds NaN/Inf where the target does not",)
    (shape,) = compare_outputs({"y": ref}, {"y": ref[:2]}).checks
    assert not shape.passed and "shape [2]" in shape.failures[0]
    missing = compare_outputs({"a": ref, "b": ref}, {"out0": ref})
    assert [c.target_output for c in missing.checks] == ["out0", None]
    assert missing.checks[1].failures == ("missing in the target",) and not missing
    (as_int,) = compare_outputs({"y": np.array([1, 2], np.int64)}, {"y": np.array([1, 2], np.int32)}).checks
    assert as_int.passed and not as_int.metrics.dtype_match  # reported, not failed


def test_outputs_pair_by_name_else_by_position():
    assert pair_outputs({"a": 1, "b": 2}, {"b": 0, "a": 0}) == [("a", "a"), ("b", "b")]
    assert pair_outputs({"a": 1, "b": 2}, {"output_0": 0, "a": 0}) == [("a", "output_0"), ("b", "a")]
    ref = {"a": np.zeros(2, np.float32), "b": np.ones(3, np.float32)}
    renamed = {"output_0": np.zeros(2, np.float32), "output_1": np.ones(3, np.float32)}
    assert [(c.output, c.target_output, c.passed) for c in compare_outputs(ref, renamed).checks] == [
        ("a", "output_0", True), ("b", "output_1", True)]


def test_row_windows_compare_the_first_rows_and_zero_rows_fail():
    ref = np.zeros((1, 6, 3), np.float32)
    act = ref.copy()
    act[0, 4:] = 7.0  # garbage after the source's early exit
    (three,) = compare_outputs({"seq": ref}, {"seq": act}, windows={"seq": (1, 4)}).checks
    assert three.passed and three.metrics.size == 12 and str(three.window) == "first 4 of 6 rows along axis 1"
    (five,) = compare_outputs({"seq": ref}, {"seq": act}, windows={0: (-2, 5)}).checks  # by index, negative axis
    assert not five.passed and five.window.rows == 5 and five.metrics.max_abs == 7.0
    (none,) = compare_outputs({"seq": ref}, {"seq": act}, windows={"seq": (1, 0)}).checks
    assert not none.passed and none.failures == ("no rows compared",)
    (short,) = compare_outputs({"seq": ref}, {"seq": act[:, :2]}, windows={"seq": (1, 4)}).checks
    assert not short.passed and not short.metrics.shape_match


def test_json_round_trip_and_rejudge_without_the_arrays():
    comparison = compare_outputs({"y": REF, "z": REF}, {"y": TGT, "z": REF}, Limits(0.5, 0.1, -1.0), sample=3)
    stored = json.loads(json.dumps(comparison.to_json()))
    assert Comparison.from_json(stored) == comparison
    assert [c.passed for c in comparison.checks] == [False, True]
    looser = rejudge(stored, Limits(0.5, 0.125, -1.0, ("recipe:verify.tolerance.default",) * 3))
    assert looser.passed and looser.checks[0].sample == 3
    assert looser.checks[0].limits.source == "recipe:verify.tolerance.default"
    # name -> limits, and the card's form (outputs by name)
    per_name = rejudge({"outputs": {c.output: c.to_json() for c in comparison.checks}},
                       lambda name: Limits(0.5, 0.1, -1.0) if name == "z" else Limits(1.0, 0.0, -1.0))
    assert per_name.passed
    # A stored verdict is never read back: it is judged again.
    stored["checks"][0]["passed"] = True
    assert not Comparison.from_json(stored)


def test_builtin_limits_are_the_numbers_the_readme_states():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = dict(re.findall(r"\| (fp32|fp16) \| `verify\.tolerance(?:_fp16)?` \| (\S+ / \S+ / \S+) \|", readme))
    for precision, limits in (("fp32", FP32), ("fp16", FP16)):
        max_abs, rtol, cosine = (float(x) for x in rows[precision].split(" / "))
        assert (limits.max_abs, limits.rtol, limits.cosine) == (max_abs, rtol, cosine)
        assert limits.source == f"builtin:{precision}"

"""Re-judging from stored metrics agrees with a direct elementwise numpy check, for many random arrays
and limits: the stored hull points decide |a-b| <= max_abs + rtol*|b| exactly."""

from __future__ import annotations

import json

import numpy as np

from converter.compare import Comparison, Limits, compare_arrays, compare_outputs, rejudge


def _direct(d: np.ndarray, m: np.ndarray, max_abs: float, rtol: float) -> bool:
    """The rule itself, element by element: d = |a-b|, m = |b| in float64."""
    return bool(np.all(d <= max_abs + rtol * m))


def _pairs(rng: np.random.Generator):
    """Reference/target pairs of the kinds comparisons meet: fp32 noise, relative drift (boxes), fp16
    rounding, a few large errors, exact zeros and ties, and arrays large enough for the thinning path."""
    for size in (1, 2, 7, 100, 1000, 70_000, 140_000):
        ref = rng.normal(0, rng.choice([1e-6, 1.0, 300.0]), size).astype(np.float32)
        yield ref, (ref + rng.normal(0, 1e-5, size)).astype(np.float32)
        yield ref, (ref * (1 + rng.normal(0, 1e-4, size))).astype(np.float32)
        yield ref, ref.astype(np.float16).astype(np.float32)
        spiky = ref.copy()
        spiky[rng.integers(0, size, max(1, size // 500))] += rng.normal(0, 1.0, max(1, size // 500)).astype(np.float32)
        yield ref, spiky
        yield ref, ref * np.float32(2)  # d == m exactly: every point on one line
    ties = np.repeat(np.array([0.0, 1.0, 2.0, 4.0], np.float32), 50)
    yield ties, ties + rng.choice([0.0, 0.5, 1.0], ties.size).astype(np.float32)
    zeros = np.zeros(64, np.float32)
    yield zeros, zeros
    yield zeros, rng.normal(0, 1e-3, 64).astype(np.float32)


def _limits(rng: np.random.Generator, d: np.ndarray) -> list[tuple[float, float]]:
    top = float(d.max()) or 1e-6
    out = [(0.0, 0.0), (top, 0.0), (top * 0.999, 0.0)]
    for _ in range(40):
        out.append((float(rng.uniform(0, 1.2) * top), float(10 ** rng.uniform(-7, 0))))
        out.append((float(10 ** rng.uniform(-9, 0)), float(rng.choice([0.0, 1e-4, 1e-2, rng.uniform(0, 2)]))))
    return out


def test_stored_hull_rejudges_exactly_like_the_elementwise_check():
    rng = np.random.default_rng(20260101)
    judged = disagreements = 0
    for ref, tgt in _pairs(rng):
        stored = json.loads(json.dumps(compare_outputs({"y": ref}, {"y": tgt}).to_json()))
        assert len(stored["checks"][0]["hull"]) <= 64
        m = np.abs(ref.astype(np.float64))
        d = np.abs(tgt.astype(np.float64) - ref.astype(np.float64))
        for max_abs, rtol in _limits(rng, d):
            verdict = rejudge(stored, Limits(max_abs, rtol, -1.0)).passed
            judged += 1
            disagreements += verdict != _direct(d, m, max_abs, rtol)
    assert disagreements == 0 and judged > 3000


def test_the_hull_is_small_and_made_of_real_points():
    rng = np.random.default_rng(7)
    ref = rng.normal(size=200_000).astype(np.float32)
    tgt = (ref + rng.normal(0, 1e-4, ref.size)).astype(np.float32)
    hull = compare_arrays(ref, tgt).hull
    m, d = np.abs(ref.astype(np.float64)), np.abs(tgt.astype(np.float64) - ref)
    points = set(zip(m.tolist(), d.tolist()))
    assert 1 <= len(hull) <= 20 and all(p in points for p in hull)
    # Its last point is the largest error, its first a point of the smallest |reference|.
    assert hull[-1][1] == d.max() and hull[0][0] == m.min()
    # For every rtol the maximum of d - rtol*m over all elements is reached on the hull.
    for rtol in (0.0, 1e-6, 1e-4, 1e-2, 1.0, 1e6):
        assert max(hd - rtol * hm for hm, hd in hull) == np.max(d - rtol * m)


def test_rejudge_keeps_the_verdict_of_other_failures():
    ref = np.ones(4, np.float32)
    nan = np.array([1, np.nan, 1, 1], np.float32)
    stored = Comparison.from_json(json.loads(json.dumps(compare_outputs({"y": ref}, {"y": nan}).to_json())))
    assert not rejudge(stored, Limits(1e9, 1e9, -1.0))
    shape = compare_outputs({"y": ref}, {"y": ref[:3]})
    assert not rejudge(shape.to_json(), Limits(1e9, 1e9, -1.0))

"""Per-output metrics of a target array against a reference array, computed in float64, with the hull
points that let the elementwise verdict be re-judged for any limits (see frontier.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from converter.compare.frontier import pareto_hull

_REL_FLOOR = 1e-12  # max_rel divides by max(|reference|, this)


@dataclass(frozen=True)
class OutputMetrics:
    """How far a target array is from its reference. `nan`/`inf` count the target's non-finite values;
    `nonfinite_matched` those the reference holds at the same place (an attention mask's -inf on both
    sides): they are equal and left out of every other metric. `hull` holds the points (|reference|,
    |target - reference|) that decide the elementwise rule for every (max_abs, rtol)."""

    shape_match: bool
    dtype_match: bool
    reference_shape: tuple[int, ...]
    target_shape: tuple[int, ...]
    size: int                  # elements compared
    max_abs: float
    max_rel: float
    mean_abs: float
    rmse: float
    cosine: float
    nan: int
    inf: int
    nonfinite_matched: int
    reference_max_abs: float   # max |x| over the compared elements of each side
    target_max_abs: float
    hull: tuple[tuple[float, float], ...]

    @property
    def unexpected_nonfinite(self) -> int:
        """NaN/Inf in the target that the reference does not hold at the same place."""
        return self.nan + self.inf - self.nonfinite_matched

    def to_json(self) -> dict:
        out = asdict(self)
        out["reference_shape"], out["target_shape"] = list(self.reference_shape), list(self.target_shape)
        out["hull"] = [list(p) for p in self.hull]
        return out

    @classmethod
    def from_json(cls, data: Mapping) -> OutputMetrics:
        """Rebuild from `to_json()` output (extra keys are ignored)."""
        return cls(
            shape_match=bool(data["shape_match"]), dtype_match=bool(data["dtype_match"]),
            reference_shape=tuple(int(x) for x in data["reference_shape"]),
            target_shape=tuple(int(x) for x in data["target_shape"]),
            size=int(data["size"]), max_abs=float(data["max_abs"]), max_rel=float(data["max_rel"]),
            mean_abs=float(data["mean_abs"]), rmse=float(data["rmse"]), cosine=float(data["cosine"]),
            nan=int(data["nan"]), inf=int(data["inf"]), nonfinite_matched=int(data["nonfinite_matched"]),
            reference_max_abs=float(data["reference_max_abs"]), target_max_abs=float(data["target_max_abs"]),
            hull=tuple((float(m), float(d)) for m, d in data["hull"]),
        )


def compare_arrays(reference, target) -> OutputMetrics:
    """Metrics of `target` against `reference`. Shapes that differ give infinite errors and cosine 0. A
    non-finite value on one side that the other side does not hold at the same place makes the errors
    infinite and the cosine 0."""
    ref, act = np.asarray(reference), np.asarray(target)
    floating = act.dtype.kind in "fc"
    nan = int(np.isnan(act).sum()) if floating else 0
    inf = int(np.isinf(act).sum()) if floating else 0
    shapes = dict(reference_shape=tuple(ref.shape), target_shape=tuple(act.shape), dtype_match=ref.dtype == act.dtype)
    if ref.shape != act.shape:
        return OutputMetrics(shape_match=False, size=0, max_abs=math.inf, max_rel=math.inf, mean_abs=math.inf,
                             rmse=math.inf, cosine=0.0, nan=nan, inf=inf, nonfinite_matched=0,
                             reference_max_abs=_absmax(ref), target_max_abs=_absmax(act), hull=(), **shapes)
    r = ref.astype(np.float64).ravel()
    a = act.astype(np.float64).ravel()
    finite_r, finite_a = np.isfinite(r), np.isfinite(a)
    matched = 0
    broken = False
    if not (finite_r.all() and finite_a.all()):
        both = ~finite_r & ~finite_a & ((r == a) | (np.isnan(r) & np.isnan(a)))
        matched = int(both.sum())
        broken = bool((~(finite_r & finite_a) & ~both).any())
        keep = finite_r & finite_a
        r, a = r[keep], a[keep]
    ref_max, act_max = (float(np.abs(r).max()), float(np.abs(a).max())) if r.size else (0.0, 0.0)
    if broken:
        return OutputMetrics(shape_match=True, size=int(r.size), max_abs=math.inf, max_rel=math.inf,
                             mean_abs=math.inf, rmse=math.inf, cosine=0.0, nan=nan, inf=inf, nonfinite_matched=matched,
                             reference_max_abs=ref_max, target_max_abs=act_max, hull=((0.0, math.inf),), **shapes)
    if r.size == 0:
        return OutputMetrics(shape_match=True, size=0, max_abs=0.0, max_rel=0.0, mean_abs=0.0, rmse=0.0, cosine=1.0,
                             nan=nan, inf=inf, nonfinite_matched=matched, reference_max_abs=0.0, target_max_abs=0.0,
                             hull=(), **shapes)
    diff = np.abs(a - r)
    mag = np.abs(r)
    norms = float(np.linalg.norm(r)) * float(np.linalg.norm(a))
    # Two all-zero arrays are identical; one all-zero array against a non-zero one is not.
    cosine = float(np.dot(r, a) / norms) if norms > 0 else (1.0 if not diff.any() else 0.0)
    return OutputMetrics(
        shape_match=True, size=int(r.size),
        max_abs=float(diff.max()),
        max_rel=float((diff / np.maximum(mag, _REL_FLOOR)).max()),
        mean_abs=float(diff.mean()),
        rmse=float(np.sqrt(np.mean(diff * diff))),
        cosine=min(1.0, max(-1.0, cosine)),
        nan=nan, inf=inf, nonfinite_matched=matched,
        reference_max_abs=ref_max, target_max_abs=act_max,
        hull=pareto_hull(mag, diff),
        **shapes,
    )


def _absmax(x: np.ndarray) -> float:
    """max |x| over the finite values (0 for none)."""
    if x.dtype.kind not in "fiuc" or x.size == 0:
        return 0.0
    v = np.abs(x.astype(np.float64))
    v = v[np.isfinite(v)]
    return float(v.max()) if v.size else 0.0

"""Per-output comparison metrics (computed in float64)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class OutputMetrics:
    """How far `actual` is from `reference` for one output of one sample."""

    shape_match: bool
    dtype_match: bool
    max_abs: float
    max_rel: float
    mean_abs: float
    rmse: float
    cosine: float
    nan: int
    inf: int

    def to_json(self) -> dict:
        return asdict(self)


def compare_arrays(reference: np.ndarray, actual: np.ndarray) -> OutputMetrics:
    """Metrics of `actual` against `reference`. Shapes that differ give inf errors and cosine 0; NaN/Inf
    in `actual` are counted and make every error infinite."""
    ref = np.asarray(reference)
    act = np.asarray(actual)
    nan = int(np.isnan(act).sum()) if act.dtype.kind == "f" else 0
    inf = int(np.isinf(act).sum()) if act.dtype.kind == "f" else 0
    if ref.shape != act.shape:
        return OutputMetrics(False, ref.dtype == act.dtype, float("inf"), float("inf"), float("inf"), float("inf"), 0.0, nan, inf)
    r = ref.astype(np.float64).ravel()
    a = act.astype(np.float64).ravel()
    if r.size == 0:
        return OutputMetrics(True, ref.dtype == act.dtype, 0.0, 0.0, 0.0, 0.0, 1.0, nan, inf)
    if nan or inf:
        return OutputMetrics(True, ref.dtype == act.dtype, float("inf"), float("inf"), float("inf"), float("inf"), 0.0, nan, inf)
    diff = np.abs(a - r)
    denom = np.maximum(np.abs(r), 1e-12)
    norms = np.linalg.norm(r) * np.linalg.norm(a)
    # Two all-zero tensors are identical; one all-zero tensor against a non-zero one is not.
    cosine = float(np.dot(r, a) / norms) if norms > 0 else (1.0 if not diff.any() else 0.0)
    return OutputMetrics(
        shape_match=True,
        dtype_match=ref.dtype == act.dtype,
        max_abs=float(diff.max()),
        max_rel=float((diff / denom).max()),
        mean_abs=float(diff.mean()),
        rmse=float(np.sqrt(np.mean(diff**2))),
        cosine=cosine,
        nan=nan,
        inf=inf,
    )

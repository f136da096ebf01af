"""The one comparator (numpy only), used by the onnx stage's parity, `verify` and `bench`.

An element passes when |target - reference| <= max_abs + rtol * |reference| (numpy.isclose's form); an
output passes when shapes match, the target holds no NaN/Inf the reference does not hold at the same
place, every element passes, and the cosine reaches its limit unless both sides are ~0. Metrics are
stored with the few points that let the verdict be re-judged for any limits (`rejudge`)."""

from converter.compare.check import (
    Comparison,
    OutputCheck,
    RowWindow,
    compare_outputs,
    pair_outputs,
    rejudge,
)
from converter.compare.frontier import pareto_hull, within, worst_excess
from converter.compare.limits import (
    BUILTIN,
    FP16,
    FP32,
    Limits,
    Precision,
    limits_for,
    precision_of,
    resolve_limits,
)
from converter.compare.metrics import OutputMetrics, compare_arrays

__all__ = [
    "BUILTIN", "FP16", "FP32", "Comparison", "Limits", "OutputCheck", "OutputMetrics", "Precision", "RowWindow",
    "compare_arrays", "compare_outputs", "limits_for", "pair_outputs", "pareto_hull", "precision_of", "rejudge",
    "resolve_limits", "within", "worst_excess",
]

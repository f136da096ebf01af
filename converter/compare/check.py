"""Verdicts: every output of a sample against its limits, outputs paired by name or position, optional
row windows (early-exit decoders), and re-judging stored metrics under other limits."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from converter.compare.frontier import within, worst_excess
from converter.compare.limits import FP32, Limits
from converter.compare.metrics import OutputMetrics, compare_arrays

LimitsArg = Limits | Callable[[str], Limits]


@dataclass(frozen=True)
class RowWindow:
    """Only the first `rows` of the reference's `of` rows along `axis` were compared."""

    axis: int
    rows: int
    of: int

    def to_json(self) -> dict:
        return {"axis": self.axis, "rows": self.rows, "of": self.of}

    def __str__(self) -> str:
        return f"first {self.rows} of {self.of} rows along axis {self.axis}"


@dataclass(frozen=True)
class OutputCheck:
    """One output of one sample against its limits. `target_output` is the target's name for it (None:
    the target has no such output)."""

    output: str
    sample: int
    metrics: OutputMetrics
    limits: Limits
    target_output: str | None
    window: RowWindow | None = None

    @property
    def cosine_judged(self) -> bool:
        """False when both sides are ~0 (every compared element of each within max_abs of zero): the
        cosine of two noise floors says nothing (a detector's probability map on random input)."""
        m = self.metrics
        if self.target_output is None or not m.shape_match or m.size == 0:
            return False
        return not (m.reference_max_abs <= self.limits.max_abs and m.target_max_abs <= self.limits.max_abs)

    @property
    def needed_max_abs(self) -> float:
        """The smallest max_abs at which every element passes with this rtol: max(|a-b| - rtol*|b|, 0)."""
        return max(0.0, worst_excess(self.metrics.hull, self.limits.rtol))

    @property
    def failures(self) -> tuple[str, ...]:
        """Why this check failed (empty when it passed)."""
        m, lim = self.metrics, self.limits
        if self.target_output is None:
            return ("missing in the target",)
        if not m.shape_match:
            return (f"shape {list(m.target_shape)} differs from the reference's {list(m.reference_shape)}",)
        if self.window is not None and self.window.rows == 0:
            return ("no rows compared",)
        if m.unexpected_nonfinite > 0:
            return (f"{m.nan} NaN, {m.inf} Inf in the target" +
                    (f" ({m.nonfinite_matched} of them also in the reference)" if m.nonfinite_matched else ""),)
        if not math.isfinite(m.max_abs):
            return ("the reference holds NaN/Inf where the target does not",)
        reasons = []
        if not within(m.hull, lim.max_abs, lim.rtol):
            reasons.append(f"|a-b| > max_abs + rtol*|b|: max(|a-b| - {lim.rtol:g}*|b|) = {self.needed_max_abs:.3g} "
                           f"> {lim.max_abs:g} (max abs {m.max_abs:.3g})")
        if self.cosine_judged and not m.cosine >= lim.cosine:
            reasons.append(f"cosine {m.cosine:.7f} < {lim.cosine:g}")
        return tuple(reasons)

    @property
    def passed(self) -> bool:
        return not self.failures

    def __bool__(self) -> bool:
        return self.passed

    def rejudge(self, limits: Limits) -> OutputCheck:
        """The same metrics held to other limits."""
        return replace(self, limits=limits)

    def to_json(self) -> dict:
        out = {"output": self.output, "sample": self.sample, "target_output": self.target_output,
               **self.metrics.to_json(), "tolerance": self.limits.to_json(), "cosine_judged": self.cosine_judged,
               "needed_max_abs": self.needed_max_abs, "passed": self.passed, "failures": list(self.failures)}
        if self.window is not None:
            out["window"] = self.window.to_json()
            out["compared"] = str(self.window)
        return out

    @classmethod
    def from_json(cls, data: Mapping) -> OutputCheck:
        """Rebuild from `to_json()` output; the verdict is judged again, never read back."""
        window = data.get("window")
        return cls(str(data["output"]), int(data.get("sample", 0)), OutputMetrics.from_json(data),
                   Limits.from_json(data["tolerance"]), data.get("target_output"),
                   RowWindow(int(window["axis"]), int(window["rows"]), int(window["of"])) if window else None)


@dataclass(frozen=True)
class Comparison:
    """Checks of one or more samples; `bool()` is the verdict (every check passed)."""

    checks: tuple[OutputCheck, ...]

    def __bool__(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def passed(self) -> bool:
        return bool(self)

    def __add__(self, other: Comparison) -> Comparison:
        return Comparison(self.checks + other.checks)

    def rejudge(self, limits: LimitsArg) -> Comparison:
        """The same metrics held to `limits` (one Limits for every output, or output name -> Limits)."""
        pick = _picker(limits)
        return Comparison(tuple(c.rejudge(pick(c.output)) for c in self.checks))

    def to_json(self) -> dict:
        return {"passed": self.passed, "checks": [c.to_json() for c in self.checks]}

    @classmethod
    def from_json(cls, data) -> Comparison:
        """Rebuild from `to_json()` output, from a mapping whose `outputs` holds check JSON (a list, or a
        dict by output name, as a stage card stores them), or from an iterable of check JSON."""
        if isinstance(data, Mapping):
            items = data["checks"] if "checks" in data else data["outputs"]
            data = items.values() if isinstance(items, Mapping) else items
        return cls(tuple(OutputCheck.from_json(c) for c in data))


def rejudge(stored: Comparison | Mapping | Iterable[Mapping], limits: LimitsArg) -> Comparison:
    """Judge stored metrics (a Comparison or its JSON, see Comparison.from_json) against `limits`
    without the arrays: the onnx stage keeps metrics in its card and judges them with the recipe's
    current `verify` tolerances."""
    comparison = stored if isinstance(stored, Comparison) else Comparison.from_json(stored)
    return comparison.rejudge(limits)


def pair_outputs(reference: Mapping, target: Mapping) -> list[tuple[str, str | None]]:
    """(reference name, target name) pairs: by name when the target uses every one of the reference's
    names, else by position (OM and Paddle rename outputs); None where the target has no such output."""
    ref_names, act_names = list(reference), list(target)
    if all(n in target for n in ref_names):
        return [(n, n) for n in ref_names]
    return [(n, act_names[i] if i < len(act_names) else None) for i, n in enumerate(ref_names)]


def compare_outputs(reference: Mapping[str, np.ndarray], target: Mapping[str, np.ndarray], limits: LimitsArg = FP32,
                    *, sample: int = 0, windows: Mapping[str | int, tuple[int, int]] | None = None) -> Comparison:
    """Every output of one sample (no early verdict). `limits`: one Limits for all outputs or output name
    -> Limits. `windows`: output name or index -> (axis, k): compare only the first k rows along axis."""
    pick = _picker(limits)
    checks = []
    for index, (name, target_name) in enumerate(pair_outputs(reference, target)):
        ref = np.asarray(reference[name])
        if target_name is None:
            checks.append(OutputCheck(name, sample, compare_arrays(ref, np.empty((0,), ref.dtype)), pick(name), None))
            continue
        act = np.asarray(target[target_name])
        spec = (windows or {}).get(name, (windows or {}).get(index))
        window = None
        if spec is not None and ref.ndim:
            axis = int(spec[0]) % ref.ndim
            k = max(0, int(spec[1]))
            ref_rows = ref.shape[axis]
            ref = np.take(ref, np.arange(min(k, ref_rows)), axis=axis)
            if act.ndim == ref.ndim:
                act = np.take(act, np.arange(min(k, act.shape[axis])), axis=axis)
            window = RowWindow(axis, ref.shape[axis], ref_rows)
        checks.append(OutputCheck(name, sample, compare_arrays(ref, act), pick(name), target_name, window))
    return Comparison(tuple(checks))


def _picker(limits: LimitsArg) -> Callable[[str], Limits]:
    return (lambda _name: limits) if isinstance(limits, Limits) else limits

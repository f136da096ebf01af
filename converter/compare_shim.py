"""TEMPORARY stand-in for converter.compare while it is being written (removed at merge)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from converter.verify.metrics import compare_arrays


@dataclass(frozen=True)
class Limits:
    max_abs: float
    cosine: float


def builtin_limits(precision: str) -> Limits:
    return Limits(1e-4, 0.99999) if precision == "fp32" else Limits(5e-2, 0.999)


@dataclass(frozen=True)
class Judged:
    ok: bool
    data: dict

    def __bool__(self):
        return self.ok

    def to_json(self):
        return self.data


@dataclass(frozen=True)
class Comparison:
    metrics: dict

    def judge(self, limits) -> Judged:
        ok = all(m["shape_match"] and m["max_abs"] <= limits.max_abs and m["cosine"] >= limits.cosine for m in self.metrics.values())
        return Judged(ok, self.metrics)

    def to_json(self):
        return self.metrics


def compare_outputs(reference: dict, actual: dict, windows=None) -> Comparison:
    out = {}
    for (name, ref), act in zip(reference.items(), actual.values()):
        m = compare_arrays(np.asarray(ref), np.asarray(act))
        out[name] = {**m.to_json(), "shape": list(np.asarray(act).shape)}
    return Comparison(out)

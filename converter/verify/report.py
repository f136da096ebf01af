"""The result of `npuconv verify` as data: per output and sample checks, task checks, the layerwise
finding and the fp16 emulation analysis. `bool(report)` is the verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from converter.compare import OutputCheck
from converter.verify.tasks import TaskResult


@dataclass(frozen=True)
class VerifyReport:
    """Everything one `verify` run found."""

    recipe: str
    target: str
    reference: str
    precision: str
    samples: tuple[str, ...]
    checks: tuple[OutputCheck, ...]
    tasks: tuple[TaskResult, ...] = ()
    layerwise: Any = None   # converter.verify.layerwise.LayerwiseResult
    emulation: Any = None   # converter.verify.fp16.EmulationResult
    notes: tuple[str, ...] = field(default=())

    def __bool__(self) -> bool:
        return all(c.passed for c in self.checks) and all(t.passed for t in self.tasks)

    @property
    def passed(self) -> bool:
        return bool(self)

    def output_names(self) -> list[str]:
        return list(dict.fromkeys(c.output for c in self.checks))

    def worst(self, output: str) -> dict:
        """One output over all samples: the worst of each metric, and whether every sample passed."""
        checks = [c for c in self.checks if c.output == output]
        ms = [c.metrics for c in checks]
        return {
            "name": output,
            "max_abs": max(m.max_abs for m in ms),
            "max_rel": max(m.max_rel for m in ms),
            "mean_abs": max(m.mean_abs for m in ms),
            "rmse": max(m.rmse for m in ms),
            "cosine": min(m.cosine for m in ms),
            "cosine_judged": any(c.cosine_judged for c in checks),
            "needed_max_abs": max(c.needed_max_abs for c in checks),
            "nan": sum(m.nan for m in ms),
            "inf": sum(m.inf for m in ms),
            "shape_match": all(m.shape_match for m in ms),
            "dtype_match": all(m.dtype_match for m in ms),
            "tolerance": checks[0].limits.to_json(),
            "passed": all(c.passed for c in checks),
            "failed_samples": [c.sample for c in checks if not c.passed],
        }

    def to_json(self) -> dict:
        out: dict[str, Any] = {
            "passed": self.passed,
            "recipe": self.recipe,
            "target": self.target,
            "reference": self.reference,
            "precision": self.precision,
            "samples": list(self.samples),
            "outputs": [self.worst(name) for name in self.output_names()],
            "checks": [c.to_json() for c in self.checks],
        }
        if self.tasks:
            out["task"] = {"passed": all(t.passed for t in self.tasks), "results": [t.to_json() for t in self.tasks]}
        if self.layerwise is not None:
            out["layerwise"] = self.layerwise.to_json()
            out["first_divergent_node"] = self.layerwise.first.to_json() if self.layerwise.first else None
        if self.emulation is not None:
            emu = self.emulation.to_json()
            out["emulation"] = emu
            out["overflow_nodes"] = emu["overflow_nodes"]
            out["keep_dtype_suggestion"] = emu["keep_dtype_suggestion"]
        if self.notes:
            out["notes"] = list(self.notes)
        return out

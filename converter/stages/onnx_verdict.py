"""The onnx stage's parity verdict, judged from the metrics its card stores with the recipe's current
`verify` tolerances (fp32): changing a tolerance never rebuilds the ONNX."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParityVerdict:
    """Parity of the onnx stage's result against its reference, judged now."""

    reference: str
    seed: int
    judged: Any            # the comparator's judged report (None: nothing was compared)
    culprit: Mapping[str, Any] | None

    def __bool__(self) -> bool:
        return self.judged is None or bool(self.judged)

    def to_json(self) -> dict:
        outputs = {c.output: {"shape": list(c.metrics.target_shape), **c.to_json()} for c in self.judged.checks} \
            if self.judged is not None else None
        return {"passed": bool(self), "reference": self.reference, "seed": self.seed, "outputs": outputs,
                "culprit": self.culprit}


def parity_report(card: Mapping[str, Any], verify_config) -> ParityVerdict | None:
    """Judge the stored parity metrics with `verify.tolerance`; None when the card holds no parity."""
    from converter.compare import limits_for, rejudge

    parity = card.get("parity")
    if not parity:
        return None
    judged = None
    if parity.get("outputs") is not None:
        judged = rejudge(parity["outputs"], limits_for(verify_config, "fp32"))
    return ParityVerdict(parity["reference"], parity.get("seed", 0), judged, parity.get("culprit"))

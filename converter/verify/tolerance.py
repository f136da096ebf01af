"""Default tolerances. fp32 and fp16 are different worlds: a default must say which one applied."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Precision = Literal["fp32", "fp16"]


@dataclass(frozen=True)
class Tolerance:
    max_abs: float
    cosine: float

    def to_json(self) -> dict:
        return {"max_abs": self.max_abs, "cosine": self.cosine}


# fp32 against fp32 (Paddle Inference vs ONNX Runtime CPU): measured 2.3e-6 on PP-OCRv4 rec.
FP32 = Tolerance(max_abs=1e-4, cosine=0.99999)
# fp16 compute against fp32 (emulate:fp16, weights and activations rounded through float16), max abs /
# cosine measured: PP-OCRv4 rec 9.2e-3 / 0.99999 on random input and 2.9e-2 / 0.99996 on rendered text
# lines, cls 2.6e-4, det 1.3e-4 / 0.99986. A real NPU adds its own approximations on top.
FP16 = Tolerance(max_abs=5e-2, cosine=0.999)
DEFAULTS: dict[str, Tolerance] = {"fp32": FP32, "fp16": FP16}

# atc precision modes that keep the graph's fp32 compute. Every other mode computes (some) ops in fp16;
# `force_fp32` is an alias of `cube_fp16in_fp32out` (matmul/conv still take fp16 inputs).
FP32_MODES = frozenset({"origin", "must_keep_origin_dtype"})


def precision_of(precision_mode_v2: str | None, precision_mode: str | None) -> Precision:
    """fp32 or fp16 world of an OM build; atc's default (no mode given) is fp16."""
    mode = precision_mode_v2 or precision_mode
    return "fp32" if mode in FP32_MODES else "fp16"


@dataclass(frozen=True)
class AppliedTolerance:
    """The limits one output was held to, and where each came from."""

    max_abs: float
    cosine: float
    source: str  # e.g. "recipe:out", "recipe:default", "builtin:fp16", "recipe:default+builtin:fp32"

    def to_json(self) -> dict:
        return {"max_abs": self.max_abs, "cosine": self.cosine, "source": self.source}


def resolve(output: str, verify_config, precision: Precision) -> AppliedTolerance:
    """The tolerance of `output` under `precision`: the recipe's entry for it in `verify.tolerance`
    (fp32) or `verify.tolerance_fp16`, then that section's `default` entry, then the built-in default of
    the precision, field by field. fp32 entries never apply to fp16 targets, nor the reverse."""
    key, entries = verify_config.tolerances(precision)
    builtin = DEFAULTS[precision]
    values: dict[str, float] = {}
    sources: list[str] = []
    for name in (output, "default"):
        entry = entries.get(name)
        if entry is None:
            continue
        used = False
        for field in ("max_abs", "cosine"):
            value = getattr(entry, field)
            if value is not None and field not in values:
                values[field] = value
                used = True
        if used:
            sources.append(f"recipe:verify.{key}.{name}")
    if len(values) < 2:
        sources.append(f"builtin:{precision}")
    return AppliedTolerance(
        max_abs=values.get("max_abs", builtin.max_abs),
        cosine=values.get("cosine", builtin.cosine),
        source="+".join(sources),
    )

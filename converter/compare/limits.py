"""Limits an output is held to, and where each came from. fp32 and fp16 are different worlds: the
precision of the target picks the recipe section (`verify.tolerance` or `verify.tolerance_fp16`) and
the built-in defaults."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

Precision = Literal["fp32", "fp16"]
FIELDS = ("max_abs", "rtol", "cosine")


@dataclass(frozen=True)
class Limits:
    """An element passes when |target - reference| <= max_abs + rtol * |reference|; the cosine must
    reach `cosine` unless both sides are ~0. `sources` says where max_abs, rtol and cosine came from."""

    max_abs: float
    rtol: float
    cosine: float
    sources: tuple[str, str, str] = ("", "", "")

    @property
    def source(self) -> str:
        """The sources in order of precedence, e.g. `recipe:verify.tolerance.default+builtin:fp32`."""
        def rank(source: str) -> int:
            return 2 if source.startswith("builtin:") else 1 if source.endswith(".default") else 0

        return "+".join(sorted(dict.fromkeys(s for s in self.sources if s), key=rank))

    def source_of(self, name: str) -> str:
        return self.sources[FIELDS.index(name)]

    def scaled(self, factor: float) -> Limits:
        """The same limits with max_abs multiplied by `factor` (layerwise: tensors are not normalised)."""
        return replace(self, max_abs=self.max_abs * factor)

    def to_json(self) -> dict:
        return {"max_abs": self.max_abs, "rtol": self.rtol, "cosine": self.cosine, "source": self.source,
                "sources": dict(zip(FIELDS, self.sources))}

    @classmethod
    def from_json(cls, data: Mapping) -> Limits:
        sources = data.get("sources") or {}
        return cls(float(data["max_abs"]), float(data["rtol"]), float(data["cosine"]),
                   tuple(str(sources.get(f, data.get("source", ""))) for f in FIELDS))


def _builtin(precision: Precision, max_abs: float, rtol: float, cosine: float) -> Limits:
    return Limits(max_abs, rtol, cosine, (f"builtin:{precision}",) * 3)


# fp32 against fp32 (Paddle Inference or the source ONNX vs ONNX Runtime CPU): measured max abs 3.9e-6
# on PP-OCRv4 rec, 1.4e-7 on det, 5.7e-7 on cls.
FP32 = _builtin("fp32", max_abs=1e-4, rtol=1e-4, cosine=0.99999)
# fp16 compute against fp32 (emulate:fp16): PP-OCRv4 rec 9.2e-3 (2.9e-2 on rendered text), cls 1.9e-3,
# det 1.3e-4. A real NPU adds its own approximations on top.
FP16 = _builtin("fp16", max_abs=5e-2, rtol=1e-2, cosine=0.999)
BUILTIN: dict[str, Limits] = {"fp32": FP32, "fp16": FP16}

# atc precision modes that keep the graph's fp32 compute. Every other mode computes (some) ops in fp16;
# `force_fp32` is an alias of `cube_fp16in_fp32out` (matmul/conv still take fp16 inputs).
FP32_MODES = frozenset({"origin", "must_keep_origin_dtype"})


def precision_of(precision_mode_v2: str | None, precision_mode: str | None) -> Precision:
    """fp32 or fp16 world of an OM build; atc's default (no mode given) is fp16."""
    mode = precision_mode_v2 or precision_mode
    return "fp32" if mode in FP32_MODES else "fp16"


def resolve_limits(output: str, verify_config, precision: Precision) -> Limits:
    """The limits of `output` under `precision`, field by field: the recipe's entry for the output in
    `verify.tolerance` (fp32) or `verify.tolerance_fp16` (fp16), then that section's `default` entry,
    then the built-in of the precision. fp32 entries never apply to fp16 targets, nor the reverse.
    `verify_config` is the recipe's `verify:` section (None: built-ins only)."""
    builtin = BUILTIN[precision]
    if verify_config is None:
        return builtin
    key, entries = verify_config.tolerances(precision)
    values, sources = [], []
    for field in FIELDS:
        for name in (output, "default"):
            entry = entries.get(name)
            value = getattr(entry, field, None) if entry is not None else None
            if value is not None:
                values.append(float(value))
                sources.append(f"recipe:verify.{key}.{name}")
                break
        else:
            values.append(getattr(builtin, field))
            sources.append(f"builtin:{precision}")
    return Limits(*values, tuple(sources))


def limits_for(verify_config, precision: Precision) -> Callable[[str], Limits]:
    """output name -> its Limits (see resolve_limits)."""
    return lambda output: resolve_limits(output, verify_config, precision)

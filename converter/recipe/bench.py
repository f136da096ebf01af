"""The `bench:` section: how latency is measured (never part of the ONNX cache key)."""

from __future__ import annotations

from pydantic import Field

from converter.recipe.base import Section


class BenchConfig(Section):
    warmup: int = Field(10, ge=0, description="untimed runs before measuring")
    iterations: int = Field(100, ge=1, description="timed runs")
    slo_p99_ms: float | None = Field(None, gt=0, description="fail (exit 1) when p99 latency exceeds this")

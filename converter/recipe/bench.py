"""The `bench:` section: how `npuconv bench` measures and what it must reach (never part of the ONNX cache
key). Backends, batch sizes, threads and baselines are run choices on the command line, not recipe fields."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from converter.recipe.base import Section

WarmupSeconds = Annotated[str, StringConstraints(pattern=r"^\d+(\.\d+)?s$")]
DEFAULT_ITERATIONS = 100


class SloConfig(Section):
    """Service-level objectives: a backend that misses one fails the run (exit 1, with the numbers)."""

    p99_ms: float | None = Field(None, gt=0, description="largest allowed p99 latency (ms)")
    min_throughput: float | None = Field(None, gt=0, description="smallest allowed throughput (samples/s, batch counted)")
    max_rss_mb: float | None = Field(None, gt=0, description="largest allowed peak RSS of the backend's process (MB)")


class BenchConfig(Section):
    warmup: int | WarmupSeconds = Field(
        10, description="untimed runs before measuring: a count (10) or seconds ('2s'), per backend")
    iterations: int | None = Field(
        None, ge=1, description=f"timed runs per backend (default {DEFAULT_ITERATIONS}); exclusive with duration_s")
    duration_s: float | None = Field(None, gt=0, description="measure for this many seconds per backend instead of a run count")
    slo: SloConfig = SloConfig()

    @model_validator(mode="after")
    def _one_stop_rule(self) -> BenchConfig:
        if self.iterations is not None and self.duration_s is not None:
            raise ValueError("set either iterations or duration_s, not both")
        if isinstance(self.warmup, int) and self.warmup < 0:
            raise ValueError("warmup must be a count >= 0 or seconds such as '2s'")
        return self

    def warmup_runs(self) -> int | None:
        """The warm-up run count, or None when warm-up is given in seconds."""
        return self.warmup if isinstance(self.warmup, int) else None

    def warmup_seconds(self) -> float | None:
        """The warm-up duration, or None when warm-up is a run count."""
        return float(self.warmup[:-1]) if isinstance(self.warmup, str) else None

    def timed_iterations(self) -> int | None:
        """Timed runs per backend; None in duration mode."""
        if self.duration_s is not None:
            return None
        return self.iterations or DEFAULT_ITERATIONS

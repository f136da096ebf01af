"""Running the onnx stage through the pipeline as the commands do, for tests that need the artifact."""

from __future__ import annotations

from pathlib import Path


def convert(recipe, force: bool = False, batch_gears: list[int] | None = None):
    """The onnx stage's outcome for a loaded recipe (`batch_gears`: keep axis 0 symbolic, as for atc's
    --dynamic_batch_size)."""
    from converter.pipeline.plan import execute, onnx_runs
    from converter.stages.atc.validate import DynamicPlan

    dynamic = None
    if batch_gears:
        dynamic = DynamicPlan("dynamic_batch_size", ",".join(map(str, batch_gears)), {s.name: (0,) for s in recipe.inputs})
    return execute(onnx_runs(recipe, dynamic))[-1] if not force else execute(onnx_runs(recipe, dynamic), force=True)[-1]


def onnx_path(outcome) -> Path:
    return Path(outcome.artifact.published["model"])

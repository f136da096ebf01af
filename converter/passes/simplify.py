"""`simplify`: onnxsim (constant folding, shape folding, dead-code removal) on every graph."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from converter.errors import StageFailed
from converter.passes.base import ModelSet, Pass, PassResult
from converter.passes.registry import register


class SimplifyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # onnxsim needs concrete shapes for inputs that keep symbolic (gear) axes
    test_shapes: dict[str, list[int]] | None = None


@register
class Simplify(Pass):
    name = "simplify"
    Config = SimplifyConfig

    def configure(self, section) -> SimplifyConfig:
        shapes = {s.name: list(s.shape) for s in section.inputs}
        return SimplifyConfig(test_shapes=shapes if section.dynamic_axes else None)

    def run(self, models: ModelSet, config: SimplifyConfig) -> PassResult:
        return PassResult(models.map(lambda m: simplify_onnx(m, test_shapes=config.test_shapes)))


def simplify_onnx(model, check_n: int = 0, test_shapes: dict[str, list[int]] | None = None):
    """onnxsim. Its own check (`check_n` random runs) is off by default: the onnx stage compares the chain's
    result with the source model itself, which subsumes it."""
    import contextlib
    import io

    from converter.process import deferred_signals

    with deferred_signals():  # a signal inside onnxsim's C++ (which calls back into Python) is raised after it
        import onnxsim
    try:
        with contextlib.redirect_stdout(io.StringIO()), deferred_signals():  # onnxsim prints its check progress
            simplified, ok = onnxsim.simplify(model, check_n=check_n, test_input_shapes=test_shapes)
    except Exception as exc:  # onnxsim raises bare RuntimeError/ValueError/onnx errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StageFailed(f"onnxsim failed: {first}",
                          hint="retry with --set 'onnx.disable_passes=[simplify]' to keep the unsimplified graph") from None
    if not ok:
        raise StageFailed("onnxsim's check failed: the simplified model computes different outputs",
                          hint="retry with --set 'onnx.disable_passes=[simplify]' and report the model to onnx-simplifier")
    return simplified

"""`fix_shapes`: the recipe's input shapes written into the graph (axes kept for atc gears stay
symbolic), stale intermediate shapes cleared and shapes re-inferred."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from converter.errors import InputError
from converter.passes.base import ModelSet, Pass, PassResult
from converter.passes.graphinfo import describe_inputs, dims, graph_inputs
from converter.passes.registry import register


class FixShapesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    shapes: dict[str, list[int]]
    dynamic_axes: dict[str, list[int]] = {}


@register
class FixShapes(Pass):
    """Fix every input to the recipe's shape; refuse names, ranks or fixed dims the model contradicts."""

    name = "fix_shapes"
    Config = FixShapesConfig

    def configure(self, section) -> FixShapesConfig:
        return FixShapesConfig(shapes={s.name: list(s.shape) for s in section.inputs},
                               dynamic_axes={k: list(v) for k, v in section.dynamic_axes.items()})

    def run(self, models: ModelSet, config: FixShapesConfig) -> PassResult:
        fixed = fix_input_shapes(models.model, config.shapes, config.dynamic_axes)
        return PassResult(ModelSet.single(fixed))


def fix_input_shapes(model, shapes: Mapping[str, Sequence[int]], dynamic_axes: Mapping[str, Sequence[int]] | None = None,
                     where: str = "the recipe"):
    """A copy of `model` whose inputs have exactly `shapes` (axes in `dynamic_axes` stay symbolic, named
    `<input>_<axis>`), with stale output/intermediate shapes cleared and shapes re-inferred.

    Raises InputError for an input name the model lacks (listing the real ones), a model input the recipe
    does not shape, a rank mismatch, or a fixed model dim the recipe contradicts."""
    import onnx

    dynamic_axes = dynamic_axes or {}
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inputs = {i.name: i for i in graph_inputs(model)}
    real = describe_inputs(model)
    for name in list(shapes) + list(dynamic_axes):
        if name not in inputs:
            raise InputError(f"{where} names input '{name}', but the model has: {real}",
                             hint="use the model's input names in `inputs[].name`")
    for name, vi in inputs.items():
        if name not in shapes:
            raise InputError(f"{where} gives no shape for model input '{name}' (model inputs: {real})",
                             hint="add an `inputs:` entry with its fixed shape")
        want = list(shapes[name])
        have = dims(vi)
        if have and len(have) != len(want):
            raise InputError(f"input '{name}': {where} gives rank {len(want)} {want}, the model has rank {len(have)} {have}",
                             hint=f"give '{name}' {len(have)} dims")
        for axis, (h, w) in enumerate(zip(have, want)):
            if isinstance(h, int) and h > 0 and h != w and axis not in dynamic_axes.get(name, ()):
                raise InputError(f"input '{name}' dim {axis} is fixed to {h} in the model, {where} says {w}",
                                 hint=f"use {h} at position {axis} of inputs[{name}].shape")
        for axis in dynamic_axes.get(name, ()):
            if not 0 <= axis < len(want):
                raise InputError(f"input '{name}': dynamic axis {axis} is outside rank {len(want)}")
        shape = vi.type.tensor_type.shape
        shape.ClearField("dim")
        for axis, value in enumerate(want):
            dim = shape.dim.add()
            if axis in dynamic_axes.get(name, ()):
                dim.dim_param = f"{name}_{axis}"
            else:
                dim.dim_value = int(value)
    for out in model.graph.output:
        tensor_type = out.type.tensor_type
        rank = len(tensor_type.shape.dim)
        tensor_type.ClearField("shape")
        for _ in range(rank):
            tensor_type.shape.dim.add()
    model.graph.ClearField("value_info")
    return onnx.shape_inference.infer_shapes(model, data_prop=True)

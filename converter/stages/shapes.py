"""Fix the recipe's input shapes into an ONNX graph and report what is still dynamic."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from converter.errors import InputError


def graph_inputs(model) -> list:
    """Real inputs: graph inputs that are not initializers (old exporters list weights as inputs)."""
    initializers = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def _dims(value_info) -> list[int | str | None]:
    out: list[int | str | None] = []
    for d in value_info.type.tensor_type.shape.dim:
        out.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
    return out


def describe_inputs(model) -> str:
    """Inputs as `name[d0, d1, ...]`, symbolic dims as -1 (Paddle's spelling)."""
    return ", ".join(f"{i.name}{[d if isinstance(d, int) else -1 for d in _dims(i)]}" for i in graph_inputs(model))


def fix_input_shapes(
    model,
    shapes: Mapping[str, Sequence[int]],
    dynamic_axes: Mapping[str, Sequence[int]] | None = None,
    where: str = "the recipe",
):
    """Return a copy of `model` whose inputs have exactly `shapes` (axes in `dynamic_axes` stay symbolic,
    named `<input>_<axis>`), with stale output/intermediate shapes cleared and shapes re-inferred.

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
        have = _dims(vi)
        if have and len(have) != len(want):
            raise InputError(
                f"input '{name}': {where} gives rank {len(want)} {want}, the model has rank {len(have)} {have}",
                hint=f"give '{name}' {len(have)} dims",
            )
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


def dynamic_dims(model) -> list[str]:
    """Every dim of an input, output or annotated intermediate that is not a fixed integer, as
    `kind name[axis]=param` strings (empty for a fully static graph)."""
    found: list[str] = []
    sections = (("input", graph_inputs(model)), ("output", model.graph.output), ("value_info", model.graph.value_info))
    for kind, items in sections:
        for vi in items:
            if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
                if kind != "value_info":
                    found.append(f"{kind} {vi.name}: unknown rank")
                continue
            for axis, dim in enumerate(vi.type.tensor_type.shape.dim):
                if not dim.HasField("dim_value"):  # 0 is a real (empty) size
                    found.append(f"{kind} {vi.name}[{axis}]={dim.dim_param or '?'}")
    return found


def io_specs(model) -> tuple[list[dict], list[dict]]:
    """Inputs and outputs as [{name, shape, dtype}] for the model card."""
    import onnx

    def spec(vi) -> dict:
        elem = vi.type.tensor_type.elem_type
        return {"name": vi.name, "shape": _dims(vi), "dtype": onnx.helper.tensor_dtype_to_np_dtype(elem).name if elem else None}

    return [spec(i) for i in graph_inputs(model)], [spec(o) for o in model.graph.output]

"""Facts read from an ONNX graph: its real inputs, dims, what is still dynamic, inputs/outputs for cards."""

from __future__ import annotations


def graph_inputs(model) -> list:
    """Real inputs: graph inputs that are not initializers (old exporters list weights as inputs)."""
    initializers = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def dims(value_info) -> list[int | str | None]:
    """A value's dims: ints, symbolic names, or None for an unknown dim."""
    out: list[int | str | None] = []
    for d in value_info.type.tensor_type.shape.dim:
        out.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
    return out


def describe_inputs(model) -> str:
    """Inputs as `name[d0, d1, ...]`, symbolic dims as -1 (Paddle's spelling)."""
    return ", ".join(f"{i.name}{[d if isinstance(d, int) else -1 for d in dims(i)]}" for i in graph_inputs(model))


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
        return {"name": vi.name, "shape": dims(vi), "dtype": onnx.helper.tensor_dtype_to_np_dtype(elem).name if elem else None}

    return [spec(i) for i in graph_inputs(model)], [spec(o) for o in model.graph.output]


def opset(model) -> int:
    """The ai.onnx opset the model imports (0 when none)."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)

"""The model's FLOPs from its static graph: 2 x the multiply-accumulates of Conv, ConvTranspose, MatMul
and Gemm (the ops that dominate; bias adds, activations and normalisation are left out, as is usual).
Shapes come from ONNX shape inference, so the graph must be static (the onnx stage's output is)."""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from pathlib import Path

COUNTED = ("Conv", "ConvTranspose", "MatMul", "Gemm")


@dataclass(frozen=True)
class FlopCount:
    """`total` is None when some counted node has a shape shape inference could not fix (`unknown` names
    those nodes); `by_op` sums the nodes that could be counted."""

    total: int | None
    by_op: dict[str, int] = field(default_factory=dict)
    unknown: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"total": self.total, "by_op": dict(self.by_op), "unknown_nodes": list(self.unknown)}


def _static(dims) -> tuple[int, ...] | None:
    out = []
    for d in dims:
        if not d.HasField("dim_value") or d.dim_value <= 0:
            return None
        out.append(d.dim_value)
    return tuple(out)


def _shapes(model) -> dict[str, tuple[int, ...] | None]:
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    shapes: dict[str, tuple[int, ...] | None] = {t.name: tuple(t.dims) for t in graph.initializer}
    for info in (*graph.input, *graph.value_info, *graph.output):
        if info.type.HasField("tensor_type") and info.type.tensor_type.HasField("shape"):
            shapes.setdefault(info.name, _static(info.type.tensor_type.shape.dim))
    for node in graph.node:  # Constant nodes: shapes of their values
        if node.op_type == "Constant":
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None:
                shapes.setdefault(node.output[0], tuple(value.dims))
    return shapes


def _attr(node, name: str, default: int) -> int:
    return next((a.i for a in node.attribute if a.name == name), default)


def node_macs(node, shapes: dict[str, tuple[int, ...] | None]) -> int | None:
    """Multiply-accumulates of one node (0 for ops not counted), None when a needed shape is unknown."""
    def shape(i: int, outputs: bool = False) -> tuple[int, ...] | None:
        names = node.output if outputs else node.input
        return shapes.get(names[i]) if i < len(names) and names[i] else None

    op = node.op_type
    if op == "Conv":  # each output element: (C_in / group) x kernel MACs; W is [C_out, C_in/group, k...]
        y, w = shape(0, outputs=True), shape(1)
        return None if y is None or w is None else prod(y) * prod(w[1:])
    if op == "ConvTranspose":  # each input element scatters into (C_out / group) x kernel; W is [C_in, C_out/group, k...]
        x, w = shape(0), shape(1)
        return None if x is None or w is None else prod(x) * prod(w[1:])
    if op == "MatMul":  # each output element: K MACs (numpy matmul broadcasting)
        a, y = shape(0), shape(0, outputs=True)
        return None if a is None or y is None else prod(y) * a[-1]
    if op == "Gemm":  # Y[M, N] = A'[M, K] B'[K, N]
        a, y = shape(0), shape(0, outputs=True)
        if a is None or y is None:
            return None
        return prod(y) * (a[0] if _attr(node, "transA", 0) else a[1])
    return 0


def count_flops(model) -> FlopCount:
    """FLOPs (2 x MACs) of an onnx.ModelProto or an ONNX file's main graph."""
    import onnx

    if isinstance(model, (str, Path)):
        model = onnx.load(str(model))
    shapes = _shapes(model)
    by_op: dict[str, int] = {}
    unknown = []
    for index, node in enumerate(model.graph.node):
        if node.op_type not in COUNTED:
            continue
        macs = node_macs(node, shapes)
        if macs is None:
            unknown.append(node.name or f"{node.op_type}_{index}")
            continue
        by_op[node.op_type] = by_op.get(node.op_type, 0) + 2 * macs
    total = None if unknown else sum(by_op.values())
    return FlopCount(total, dict(sorted(by_op.items())), tuple(unknown))

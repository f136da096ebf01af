"""What lint needs to know about an ONNX graph: inferred shapes and dtypes, and which tensors are
constant (known before the model runs), so that e.g. a TopK whose K is a folded constant is fine."""

from __future__ import annotations

from dataclasses import dataclass, field

NONDETERMINISTIC = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                              "Multinomial", "Bernoulli"})
CONTROL_FLOW = frozenset({"If", "Loop", "Scan", "SequenceMap"})
# Ops whose output only depends on their input's shape, not its values.
SHAPE_OF = frozenset({"Shape", "Size"})


@dataclass
class GraphFacts:
    """Shapes (None = unknown dim), element types and constness of every named tensor of the main graph."""

    model: object
    shapes: dict[str, list[int | None] | None] = field(default_factory=dict)
    dtypes: dict[str, int] = field(default_factory=dict)
    const: set[str] = field(default_factory=set)
    opset: int = 0

    def static(self, name: str) -> bool:
        """True when the tensor's shape is fully known."""
        shape = self.shapes.get(name)
        return shape is not None and all(d is not None for d in shape)

    def is_const(self, name: str) -> bool:
        """True for an absent optional input or a tensor computable without running the model."""
        return name == "" or name in self.const


def _shape(value_info) -> list[int | None] | None:
    tensor = value_info.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor.shape.dim]


def analyse(model) -> GraphFacts:
    """Infer shapes (with data propagation when onnx manages it) and propagate constness in node order."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001 - inference is best effort; lint falls back to the declared shapes
        inferred = model
    graph = inferred.graph
    facts = GraphFacts(model=inferred)
    facts.opset = next((o.version for o in inferred.opset_import if o.domain in ("", "ai.onnx")), 0)
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        facts.shapes[vi.name] = _shape(vi)
        if vi.type.tensor_type.elem_type:
            facts.dtypes[vi.name] = vi.type.tensor_type.elem_type
    for init in graph.initializer:
        facts.const.add(init.name)
        facts.shapes[init.name] = list(init.dims)
        facts.dtypes[init.name] = init.data_type
    for node in graph.node:
        if node.op_type == "Constant":
            const = True
        elif node.op_type in NONDETERMINISTIC or node.op_type in CONTROL_FLOW:
            const = False
        elif node.op_type in SHAPE_OF:
            const = bool(node.input) and facts.static(node.input[0])
        else:
            const = bool(node.input) and all(facts.is_const(i) for i in node.input)
        if const:
            facts.const.update(o for o in node.output if o)
    return facts

"""What the rewrite passes share about ONNX graphs: walking a graph and the graphs nested in it (Loop and
If bodies), model-wide fresh names, dtypes and shapes from shape inference, constant values (evaluated
with onnx's reference implementation when every input is constant), and opset-aware node builders.

ONNX value names are unique model-wide (a subgraph may read outer names but not redefine them), so one
table per model serves every graph in it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Never evaluated at pass time: random ops give different values per run; control flow is for the passes.
_NOT_FOLDABLE = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                           "Bernoulli", "Loop", "If", "Scan", "SequenceMap", "Dropout"})
FOLD_MAX_ELEMENTS = 1 << 16  # larger constants are left to onnxsim (its folding runs on the top level)


def copy_model(model: onnx.ModelProto) -> onnx.ModelProto:
    """A deep copy: passes rewrite the copy, never their input."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    return out


def opset_of(model: onnx.ModelProto) -> int:
    """The model's ai.onnx opset."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def subgraphs(node: onnx.NodeProto) -> list[tuple[str, onnx.GraphProto]]:
    """(attribute name, graph) for every graph attribute of `node`."""
    out = []
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            out.append((attr.name, attr.g))
        out.extend((attr.name, g) for g in attr.graphs)
    return out


def label(node: onnx.NodeProto) -> str:
    """How notes and errors name a node: `Op 'name'` (its first output when unnamed)."""
    return f"{node.op_type} '{node.name or (node.output[0] if node.output else '?')}'"


def walk(graph: onnx.GraphProto, where: str = "") -> Iterator[tuple[onnx.GraphProto, str]]:
    """`graph` and every graph nested in it, outer first, each with where it sits ('' for the top level,
    e.g. "Loop 'Loop.0' body"). A caller may rewrite a graph's node list when it is yielded: the graphs
    nested in it are looked up afterwards (protobuf copies nodes on assignment)."""
    yield graph, where
    for node in graph.node:
        for attr, sub in subgraphs(node):
            inner = f"{label(node)} {attr}"
            yield from walk(sub, f"{where} / {inner}" if where else inner)


def located(node: onnx.NodeProto, where: str) -> str:
    """A node named with where it sits: `Where 'Where.12' (in Loop 'Loop.0' body)`."""
    return f"{label(node)} (in {where})" if where else label(node)


class Names:
    """Fresh value names, unique over the whole model (every graph and subgraph)."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self._used: set[str] = set()
        for graph, _ in walk(model.graph):
            self._used.update(v.name for v in (*graph.input, *graph.output, *graph.value_info))
            self._used.update(i.name for i in graph.initializer)
            for node in graph.node:
                self._used.update(node.input)
                self._used.update(node.output)
                self._used.add(node.name)

    def fresh(self, base: str) -> str:
        name, n = base, 0
        while name in self._used or not name:
            n += 1
            name = f"{base}__{n}"
        self._used.add(name)
        return name


@dataclass(frozen=True)
class ValueType:
    dtype: int  # TensorProto.DataType, 0 when unknown
    shape: tuple[int | None, ...] | None  # None: rank unknown; a None dim: unknown size

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)


def _value_type(vi: onnx.ValueInfoProto) -> ValueType | None:
    if not vi.type.HasField("tensor_type"):
        return None
    tt = vi.type.tensor_type
    shape = None
    if tt.HasField("shape"):
        shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim)
    return ValueType(tt.elem_type, shape)


class Types:
    """dtype and shape of every value shape inference could type, in every graph of the model."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self._types: dict[str, ValueType] = {}
        self._read(model)
        # shape inference only when the graph does not already type every value (it costs ~0.1 s on det)
        if any(o and o not in self._types for graph, _ in walk(model.graph) for n in graph.node for o in n.output):
            try:
                inferred = onnx.shape_inference.infer_shapes(model, check_type=False, strict_mode=False, data_prop=True)
            except Exception:  # an invalid graph (what `repairs` exists for): keep what is declared
                return
            self._read(inferred)

    def _read(self, model: onnx.ModelProto) -> None:
        """Types the model declares; read again after inference, which wins where it knows more."""
        for graph, _ in walk(model.graph):
            for vi in (*graph.input, *graph.output, *graph.value_info):
                vt = _value_type(vi)
                if vt is not None and (vt.dtype or vi.name not in self._types):
                    self._types[vi.name] = vt
            for init in graph.initializer:
                self._types[init.name] = ValueType(init.data_type, tuple(init.dims))
            for node in graph.node:
                if node.op_type == "Constant" and node.output:
                    attr = next((a for a in node.attribute if a.name == "value"), None)
                    if attr is not None:
                        self._types[node.output[0]] = ValueType(attr.t.data_type, tuple(attr.t.dims))
                elif node.op_type == "Cast" and node.output and node.output[0] not in self._types:
                    to = next(a.i for a in node.attribute if a.name == "to")
                    self._types[node.output[0]] = ValueType(to, None)

    def get(self, name: str) -> ValueType | None:
        return self._types.get(name)

    def dtype(self, name: str) -> int:
        vt = self._types.get(name)
        return vt.dtype if vt else 0

    def rank(self, name: str) -> int | None:
        vt = self._types.get(name)
        return vt.rank if vt else None


def constant_of(node: onnx.NodeProto, opset: int) -> np.ndarray | None:
    """The value of a Constant node (any of its value_* forms)."""
    if node.op_type != "Constant" or not node.attribute:
        return None
    attr = node.attribute[0]
    if attr.name == "value":
        return numpy_helper.to_array(attr.t)
    if attr.name == "sparse_value":
        return None
    from onnx import reference

    return reference.ReferenceEvaluator(node, opsets={"": opset}).run(None, {})[0]


class Scope:
    """Constant values as seen from inside one graph: its initializers and Constant nodes, nodes whose
    inputs are all constant (evaluated lazily, small tensors only), then the enclosing graphs'.
    Graph inputs (a Loop body's iteration number and carried state) are never constant."""

    def __init__(self, graph: onnx.GraphProto, opset: int, outer: Scope | None = None,
                 types: Types | None = None, known: dict[str, np.ndarray] | None = None) -> None:
        self.opset = opset
        self.outer = outer
        self.types = types
        self._inputs = {i.name for i in graph.input} - {i.name for i in graph.initializer}
        self._inits = {i.name: i for i in graph.initializer}
        self._producer: dict[str, onnx.NodeProto] = {o: n for n in graph.node for o in n.output if o}
        self._values: dict[str, np.ndarray | None] = dict(known or {})

    def add_node(self, node: onnx.NodeProto) -> None:
        """Make a node added after construction known (the unroller adds nodes step by step)."""
        for o in node.output:
            if o:
                self._producer[o] = node

    def set(self, name: str, value: np.ndarray | None) -> None:
        self._values[name] = value

    def known(self, name: str) -> np.ndarray | None:
        """The value of `name` if it was already evaluated (no evaluation is started)."""
        return self._values.get(name)

    def defines(self, name: str) -> bool:
        return name in self._values or name in self._inputs or name in self._inits or name in self._producer

    def value(self, name: str) -> np.ndarray | None:
        """The constant value of `name`, or None when it is computed at run time."""
        if not name:
            return None
        if name in self._values:
            return self._values[name]
        if name in self._inputs:
            return None
        if name in self._inits:
            value = numpy_helper.to_array(self._inits[name])
        elif name in self._producer:
            self._values[name] = None  # a cycle guard; graphs are acyclic, but be safe
            value = self._evaluate(self._producer[name], name)
        else:
            return self.outer.value(name) if self.outer is not None else None
        self._values[name] = value
        return value

    def _shape_of(self, node: onnx.NodeProto) -> np.ndarray | None:
        """Shape/Size of a value whose shape is known: a constant's, or a static inferred one."""
        known = self.value(node.input[0])
        if known is not None:
            dims = list(known.shape)
        else:
            vt = self.types.get(node.input[0]) if self.types is not None else None
            if vt is None or vt.shape is None or any(d is None for d in vt.shape):
                return None
            dims = list(vt.shape)
        shape = np.array(dims, dtype=np.int64)
        if node.op_type == "Size":
            return np.array(int(np.prod(shape)), dtype=np.int64)
        attrs = {a.name: a.i for a in node.attribute}
        return shape[attrs.get("start", 0):attrs.get("end", len(shape))]

    def _evaluate(self, node: onnx.NodeProto, name: str) -> np.ndarray | None:
        if node.domain not in ("", "ai.onnx") or node.op_type in _NOT_FOLDABLE:
            return None
        if node.op_type == "Constant":
            return constant_of(node, self.opset)
        if node.op_type in ("Shape", "Size"):
            return self._shape_of(node)
        feeds = {}
        for i in node.input:
            if not i:
                continue
            v = self.value(i)
            if v is None or v.size > FOLD_MAX_ELEMENTS:
                return None
            feeds[i] = v
        from onnx import reference

        try:
            outs = reference.ReferenceEvaluator(node, opsets={"": self.opset}).run(None, feeds)
        except Exception:  # an op the reference cannot run: simply not constant
            return None
        for o, v in zip(node.output, outs):
            if o:
                self._values[o] = np.asarray(v) if np.asarray(v).size <= FOLD_MAX_ELEMENTS else None
        return self._values.get(name)


def references(node: onnx.NodeProto) -> set[str]:
    """Every value `node` reads: its inputs and what the graphs nested in it read from outside."""
    out = {i for i in node.input if i}
    for _, sub in subgraphs(node):
        for inner in sub.node:
            out |= references(inner)
        out |= {o.name for o in sub.output}
    return out


def const_node(name: str, value: np.ndarray) -> onnx.NodeProto:
    """A Constant node producing `value` under `name`."""
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name))


def cast_node(src: str, dst: str, to: int) -> onnx.NodeProto:
    return helper.make_node("Cast", [src], [dst], to=to)


def unsqueeze_nodes(src: str, dst: str, axes: list[int], opset: int, names: Names) -> list[onnx.NodeProto]:
    """Unsqueeze `src` at `axes` into `dst` (axes as an input from opset 13, an attribute before)."""
    if opset >= 13:
        axes_name = names.fresh(f"{dst}_axes")
        return [const_node(axes_name, np.array(axes, dtype=np.int64)), helper.make_node("Unsqueeze", [src, axes_name], [dst])]
    return [helper.make_node("Unsqueeze", [src], [dst], axes=axes)]


def dtype_name(dtype: int) -> str:
    return TensorProto.DataType.Name(dtype).lower() if dtype else "unknown"


def replace_nodes(graph: onnx.GraphProto, nodes: list[onnx.NodeProto]) -> None:
    """Set the graph's node list (in order)."""
    del graph.node[:]
    graph.node.extend(nodes)

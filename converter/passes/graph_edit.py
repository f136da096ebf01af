"""ONNX graph editing the decoder split is built from: who produces and consumes a tensor, constants,
outer references of subgraphs, dead-code removal, topological order, typed standalone models (fresh names,
node builders and opsets come from converter.passes.graphs)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import onnx
from onnx import helper, numpy_helper


def producers(nodes: Iterable) -> dict:
    """{tensor name: the node that writes it}."""
    return {out: node for node in nodes for out in node.output if out}


def consumers(nodes: Iterable) -> dict:
    """{tensor name: [nodes that read it]}, subgraph references included."""
    found: dict = {}
    for node in nodes:
        for name in set(node_reads(node)):
            found.setdefault(name, []).append(node)
    return found


def node_reads(node) -> list[str]:
    """Every tensor `node` reads: its inputs and what its subgraphs take from the enclosing scope."""
    names = [i for i in node.input if i]
    for attr in node.attribute:
        for graph in ([attr.g] if attr.type == attr.GRAPH else []) + list(attr.graphs):
            names.extend(sorted(outer_refs(graph)))
    return names


def outer_refs(graph) -> set[str]:
    """Names a (sub)graph reads but does not define (its inputs, initializers and node outputs)."""
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    used: set[str] = set()
    for node in graph.node:
        used.update(node_reads(node))
        defined.update(o for o in node.output if o)
    used.update(o.name for o in graph.output)
    return used - defined


def subgraphs(node) -> list:
    return [attr.g for attr in node.attribute if attr.type == attr.GRAPH] + [
        g for attr in node.attribute for g in attr.graphs]


def constants(graph) -> dict[str, np.ndarray]:
    """Initializers and Constant-node outputs of `graph` as arrays."""
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def attr(node, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def topo_sort(nodes: list, available: Iterable[str]) -> list:
    """`nodes` in an order where every node comes after the producers of what it reads."""
    ready = set(available)
    made = producers(nodes)
    pending = list(nodes)
    ordered = []
    while pending:
        rest = []
        for node in pending:
            if all(n in ready or n not in made for n in node_reads(node)):
                ordered.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ValueError(f"graph has a cycle or a missing producer near node {rest[0].name or rest[0].op_type}")
        pending = rest
    return ordered


def needed(nodes: list, outputs: Iterable[str]) -> list:
    """The nodes (in their order) that `outputs` depend on."""
    made = producers(nodes)
    keep: set[int] = set()
    stack = [n for n in outputs if n in made]
    while stack:
        node = made[stack.pop()]
        if id(node) in keep:
            continue
        keep.add(id(node))
        stack.extend(n for n in node_reads(node) if n in made)
    return [n for n in nodes if id(n) in keep]


def prune(graph) -> None:
    """Drop nodes and initializers the graph's outputs do not need (in place)."""
    keep = needed(list(graph.node), [o.name for o in graph.output])
    del graph.node[:]
    graph.node.extend(keep)
    used = {n for node in keep for n in node_reads(node)} | {o.name for o in graph.output}
    inits = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)


def all_names(graph) -> set[str]:
    names = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {o.name for o in graph.output}
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        for sub in subgraphs(node):
            names |= all_names(sub)
    return names


def tensor_type(name: str, elem_type: int, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, None if shape is None else list(shape))


def static_shape(value_info) -> tuple[int, ...] | None:
    """The fixed shape of a value info, or None when a dim (or the rank) is unknown."""
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    dims = []
    for d in t.shape.dim:
        if not d.HasField("dim_value"):
            return None
        dims.append(d.dim_value)
    return tuple(dims)


def infer(model, strict: bool = False):
    """Shape inference (with data propagation) over a copy."""
    return onnx.shape_inference.infer_shapes(model, strict_mode=strict, data_prop=True)


def value_infos(model) -> dict:
    """{name: ValueInfoProto} over inputs, outputs and annotated intermediates of the top graph."""
    g = model.graph
    found = {vi.name: vi for vi in list(g.value_info) + list(g.input) + list(g.output)}
    for t in g.initializer:
        found.setdefault(t.name, helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return found


def make_model(graph, like) -> onnx.ModelProto:
    """A model holding `graph` with `like`'s opsets and IR version."""
    model = helper.make_model(graph, opset_imports=list(like.opset_import))
    model.ir_version = like.ir_version
    return model


def simplify(model):
    """onnxsim without its random-input check (index tensors fed random values could ask for huge
    ranges); constant folding, shape folding, dead code. Returns the input when onnxsim fails."""
    import contextlib
    import io

    import onnxsim

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            out, _ = onnxsim.simplify(model, check_n=0)
    except Exception:  # noqa: BLE001 -- onnxsim raises bare RuntimeError/ValueError; the unsimplified graph is still exact
        return model
    return out


def type_outputs(model):
    """Fill in the types of graph outputs declared without one, from shape inference (a dim it cannot
    infer stays symbolic). Returns the inferred model."""
    inferred = infer(model)
    known = value_infos(inferred)
    for out in inferred.graph.output:
        if not out.type.HasField("tensor_type") and out.name in known:
            out.type.CopyFrom(known[out.name].type)
    return inferred


def unique_node_names(graph) -> None:
    """Give nodes that share a name (copies of one node) distinct names, in place."""
    seen: set[str] = set()
    for node in graph.node:
        if not node.name:
            continue
        name, n = node.name, 0
        while name in seen:
            n += 1
            name = f"{node.name}.{n}"
        node.name = name
        seen.add(name)


def no_scalar_inputs(model, names) -> onnx.ModelProto:
    """Rank-0 graph inputs made rank 1 ([1]), reshaped back to a scalar inside: atc's --input_shape cannot
    spell a scalar (`name:` with no dims). Values are unchanged; the host loop feeds by declared shape."""
    from onnx import helper, numpy_helper

    graph = model.graph
    scalars = [vi for vi in graph.input if static_shape(vi) == ()]
    if not scalars:
        return model
    scalar_shape = names.fresh("scalar_shape")
    reshapes = []
    for vi in scalars:
        inner = names.fresh(f"{vi.name}.scalar")
        for node in graph.node:
            node.input[:] = [inner if i == vi.name else i for i in node.input]
        for out in graph.output:  # a state passed straight through keeps reading the input
            if out.name == vi.name:
                out.type.tensor_type.shape.dim.add().dim_value = 1
        reshapes.append(helper.make_node("Reshape", [vi.name, scalar_shape], [inner], name=names.fresh("scalar_in")))
        vi.type.tensor_type.shape.dim.add().dim_value = 1
    graph.initializer.append(numpy_helper.from_array(np.zeros((0,), np.int64), scalar_shape))
    body = list(graph.node)
    del graph.node[:]
    graph.node.extend(reshapes + body)
    return model

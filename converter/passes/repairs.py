"""`repairs`: paddle2onnx output that ONNX Runtime refuses, rewritten into an equivalent graph it loads.

- `Where` on bool operands (SLANet-plus's export, also inside Loop bodies): ONNX Runtime has no bool Where
  kernel ("Could not find an implementation for Where(16)"). The operands are cast to int32, the Where runs
  on int32 and its result is cast back to bool: exact, since bool -> int32 -> bool is the identity.
- rank-0 inputs of `Concat` (paddle2onnx 2.1.x writes them next to rank-1 inputs, which onnx.checker and
  ORT reject: "All inputs to Concat must have same rank"): each rank-0 input is unsqueezed to shape [1].
  Exact only when every other input has rank 1 (or all are rank 0): concatenating the scalar as a
  one-element vector is then what the exporter meant. Any other mix is left alone and noted.

Every repaired node is named in the notes."""

from __future__ import annotations

from onnx import TensorProto, helper

from converter.passes import graphs as g
from converter.passes.base import ModelSet, Pass, PassResult, per_graph
from converter.passes.registry import register


def _repair_where(node, where, types, names) -> tuple[list, str] | None:
    if types.dtype(node.input[1]) != TensorProto.BOOL and types.dtype(node.input[2]) != TensorProto.BOOL:
        return None
    a, b, out = names.fresh(f"{node.input[1]}_i32"), names.fresh(f"{node.input[2]}_i32"), names.fresh(f"{node.output[0]}_i32")
    nodes = [g.cast_node(node.input[1], a, TensorProto.INT32), g.cast_node(node.input[2], b, TensorProto.INT32),
             helper.make_node("Where", [node.input[0], a, b], [out], name=node.name),
             g.cast_node(out, node.output[0], TensorProto.BOOL)]
    return nodes, f"{g.located(node, where)}: bool operands computed as int32, result cast back to bool " \
                  "(ONNX Runtime has no bool Where)"


def _repair_concat(node, where, types, names, opset) -> tuple[list, str] | None:
    ranks = [types.rank(i) for i in node.input]
    scalars = [i for i, r in zip(node.input, ranks) if r == 0]
    if not scalars:
        return None
    others = {r for r in ranks if r != 0}
    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
    if not others <= {1} or axis not in (0, -1):
        return [node], (f"{g.located(node, where)}: rank-0 input(s) {', '.join(scalars)} left alone: the other inputs "
                        f"have rank {sorted(others, key=str)} and axis {axis}, so unsqueezing them would not be exact")
    nodes, inputs = [], []
    for name in node.input:
        if name in scalars:
            lifted = names.fresh(f"{name}_1d")
            nodes += g.unsqueeze_nodes(name, lifted, [0], opset, names)
            inputs.append(lifted)
        else:
            inputs.append(name)
    fixed = helper.make_node("Concat", inputs, list(node.output), name=node.name, axis=axis)
    return nodes + [fixed], f"{g.located(node, where)}: rank-0 input(s) {', '.join(scalars)} unsqueezed to rank 1"


def repair(model):
    """The repaired copy of `model` and one note per repaired node (the model itself when nothing applies)."""
    if not any(n.op_type in ("Where", "Concat") for graph, _ in g.walk(model.graph) for n in graph.node):
        return model, []
    types = g.Types(model)
    out = g.copy_model(model)
    names = g.Names(out)
    opset = g.opset_of(out)
    notes: list[str] = []
    changed = False
    for graph, where in g.walk(out.graph):
        nodes = []
        for node in graph.node:
            fix = None
            if node.op_type == "Where" and node.domain in ("", "ai.onnx"):
                fix = _repair_where(node, where, types, names)
            elif node.op_type == "Concat" and node.domain in ("", "ai.onnx"):
                fix = _repair_concat(node, where, types, names, opset)
            if fix is None:
                nodes.append(node)
                continue
            new, note = fix
            notes.append(note)
            changed |= new != [node]
            nodes.extend(new)
        g.replace_nodes(graph, nodes)
    return (out if changed else model), notes


@register
class Repairs(Pass):
    name = "repairs"

    def run(self, models: ModelSet, config) -> PassResult:
        return per_graph(models, lambda _role, m: repair(m))

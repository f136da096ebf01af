"""Build the two static graphs of a split decoder from the rewritten loop body and the post-loop chains:
the single step (loop-invariant work hoisted out, post-loop row-wise work replayed on each row, unrolled K
times) and the encoder (everything before the loop, the hoisted work, the post-loop work replayed on the
initial buffers)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

from converter.passes import graph_edit as ge
from converter.passes import graphs
from converter.passes.loop_body import LoopBody, SplitRefused, describe
from converter.passes.loop_index import RANDOM
from converter.passes.loop_tail import Chain

BANNED = {"Loop", "If", "Scan", "ScatterElements", "ScatterND", "Scatter", "NonZero", "Unique", "Compress"}


@dataclass
class StepIO:
    """What the single-step graph reads and writes, by name."""

    index: str | None = None                             # the step counter input
    states: dict[str, str] = field(default_factory=dict)  # state input -> its next value (body tensor)
    feeds: list[str] = field(default_factory=list)        # loop-invariant inputs, computed by the encoder
    per_step: dict[str, str] = field(default_factory=dict)  # key ("cond", "row:<out>", "last:<out>") -> body tensor
    outputs: dict[str, str] = field(default_factory=dict)   # key (those and "next:<state>") -> step output name
    copies: dict[str, list[str]] = field(default_factory=dict)  # per-step key -> output name of each unrolled copy
    hoisted: list = field(default_factory=list)           # body nodes moved to the encoder
    initializers: list = field(default_factory=list)      # body initializers the hoisted nodes read


def replay(chain: Chain, start: str, suffix: str, names: graphs.Names) -> tuple[list, dict[str, str]]:
    """Copies of the chain's nodes reading `start` instead of the loop output; returns the nodes and
    {model output: tensor}. Each copied Reshape(x, Shape(y)) goes to `chain.checks` as (x copy, reshape
    copy, original node): on one row it must keep the shape, as it does on all rows."""
    mapping = {chain.root.final: start}
    nodes = []
    for node in chain.nodes:
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        for i, name in enumerate(copy.input):
            while name in chain.alias and name not in mapping:
                name = chain.alias[name]
            copy.input[i] = mapping.get(name, name)
        for i, name in enumerate(copy.output):
            if name:
                mapping[name] = copy.output[i] = names.fresh(f"{name}.{suffix}")
        if node.output[0] in chain.reshapes:
            chain.checks.append((copy.input[0], copy.output[0], node))
        nodes.append(copy)
    out = {}
    for o in chain.outputs:
        name = o
        while name in chain.alias and name not in mapping:
            name = chain.alias[name]
        out[o] = mapping.get(name, name)
    return nodes, out


def step_graph(body: LoopBody, write_wheres: set[str], chains: list[Chain], outer, names: graphs.Names) -> tuple[onnx.ModelProto, StepIO]:
    """The single step: body nodes minus the masked writes of write-only buffers, plus each chain
    replayed on its per-step value; loop-invariant nodes hoisted out."""
    g = body.model.graph
    nodes = [n for n in g.node if n.output[0] not in write_wheres]
    io = StepIO()
    outer_consts = ge.constants(outer.graph)
    inits = {t.name: t for t in g.initializer}
    io.per_step["cond"] = body.cond
    for st in body.states:
        if st.role == "recurrent":
            io.states[st.input] = st.output
    side: set[str] = set()
    for chain in chains:
        start = chain.root.source
        if chain.root.kind == "scan":
            start = names.fresh(start + ".row")
            nodes += graphs.unsqueeze_nodes(chain.root.source, start, [0], graphs.opset_of(body.model), names)
        copies, outs = replay(chain, start, "step", names)
        nodes.extend(copies)
        kind = "last" if chain.root.kind == "last" else "row"
        for o, t in outs.items():
            io.per_step[f"{kind}:{o}"] = t
        for n in copies:
            for i in n.input:
                if i in outer_consts and i not in inits:
                    inits[i] = numpy_helper.from_array(outer_consts[i], i)
        side |= chain.side
    wanted = list(io.states.values()) + list(io.per_step.values())
    nodes = ge.needed(nodes, wanted)
    outer_in = set(body.outer_inputs) | side
    hoisted, kept = _hoist(nodes, outer_in, set(inits))
    io.hoisted = hoisted
    invariant = outer_in | {o for n in hoisted for o in n.output}
    reads = {i for n in kept for i in ge.node_reads(n)} | set(wanted)
    io.feeds = sorted(reads & invariant)
    io.initializers = [inits[i] for i in sorted({i for n in hoisted for i in n.input} & set(inits))]
    io.index = body.iter if body.iter in reads else None
    types = ge.value_infos(ge.infer(body.model))
    outer_types = ge.value_infos(outer)
    inputs = ([helper.make_tensor_value_info(body.iter, onnx.TensorProto.INT64, list(_shape(types[body.iter])))]
              if io.index else [])
    inputs += [_typed(s, types[s], st_shape(body, s)) for s in io.states]
    for f in io.feeds:
        vi = types.get(f) or outer_types[f]
        if ge.static_shape(vi) is None:
            raise SplitRefused(f"the loop-invariant tensor '{f}' the step reads has no static shape")
        inputs.append(_typed(f, vi))
    named = {f"next:{s}": t for s, t in io.states.items()} | io.per_step
    pretty = {"cond": "cond"} | {k: f"{k[5:]}.next" if k.startswith("next:") else f"{k.split(':', 1)[1]}.{k.split(':')[0]}"
                                 for k in named if k != "cond"}
    io.outputs = {k: names.fresh(pretty[k]) for k in named}
    outputs, extra = _named_outputs({io.outputs[k]: t for k, t in named.items()})
    used = {i for n in kept + extra for i in n.input}
    graph = helper.make_graph(kept + extra, "step", inputs, outputs, [t for k, t in inits.items() if k in used])
    ge.unique_node_names(graph)
    model = ge.type_outputs(ge.make_model(graph, body.model))
    shapes = ge.value_infos(model)
    for chain in chains:
        for x, y, node in chain.checks:
            a, b = (ge.static_shape(shapes[t]) if t in shapes else None for t in (x, y))
            if a is None or a != b:
                raise SplitRefused(f"post-loop {describe(node)} reshapes the rows; only a reshape to the same "
                                   "shape is folded into the step")
    return model, io


def st_shape(body: LoopBody, name: str) -> tuple:
    return next(s.shape for s in body.states if s.input == name)


def _shape(vi) -> tuple:
    return ge.static_shape(vi) or ()


def _typed(name: str, vi, shape=None):
    return helper.make_tensor_value_info(name, vi.type.tensor_type.elem_type,
                                         list(shape if shape is not None else (ge.static_shape(vi) or ())))


def _named_outputs(named: dict[str, str]) -> tuple[list, list]:
    """Graph outputs under the given names (an Identity each, so one tensor may serve several)."""
    nodes = [helper.make_node("Identity", [t], [name]) for name, t in named.items()]
    return [helper.ValueInfoProto(name=n) for n in named], nodes


def _hoist(nodes: list, outer: set[str], consts: set[str]) -> tuple[list, list]:
    """(nodes computing only from outer tensors and constants — at least one outer — , the rest)."""
    invariant = set(outer)
    hoisted, kept = [], []
    for node in ge.topo_sort(nodes, ()):
        reads = ge.node_reads(node)
        if node.op_type in RANDOM:  # a new draw every step: not invariant
            kept.append(node)
        elif reads and all(i in invariant or i in consts for i in reads) and any(i in invariant for i in reads):
            hoisted.append(node)
            invariant.update(node.output)
        else:
            kept.append(node)
    return hoisted, kept


def check_static(model, role: str) -> None:
    """Refuse a graph with a banned op or a tensor whose shape is not fixed, naming the first node."""
    for node in model.graph.node:
        if node.op_type in BANNED:
            raise SplitRefused(f"the {role} graph still holds {describe(node)}")
    inferred = ge.infer(model)
    known = ge.value_infos(inferred)
    for node in ge.topo_sort(list(inferred.graph.node), {i.name for i in inferred.graph.input}):
        for out in node.output:
            if out and (out not in known or ge.static_shape(known[out]) is None):
                raise SplitRefused(f"{describe(node)} in the {role} graph has a shape that is not fixed "
                                   f"(it changes per step or depends on data)")


def unroll(step, io: StepIO, k: int, capacity: int, names: graphs.Names) -> onnx.ModelProto:
    """K copies of the step in one graph: copy j reads copy j-1's states and the counter + j (at most
    capacity - 1: copies past the capacity only run to be dropped); every per-step output once per copy
    (`io.copies`), each state's next value from the last copy (under its single-step name)."""
    g = step.graph
    nodes, outputs = [], []
    current = {s: s for s in io.states}
    known = ge.value_infos(step)
    made = ge.producers(g.node)
    io.copies = {key: [names.fresh(f"{io.outputs[key]}.{j}") for j in range(k)] for key in io.per_step}
    for j in range(k):
        rename = dict(current)
        if io.index and j:
            offset, last, added = (names.fresh(f"{io.index}.{s}{j}") for s in ("plus", "last", "added"))
            rename[io.index] = names.fresh(f"{io.index}.{j}")
            nodes.append(graphs.const_node(offset, np.array(j, np.int64)))
            nodes.append(graphs.const_node(last, np.array(capacity - 1, np.int64)))
            nodes.append(helper.make_node("Add", [io.index, offset], [added]))
            nodes.append(helper.make_node("Min", [added, last], [rename[io.index]]))
        per_copy = {io.outputs[key]: io.copies[key][j] for key in io.per_step}
        for node in g.node:
            copy = onnx.NodeProto()
            copy.CopyFrom(node)
            copy.input[:] = [rename.get(i, i) for i in node.input]
            for i, name in enumerate(node.output):
                rename[name] = copy.output[i] = per_copy.get(name) or names.fresh(f"{name}.{j}")
            nodes.append(copy)
        for key in io.per_step:
            name = io.outputs[key]
            if name not in made:  # folded into an initializer
                nodes.append(helper.make_node("Identity", [name], [per_copy[name]]))
            outputs.append(_typed(per_copy[name], known[name]))
        current = {s: rename.get(io.outputs[f"next:{s}"], io.outputs[f"next:{s}"]) for s in io.states}
    for s in io.states:
        name = io.outputs[f"next:{s}"]
        nodes.append(helper.make_node("Identity", [current[s]], [name]))
        outputs.append(_typed(name, known[name]))
    graph = helper.make_graph(nodes, "step", list(g.input), outputs, list(g.initializer))
    ge.unique_node_names(graph)
    return ge.make_model(graph, step)


def encoder_graph(outer, loop, io: StepIO, chains: list[Chain], extra_outputs: dict[str, str],
                  reshapes: dict[str, tuple], names: graphs.Names) -> tuple[onnx.ModelProto, dict[str, str]]:
    """Everything before the loop + the hoisted work + each chain replayed on its initial value.
    `extra_outputs` maps keys to outer tensors the host needs (state inits, loop-independent outputs,
    the start condition); `reshapes` gives states whose initial value needs another (one-element) shape.
    Returns the model and {key: encoder output name}."""
    g = outer.graph
    tainted = {o for o in loop.output}
    for node in g.node:
        if any(i in tainted for i in ge.node_reads(node)):
            tainted.update(node.output)
    nodes = [n for n in g.node if n is not loop and not set(n.output) & tainted]
    nodes += io.hoisted
    named = {f"feed:{f}": f for f in io.feeds}
    for key, tensor in extra_outputs.items():
        if key.startswith("state:") and key[6:] in reshapes:
            target = names.fresh(tensor + ".shape")
            shaped = names.fresh(tensor + ".reshaped")
            nodes.append(graphs.const_node(target, np.array(reshapes[key[6:]], np.int64)))
            nodes.append(helper.make_node("Reshape", [tensor, target], [shaped]))
            tensor = shaped
        named[key] = tensor
    for i, chain in enumerate(chains):
        if chain.root.init is None:
            continue
        copies, outs = replay(chain, chain.root.init, "init", names)
        nodes += copies
        for o, t in outs.items():
            named[f"init:{o}"] = t
    out_names = {key: names.fresh(f"{t}.out") for key, t in named.items()}
    nodes += [helper.make_node("Identity", [named[key]], [n]) for key, n in out_names.items()]
    defined = {x.name for x in g.initializer} | {o for n in g.node for o in n.output}
    inits = list(g.initializer) + [t for t in io.initializers if t.name not in defined]
    graph = helper.make_graph(nodes, "encoder", list(g.input), [helper.ValueInfoProto(name=n) for n in out_names.values()], inits)
    model = ge.make_model(graph, outer)
    ge.prune(model.graph)
    ge.unique_node_names(model.graph)
    return ge.type_outputs(model), out_names

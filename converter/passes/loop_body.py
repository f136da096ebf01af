"""A top-level ONNX `Loop`'s body as a standalone model the decoder split can analyse: the carried states
typed with the static shapes of their initial values, the outer tensors it reads as inputs (constants
copied in), `If` nodes inlined as both branches + a select, and Concat-grown states cut down to the part
each step appends."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from converter.errors import InputError
from converter.passes import graph_edit as ge
from converter.passes import graphs

HINT = ("the decoder split only rewrites what it can prove exact; change the head (preallocate the buffers, "
        "write `buf[:, i] = x`, keep the history out of the step) and re-export, or switch the pass off with "
        "onnx.disable_passes: [decoder_split]")


class SplitRefused(InputError):
    """The loop cannot be split into static graphs exactly; the message names the node and the reason."""

    def __init__(self, message: str, hint: str = HINT) -> None:
        super().__init__(f"decoder split refused: {message}", hint)


def describe(node) -> str:
    """`Op 'output'` — how refusals name a node (paddle2onnx writes the Paddle op into the output name)."""
    return f"{node.op_type} '{node.output[0] if node.output else node.name}'"


def find_loop(model):
    """The model's one top-level Loop, or None; several loops or a loop nested in it are refused."""
    loops = [n for n in model.graph.node if n.op_type in ("Loop", "Scan")]
    if not loops:
        return None
    if len(loops) > 1:
        raise SplitRefused(f"the model holds {len(loops)} top-level loops ({', '.join(describe(n) for n in loops)}); "
                           "one decoder loop can be split, several cannot (a constant trip count of at most "
                           "onnx.unroll_max steps is unrolled by fold_control_flow)")
    loop = loops[0]
    if loop.op_type != "Loop":
        raise SplitRefused(f"{describe(loop)} is a Scan; only a Loop is split")
    nested = _nested_loop(ge.subgraphs(loop)[0])
    if nested is not None:
        raise SplitRefused(f"{describe(nested)} is a loop nested in the body of {describe(loop)}; nested loops cannot be split")
    return loop


def _nested_loop(graph):
    for node in graph.node:
        if node.op_type in ("Loop", "Scan"):
            return node
        for sub in ge.subgraphs(node):
            found = _nested_loop(sub)
            if found is not None:
                return found
    return None


@dataclass
class State:
    """One loop-carried state: body input/output, the loop's initial value and final output (outer names),
    its static per-step shape and its role (`recurrent`, `append` (Concat-grown), later `write`, `last`,
    `dropped`)."""

    index: int
    input: str
    output: str
    init: str
    final: str
    dtype: int
    shape: tuple | None
    role: str = "recurrent"
    axis: int | None = None  # append: the Concat axis


@dataclass
class LoopBody:
    model: onnx.ModelProto              # standalone: inputs iter, states, outer refs; outputs cond, states, scans
    iter: str
    cond: str                           # the body's condition output
    states: list[State]
    scans: list[tuple[str, str]]        # (body scan output, outer output)
    outer_inputs: list[str]             # computed outer tensors the body reads
    init_shapes: dict[str, tuple] = field(default_factory=dict)  # state input -> shape of its initial value


def _inline_ifs(nodes: list, names: graphs.Names, inits: list) -> list:
    """Replace every If by both branches (renamed) and a per-output select; recursive."""
    out = []
    for node in nodes:
        if node.op_type != "If":
            out.append(node)
            continue
        cond = names.fresh(node.output[0] + ".cond")
        shape = names.fresh(node.output[0] + ".scalar")
        out.append(graphs.const_node(shape, np.zeros(0, np.int64)))
        out.append(helper.make_node("Reshape", [node.input[0], shape], [cond]))
        branches = {}
        for key in ("then_branch", "else_branch"):
            branch = ge.attr(node, key)
            rename = {n: names.fresh(f"{n}.{key[:4]}") for b in branch.node for n in b.output if n}
            rename.update({t.name: names.fresh(f"{t.name}.{key[:4]}") for t in branch.initializer})
            for t in branch.initializer:
                inits.append(numpy_helper.from_array(numpy_helper.to_array(t), rename[t.name]))
            body = []
            for b in branch.node:
                copy = onnx.NodeProto()
                copy.CopyFrom(b)
                _rename_io(copy, rename)
                body.append(copy)
            out.extend(_inline_ifs(body, names, inits))
            branches[key] = [rename.get(o.name, o.name) for o in branch.output]
        then_branch = ge.attr(node, "then_branch")
        for i, result in enumerate(node.output):
            t, e = branches["then_branch"][i], branches["else_branch"][i]
            if then_branch.output[i].type.tensor_type.elem_type == TensorProto.BOOL:
                a, b, nc = (names.fresh(f"{result}.{s}") for s in ("and_then", "and_else", "not_cond"))
                out += [helper.make_node("And", [cond, t], [a]), helper.make_node("Not", [cond], [nc]),
                        helper.make_node("And", [nc, e], [b]), helper.make_node("Or", [a, b], [result])]
            else:
                out.append(helper.make_node("Where", [cond, t, e], [result]))
    return out


def _rename_io(node, rename: dict) -> None:
    """Rename a node's inputs/outputs, and the outer references of its subgraphs."""
    for i, name in enumerate(node.input):
        node.input[i] = rename.get(name, name)
    for i, name in enumerate(node.output):
        node.output[i] = rename.get(name, name)
    for sub in ge.subgraphs(node):
        inner = ge.all_names(sub) - ge.outer_refs(sub)
        local = {k: v for k, v in rename.items() if k not in inner}
        for n in sub.node:
            _rename_io(n, local)
        for o in sub.output:
            o.name = local.get(o.name, o.name)


def extract(model, loop, names: graphs.Names) -> LoopBody:
    """The loop body as a standalone model. `model` must carry shape information (ge.infer) for the
    loop's inputs and the outer tensors the body reads; a dynamic one is refused."""
    g = model.graph
    infos = ge.value_infos(model)
    consts = ge.constants(g)
    body = ge.subgraphs(loop)[0]
    n = len(loop.input) - 2
    b_in = [i.name for i in body.input]
    b_out = [o.name for o in body.output]
    inits: list = [numpy_helper.from_array(numpy_helper.to_array(t), t.name) for t in body.initializer]
    nodes = _inline_ifs([_copy(x) for x in body.node], names, inits)

    states = []
    for j in range(n):
        init = loop.input[2 + j]
        dtype, shape = _type_of(init, infos, consts)
        states.append(State(j, b_in[2 + j], b_out[1 + j], init, loop.output[j], dtype, shape))
    scans = list(zip(b_out[1 + n:], loop.output[n:]))

    made = ge.producers(nodes)
    for st in states:
        _find_append(st, nodes, made, names)
    left = ge.producers(nodes)
    for name in [b_out[0]] + [s.output for s in states] + [s for s, _ in scans]:
        if name in made and name not in left:
            raise SplitRefused(f"the loop also returns the Concat-grown '{name}' as another state or scan output")
        if st.role != "append" and st.shape is None:
            raise SplitRefused(f"loop state '{st.input}' (initial value '{st.init}') has no static shape; fix the "
                               "model inputs first")

    cond_true = names.fresh(b_in[1] + ".true")
    inits.append(numpy_helper.from_array(np.ones(_declared(body.input[1]) or (), bool), cond_true))
    for node in nodes:  # the body only runs while the condition holds
        node.input[:] = [cond_true if i == b_in[1] else i for i in node.input]

    refs = set()
    for node in nodes:
        refs.update(ge.node_reads(node))
    defined = {o for node in nodes for o in node.output} | {t.name for t in inits} | set(b_in)
    refs = (refs | {b_out[0]} | {s.output for s in states} | {s for s, _ in scans}) - defined
    outer_inputs = []
    for ref in sorted(refs):
        if ref in consts:
            inits.append(numpy_helper.from_array(consts[ref], ref))
        else:
            dtype, shape = _type_of(ref, infos, consts)
            if shape is None:
                raise SplitRefused(f"the loop body reads '{ref}' whose shape is not static")
            outer_inputs.append(ref)

    iter_shape = _declared(body.input[0]) or ()
    inputs = [helper.make_tensor_value_info(b_in[0], TensorProto.INT64, list(iter_shape))]
    inputs += [helper.make_tensor_value_info(s.input, s.dtype, list(s.shape)) for s in states if s.role != "append"]
    inputs += [helper.make_tensor_value_info(r, *_typed(r, infos, consts)) for r in outer_inputs]

    # every body output gets a tensor of its own that a node writes (no input passed straight through)
    sources = {i.name for i in inputs} | {t.name for t in inits} | {b_in[1]}
    def own(name: str) -> str:
        name = cond_true if name == b_in[1] else name
        if name not in sources:
            return name
        fresh = names.fresh(name + ".out")
        nodes.append(helper.make_node("Identity", [name], [fresh]))
        return fresh
    cond = own(b_out[0])
    for st in states:
        st.output = own(st.output)
    scans = [(own(s), outer) for s, outer in scans]
    outputs = [cond] + [s.output for s in states] + [s for s, _ in scans]
    graph = helper.make_graph(nodes, "loop_body", inputs, _outputs(outputs), inits)
    return LoopBody(ge.type_outputs(ge.make_model(graph, model)), b_in[0], cond, states, scans, outer_inputs,
                    {s.input: s.shape for s in states})


def _outputs(names: list[str]) -> list:
    seen: list[str] = []
    for name in names:
        if name not in seen:
            seen.append(name)
    return [helper.ValueInfoProto(name=n) for n in seen]


def _copy(node):
    c = onnx.NodeProto()
    c.CopyFrom(node)
    return c


def _declared(vi) -> tuple | None:
    dims = vi.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else 1 for d in dims)


def _type_of(name: str, infos: dict, consts: dict) -> tuple[int, tuple | None]:
    if name in consts:
        value = consts[name]
        return helper.np_dtype_to_tensor_dtype(value.dtype), tuple(value.shape)
    vi = infos.get(name)
    if vi is None:
        return 0, None
    return vi.type.tensor_type.elem_type, ge.static_shape(vi)


def _typed(name: str, infos: dict, consts: dict) -> tuple[int, list]:
    dtype, shape = _type_of(name, infos, consts)
    return dtype, list(shape or ())


def _find_append(st: State, nodes: list, made: dict, names: graphs.Names) -> None:
    """A state updated as Concat(state, new...) becomes `append`: the body output turns into the new part.
    Any other read of a Concat-grown state is refused (its shape grows every step)."""
    out = st.output
    while out in made and made[out].op_type == "Identity":
        out = made[out].input[0]
    node = made.get(out)
    if node is None or node.op_type != "Concat" or st.input not in node.input:
        return
    readers = [x for x in nodes if st.input in ge.node_reads(x) and x is not node]
    if readers:
        raise SplitRefused(f"'{st.input}' grows by {describe(node)} every step and the body reads it back in "
                           f"{describe(readers[0])}: attention over a Concat-grown history needs a fixed-capacity "
                           "buffer with a position mask")
    if node.input[0] != st.input or list(node.input).count(st.input) > 1:
        raise SplitRefused(f"{describe(node)} grows '{st.input}' at the front; only appending is split")
    chain = {out}
    tail = st.output
    while tail != out:
        chain.add(tail)
        tail = made[tail].input[0]
    others = [x for x in nodes if node.output[0] in ge.node_reads(x) and x.output[0] not in chain]
    if others:
        raise SplitRefused(f"the body reads the Concat-grown '{node.output[0]}' in {describe(others[0])}")
    for x in [x for x in nodes if x is node or x.output[0] in chain]:
        nodes.remove(x)
    st.role, st.axis = "append", ge.attr(node, "axis")
    parts = list(node.input[1:])
    if len(parts) == 1:
        st.output = parts[0]
    else:
        st.output = names.fresh(node.output[0] + ".step")
        nodes.append(helper.make_node("Concat", parts, [st.output], axis=st.axis))

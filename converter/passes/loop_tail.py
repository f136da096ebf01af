"""The work after the loop: which loop outputs the model returns and through what.

Each used loop output is a *root*: rows the step writes into a buffer (`write`), rows appended to a
Concat-grown tensor or stacked by a scan output (`append`), or the value of the last step (`last`). The
post-loop nodes on a root are replayed in the step on each row (and in the encoder on the initial
buffer) when that is exact: row-wise ops on a row root (elementwise with operands constant along the row
axis, softmax/argmax/reductions over other axes, transposes, squeezes), any op on a `last` root. A slice
of the rows `[0, end)` whose end is a function of the step count becomes a row *count* the host applies:
`end = scale * steps + offset`, checked at every step count the loop can end with."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from converter.passes import graph_edit as ge
from converter.passes import graphs
from converter.passes.loop_body import SplitRefused, describe

UNARY = {"Relu", "Sigmoid", "Tanh", "Exp", "Log", "Abs", "Neg", "Cast", "Identity", "Sqrt", "Erf", "Floor",
         "Ceil", "Round", "Not", "Softplus", "Softsign", "HardSigmoid", "HardSwish", "LeakyRelu", "Elu", "Selu",
         "Reciprocal", "Sign", "Sin", "Cos", "IsNaN", "IsInf", "Gelu", "Mish", "Clip", "Celu", "ThresholdedRelu"}
ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Equal", "Less", "LessOrEqual", "Greater",
               "GreaterOrEqual", "And", "Or", "Xor", "Where", "Mod", "PRelu", "Sum", "Mean", "BitShift"}
REDUCE = {"ReduceSum", "ReduceMax", "ReduceMin", "ReduceMean", "ReduceProd", "ReduceL1", "ReduceL2",
          "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"}


@dataclass
class Root:
    kind: str                 # write | append | last
    final: str                # the loop output (outer name)
    source: str               # body tensor: the row (write/append) or the value (last) of one step
    init: str | None          # outer tensor the rows start from / the value without any step
    axis: int | None = None   # row axis
    offset: int = 0           # write: step k writes row k + offset
    rank: int | None = None


@dataclass(frozen=True)
class Info:
    root: int
    axis: int | None
    rank: int | None
    count: tuple[int, int] | None = None  # (scale, offset) of the row slice end
    shape: bool = False                   # the Shape of such rows (only a Reshape may read it)


@dataclass
class Chain:
    root: Root
    nodes: list = field(default_factory=list)            # outer nodes replayed on the root's per-step value
    alias: dict[str, str] = field(default_factory=dict)  # row-slice output -> its input
    outputs: dict[str, Info] = field(default_factory=dict)  # model output -> where its rows are
    side: set[str] = field(default_factory=set)          # loop-independent outer tensors the replay reads
    reshapes: list[str] = field(default_factory=list)    # Reshape(x, Shape(y)) outputs that must be identities
    checks: list = field(default_factory=list)           # their copies in the step: (input, output, node)


@dataclass
class _Ctx:
    model: object
    consts: dict
    infos: dict
    version: int
    counters: dict
    counter_finals: dict


def analyse(model, loop, roots: list[Root], counters: dict[str, list[np.ndarray]],
            counter_finals: dict[str, str]) -> list[Chain]:
    """Follow every model output back to its root; refuse post-loop work that cannot be replayed per step.
    `counters`: per step count, the values of the step-only states (by body input); `counter_finals`:
    loop output -> body input of those states."""
    g = model.graph
    consts = ge.constants(g)
    ctx = _Ctx(model, consts, ge.value_infos(model), graphs.opset_of(model), counters, counter_finals)
    tainted = _tainted(list(g.node), set(loop.output))
    after = [n for n in g.node if n is not loop and any(i in tainted for i in ge.node_reads(n))]
    final_index = set(counter_finals)
    chains = [Chain(r) for r in roots]
    where: dict[str, Info] = {r.final: Info(i, r.axis, r.rank) for i, r in enumerate(roots)}
    for node in after:
        ins = ge.node_reads(node)
        if any(i in final_index for i in ins) and all(i in final_index or i not in tainted for i in ins):
            final_index.update(node.output)
            continue
        chained = [i for i in ins if i in where]
        if not chained:
            raise SplitRefused(f"post-loop {describe(node)} uses the step count other than as the end of a row slice")
        if len({where[i].root for i in chained}) > 1:
            raise SplitRefused(f"post-loop {describe(node)} combines several loop outputs; it cannot be replayed per step")
        chain = chains[where[chained[0]].root]
        side = [i for i in ins if i not in where and i not in consts]
        if chain.root.kind == "last":  # a last-step value: any op replays exactly
            if any(i in final_index for i in side):
                raise SplitRefused(f"post-loop {describe(node)} uses the step count other than as the end of a row slice")
            for out in node.output:
                where[out] = Info(where[chained[0]].root, None, None)
        else:
            info = _aligned(node, chained, where)
            new = _row_wise(node, info, ctx, final_index, set(chained)) if info is not None else None
            if new is None:
                raise SplitRefused(f"post-loop {describe(node)} is not row-wise on the rows of '{chain.root.final}' "
                                   f"(axis {where[chained[0]].axis}); it cannot be folded into the step")
            if node.op_type == "Slice" and new.count != info.count:
                chain.alias[node.output[0]] = node.input[0]
                where[node.output[0]] = new
                continue
            if node.op_type == "Reshape":
                chain.reshapes.append(node.output[0])
            for out in node.output:
                where[out] = new
        chain.nodes.append(node)
        chain.side.update(i for i in side if i not in final_index)
    for out in g.output:
        if out.name in final_index:
            raise SplitRefused(f"the model returns '{out.name}', computed from the step count; not supported")
        if out.name in where:
            if where[out.name].shape:
                raise SplitRefused(f"the model returns '{out.name}', the shape of a loop output; not supported")
            chains[where[out.name].root].outputs[out.name] = where[out.name]
    return chains


def _tainted(nodes: list, seeds: set[str]) -> set[str]:
    found = set(seeds)
    for node in nodes:
        if any(i in found for i in ge.node_reads(node)):
            found.update(node.output)
    return found


def _aligned(node, chained: list[str], where: dict) -> Info | None:
    """The row info the node's row inputs share (a Shape of rows may only be a Reshape's target)."""
    shapes = [i for i in chained if where[i].shape]
    rows = [i for i in chained if not where[i].shape]
    if not rows or any(where[i] != where[rows[0]] for i in rows):
        return None
    info = where[rows[0]]
    if shapes and not (node.op_type == "Reshape" and shapes == [node.input[1]]
                       and where[shapes[0]] == Info(info.root, info.axis, info.rank, info.count, True)):
        return None
    return info


def _axes(node, consts: dict):
    value = ge.attr(node, "axes")
    if value is None and len(node.input) > 1 and node.input[1]:
        value = consts.get(node.input[1])
    return None if value is None else [int(x) for x in np.ravel(value)]


def _row_wise(node, info: Info, ctx: _Ctx, final_index: set[str], rows: set[str]) -> Info | None:
    """The row info of `node`'s outputs (a row slice sets the count), None when it is not row-wise.
    `rows`: the inputs that are rows (aligned with `info`)."""
    a, r, op = info.axis, info.rank, node.op_type
    consts, infos = ctx.consts, ctx.infos
    if op in UNARY:
        return info if node.input[0] in rows and all(
            i not in rows and _side_ok(i, a, r, infos, consts) for i in node.input[1:] if i) else None
    if op in ELEMENTWISE:
        return info if all(i in rows or _side_ok(i, a, r, infos, consts) for i in node.input if i) else None
    if op in ("Softmax", "LogSoftmax", "Hardmax"):
        axis = ge.attr(node, "axis", -1 if ctx.version >= 13 else 1) % r
        return info if (axis != a if ctx.version >= 13 else axis > a) else None
    if op in ("ArgMax", "ArgMin"):
        axis = ge.attr(node, "axis", 0) % r
        if axis == a:
            return None
        return info if ge.attr(node, "keepdims", 1) else Info(info.root, a - (axis < a), r - 1, info.count)
    if op in REDUCE:
        axes = _axes(node, consts)
        if not axes or a in {x % r for x in axes}:
            return None
        if ge.attr(node, "keepdims", 1):
            return info
        axes = {x % r for x in axes}
        return Info(info.root, a - sum(x < a for x in axes), r - len(axes), info.count)
    if op == "Transpose":
        perm = list(ge.attr(node, "perm") or range(r - 1, -1, -1))
        return Info(info.root, perm.index(a), r, info.count)
    if op in ("Squeeze", "Unsqueeze"):
        axes = _axes(node, consts)
        if axes is None:
            return None
        n = r + len(axes) if op == "Unsqueeze" else r
        axes = sorted(x % n for x in axes)
        if op == "Squeeze":
            return None if a in axes else Info(info.root, a - sum(x < a for x in axes), r - len(axes), info.count)
        return Info(info.root, [d for d in range(n) if d not in axes][a], n, info.count)
    if op == "Reshape":
        return info  # its target is the Shape of rows aligned with the input (checked by _aligned)
    if op == "Shape" and not ge.attr(node, "start") and ge.attr(node, "end") is None:
        return Info(info.root, a, r, info.count, True)
    if op == "MatMul" and r >= 2 and a != r - 1 and node.input[0] in rows and node.input[1] not in rows:
        shape = consts[node.input[1]].shape if node.input[1] in consts else ge.static_shape(infos[node.input[1]])
        return info if shape is not None and len(shape) == 2 else None
    if op == "Slice":
        return _slice(node, info, ctx, final_index)
    return None


def _side_ok(name: str, axis: int, rank: int, infos: dict, consts: dict) -> bool:
    """A loop-independent operand with a static shape that does not vary along the row axis."""
    shape = consts[name].shape if name in consts else (ge.static_shape(infos[name]) if name in infos else None)
    if shape is None or len(shape) > rank:
        return False
    at = axis - (rank - len(shape))
    return at < 0 or shape[at] == 1


def _slice(node, info: Info, ctx: _Ctx, final_index: set[str]) -> Info | None:
    consts = ctx.consts
    starts, ends, axes, steps = (list(node.input) + [""] * 5)[1:5]
    r, a = info.rank, info.axis
    if starts not in consts or (axes and axes not in consts) or (steps and steps not in consts):
        return None
    axes_v = [int(x) % r for x in np.ravel(consts[axes])] if axes else list(range(np.size(consts[starts])))
    if a not in axes_v:
        return info if ends in consts else None
    if axes_v != [a] or int(np.ravel(consts[starts])[0]) != 0 or (steps and int(np.ravel(consts[steps])[0]) != 1):
        return None
    if info.count is not None:
        return None
    if ends in consts:
        count = (0, int(np.ravel(consts[ends])[0]))
    elif ends in final_index:
        count = _fit(ends, ctx, node)
    else:
        return None
    return Info(info.root, a, r, count)


def _fit(ends: str, ctx: _Ctx, node) -> tuple[int, int]:
    """Evaluate the slice end at every possible step count; it must be `scale * steps + offset`."""
    import onnxruntime as ort
    from onnx import helper

    g = ctx.model.graph
    program = ge.needed([n for n in g.node if not set(n.output) & set(ctx.counter_finals)], [ends])
    finals = [f for f in ctx.counter_finals if any(f in n.input for n in program)]
    history = {f: ctx.counters[ctx.counter_finals[f]] for f in finals}
    inputs = [helper.make_tensor_value_info(f, helper.np_dtype_to_tensor_dtype(h[0].dtype), list(h[0].shape))
              for f, h in history.items()]
    used = {i for n in program for i in n.input}
    inits = [t for t in g.initializer if t.name in used]
    sub = ge.type_outputs(ge.make_model(
        helper.make_graph(program, "ends", inputs, [helper.ValueInfoProto(name=ends)], inits), ctx.model))
    session = ort.InferenceSession(sub.SerializeToString(), providers=["CPUExecutionProvider"])
    steps = len(next(iter(ctx.counters.values())))
    values = [int(np.ravel(session.run([ends], {f: h[s] for f, h in history.items()})[0])[0]) for s in range(steps)]
    scale = values[1] - values[0] if len(values) > 1 else 0
    if any(v != values[0] + scale * s for s, v in enumerate(values)):
        raise SplitRefused(f"post-loop {describe(node)} keeps {values[:4]} rows after 0..3 steps: not "
                           "`scale * steps + offset`")
    return scale, values[0]

"""Index analysis of a loop body: which tensors depend only on the step (the iteration number, counters
whose initial value is constant, constants and static shapes), and their values at every step.

The values are computed by running that index-only part of the body step by step (data inputs fed zeros:
by construction no index tensor depends on their values, only on their static shapes). A function of the
step alone, evaluated at every step the loop can run, is known exactly: write positions, the capacity
(the first step where a step-only conjunct of the condition is false), and tensors that are the same at
every step (shapes of per-step slices) which then become constants."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import helper

from converter.passes import graph_edit as ge
from converter.passes.loop_body import LoopBody, SplitRefused, describe

STEP_LIMIT = 65536
# inputs whose values (not only shapes) decide an op's output shape
_SHAPE_INPUTS = {
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Slice": (1, 2, 3, 4), "ConstantOfShape": (0,),
    "Resize": (1, 2, 3), "Upsample": (1,), "Pad": (1, 2, 3), "TopK": (1,), "OneHot": (1,), "Squeeze": (1,),
    "Unsqueeze": (1,), "Split": (1,), "CenterCropPad": (1,), "ReduceSum": (1,), "ReduceMax": (1,),
    "ReduceMin": (1,), "ReduceMean": (1,), "ReduceProd": (1,), "ReduceL1": (1,), "ReduceL2": (1,),
    "ReduceLogSum": (1,), "ReduceLogSumExp": (1,), "ReduceSumSquare": (1,), "MaxUnpool": (2,), "DFT": (1,),
    "STFT": (2, 3), "Col2Im": (1, 2), "AffineGrid": (1,), "BlackmanWindow": (0,), "HannWindow": (0,),
    "HammingWindow": (0,),
}
_VALUE_SHAPED = {"Range", "NonZero", "Unique", "Compress", "NonMaxSuppression", "StringSplit", "MelWeightMatrix"}
RANDOM = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}


@dataclass
class IndexTables:
    capacity: int                          # the most steps the loop can run
    values: dict[str, list[np.ndarray]]    # step-only tensors read by the rest of the body, per step
    counters: dict[str, list[np.ndarray]]  # step-only state inputs, per step 0..capacity (after the last step too)
    seeded: set[str]                       # every tensor that is a function of the step alone (not constant)


def taint(nodes: list, seeds: set[str], consts: set[str], inputs: set[str]) -> tuple[set[str], set[str]]:
    """(tensors whose value is a function of `seeds` and constants, tensors whose shape is). The other
    `inputs` are data with static shapes."""
    value, shaped = set(seeds) | set(consts), set(seeds) | set(consts) | set(inputs)
    for node in ge.topo_sort(nodes, value | shaped):
        ins = [i for i in node.input if i]
        if node.op_type in RANDOM or node.domain not in ("", "ai.onnx"):
            continue
        if all(i in value for i in ins) or (node.op_type in ("Shape", "Size") and ins[0] in shaped):
            value.update(node.output)
            shaped.update(node.output)
        elif node.op_type not in _VALUE_SHAPED:
            decisive = _SHAPE_INPUTS.get(node.op_type, ())
            if all(i in value or (k not in decisive and i in shaped) for k, i in enumerate(node.input) if i):
                shaped.update(node.output)
    return value, shaped


def depending(nodes: list, seeds: set[str], within: set[str]) -> set[str]:
    """Tensors of `within` whose value or shape may depend on a seed (a superset: a tensor wrongly
    included only gets evaluated at every step and found constant)."""
    found = set(seeds)
    for node in ge.topo_sort(nodes, ()):
        if any(i in found for i in node.input):
            found.update(node.output)
    return found & within


def conjuncts(nodes: list, name: str) -> list[str]:
    """The leaves of an And-tree (through Identity, Cast and reshapes of one-element tensors)."""
    made = ge.producers(nodes)
    node = made.get(name)
    if node is None:
        return [name]
    if node.op_type == "And":
        return conjuncts(nodes, node.input[0]) + conjuncts(nodes, node.input[1])
    if node.op_type in ("Identity", "Cast", "Reshape", "Squeeze", "Unsqueeze"):
        return conjuncts(nodes, node.input[0])
    return [name]


def analyse(body: LoopBody, init_values: dict[str, np.ndarray], trip_count: int | None,
            steps_per_call: int = 1) -> IndexTables:
    """Find the step-only tensors of `body` and evaluate them at every step. `init_values` holds the
    constant initial values of states (by body input name). Refused without a static bound on the steps."""
    import onnxruntime as ort

    g = body.model.graph
    nodes = list(g.node)
    consts = {t.name for t in g.initializer}
    outputs = {s.input: s.output for s in body.states if s.role != "append"}
    inputs = {vi.name for vi in g.input}
    counters = {name for name in outputs if name in init_values}
    while True:  # a counter's update must itself be step-only
        value, _ = taint(nodes, counters | {body.iter}, consts, inputs)
        keep = {c for c in counters if outputs[c] in value}
        if keep == counters:
            break
        counters = keep
    seeded = depending(nodes, counters | {body.iter}, value)

    readers = ge.consumers(nodes)
    frontier = sorted(t for t in seeded if t not in counters and t != body.iter and (
        any(not set(r.output) <= value for r in readers.get(t, ())) or t in [o.name for o in g.output]))
    leaves = [c for c in conjuncts(nodes, body.cond) if c in seeded]
    wanted = list(dict.fromkeys(frontier + leaves + [outputs[c] for c in sorted(counters)]))
    if not wanted:
        if trip_count is None:
            raise SplitRefused("the loop has no static bound on its steps (no trip count, no condition on the step counter)")
        return IndexTables(trip_count, {}, {}, set())

    program = ge.needed(nodes, wanted)
    used = {i for n in program for i in ge.node_reads(n)} | set(wanted)
    inputs = [vi for vi in g.input if vi.name in used or vi.name == body.iter]
    inits = [t for t in g.initializer if t.name in used]
    model = ge.make_model(helper.make_graph(program, "index", inputs, [helper.ValueInfoProto(name=w) for w in wanted], inits),
                          body.model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    feed = {vi.name: np.zeros(ge.static_shape(vi) or (), helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type))
            for vi in inputs}
    iter_shape = ge.static_shape(next(vi for vi in g.input if vi.name == body.iter)) or ()
    state = {c: init_values[c] for c in counters}
    history = {c: [state[c]] for c in counters}
    values: dict[str, list[np.ndarray]] = {w: [] for w in frontier}
    limit = min(trip_count, STEP_LIMIT) if trip_count is not None else STEP_LIMIT
    capacity = None
    for k in range(limit):
        feed.update(state)
        feed[body.iter] = np.full(iter_shape, k, np.int64)
        got = dict(zip(wanted, session.run(wanted, feed)))
        for w in frontier:
            values[w].append(got[w])
        state = {c: got[outputs[c]].reshape(np.shape(init_values[c])) for c in counters}
        for c in counters:
            history[c].append(state[c])
        if any(not bool(np.all(got[leaf])) for leaf in leaves):
            capacity = k + 1
            break
    if capacity is None:
        if trip_count is None or trip_count > STEP_LIMIT:
            raise SplitRefused(f"the loop's step-only condition still holds after {STEP_LIMIT} steps: no static "
                               "capacity for the host loop")
        capacity = trip_count
    # K steps per call: the last call may run up to K-1 steps past the capacity (their results are
    # dropped; the unrolled step clamps its counter to capacity - 1). They must still run without error.
    for k in range(capacity, capacity + (steps_per_call - capacity % steps_per_call) % steps_per_call):
        feed.update(state)
        feed[body.iter] = np.full(iter_shape, capacity - 1, np.int64)
        try:
            got = dict(zip(wanted, session.run(wanted, feed)))
        except Exception as exc:  # noqa: BLE001 -- ORT's own error types: an index out of range past the capacity
            raise SplitRefused(f"with {steps_per_call} steps per call the last call runs step {k}, past the capacity "
                               f"{capacity}, and that step fails ({str(exc).splitlines()[0][-160:]}); use a "
                               f"steps_per_call that divides {capacity}") from None
        state = {c: got[outputs[c]].reshape(np.shape(init_values[c])) for c in counters}
    return IndexTables(capacity, values, history, seeded)


def constant_over_steps(tables: IndexTables) -> dict[str, np.ndarray]:
    """Step-only tensors that hold the same value at every step the loop can run."""
    same = {}
    for name, per_step in tables.values.items():
        first = per_step[0]
        if all(v.shape == first.shape and v.dtype == first.dtype and np.array_equal(v, first) for v in per_step[1:]):
            same[name] = first
    return same


def refuse_data_write(node) -> SplitRefused:
    return SplitRefused(f"{describe(node)} writes at a position that depends on data (not on the step counter); "
                        "a data-dependent write cannot become a static step")

"""decoder_split: a model with one top-level `Loop` (a decoder) -> a static encoder graph + a static step
graph + a host loop, or a refusal naming the node and the reason. Never a silently different model.

    encoder: everything before the loop, the loop-invariant work hoisted out of the body, initial values
    step:    one (or K) iterations: write-only buffers return the row they would write, buffers the body
             reads stay fixed-size and are written through a position mask, If inlined, row-wise work
             after the loop (softmax over the last axis, ...) applied to each row
    host:    runs the step until its condition is false or the capacity is reached, writes the rows,
             cuts the row count the original slices to (converter.runners.hostloop)

The host-loop spec (`ModelSet.loop`, also the card's `host_loop`) is plain JSON; see `spec()`."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from converter.passes import graph_edit as ge
from converter.passes import graphs
from converter.passes.base import ModelSet, Pass, PassResult, onnx_options
from converter.passes.loop_body import SplitRefused, extract, find_loop
from converter.passes.loop_graphs import check_static, encoder_graph, step_graph, unroll
from converter.passes.loop_index import analyse, constant_over_steps
from converter.passes.loop_rewrite import (
    classify,
    freeze_constants,
    resolve,
    rewrite_scatters,
)
from converter.passes.loop_tail import Root
from converter.passes.loop_tail import analyse as analyse_tail
from converter.passes.registry import register

FORMAT = "npuconv.hostloop/1"


class DecoderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    steps_per_call: int = Field(1, ge=1, le=64)


@register
class DecoderSplit(Pass):
    name = "decoder_split"
    Config = DecoderConfig

    def configure(self, section) -> DecoderConfig:
        """`onnx.decoder.steps_per_call` from the stage section."""
        decoder = getattr(onnx_options(section), "decoder", None)
        if isinstance(decoder, dict):
            return DecoderConfig(**{k: v for k, v in decoder.items() if k == "steps_per_call"})
        return DecoderConfig(steps_per_call=getattr(decoder, "steps_per_call", 1))

    def run(self, models: ModelSet, config: DecoderConfig) -> PassResult:
        if set(models.graphs) != {"model"} or find_loop(models.model) is None:
            return PassResult(models)
        encoder, step, loop_spec, notes = split(models.model, config.steps_per_call)
        card = {"host_loop": loop_spec, "early_exit": early_exit(loop_spec)}
        return PassResult(ModelSet({"encoder": encoder, "step": step}, loop=loop_spec), tuple(notes), card)


def split(model, steps_per_call: int = 1):
    """(encoder, step, host-loop spec, notes) for a model holding one top-level Loop."""
    model = ge.infer(model)
    loop = find_loop(model)
    names = graphs.Names(model)
    body = extract(model, loop, names)
    body.model = ge.simplify(body.model)
    _settle_shapes(body)
    consts = ge.constants(model.graph)
    trip_const, trip_name = _scalar(loop.input[0], consts)
    start_const, start_name = _scalar(loop.input[1], consts)
    init_values = {st.input: np.reshape(consts[st.init], st.shape) for st in body.states
                   if st.role != "append" and st.init in consts and np.size(consts[st.init]) == int(np.prod(st.shape))}
    tables = analyse(body, init_values, None if trip_const is None else int(trip_const), steps_per_call)
    writes = rewrite_scatters(body, tables, names)
    freeze_constants(body, constant_over_steps(tables), names)
    classify(body, writes)

    used = {i for n in model.graph.node if n is not loop for i in ge.node_reads(n)} | {o.name for o in model.graph.output}
    roots, counter_finals = _roots(body, writes, tables, used, start_const)
    chains = [c for c in analyse_tail(model, loop, roots, tables.counters, counter_finals) if c.outputs]
    wheres = {w.where for w in writes if next(s for s in body.states if s.input == w.state).role == "write"}
    step, io = step_graph(body, wheres, chains, model, names)
    step = ge.simplify(step)
    check_static(step, "step")
    _check_states(step, io)
    step = ge.type_outputs(ge.simplify(unroll(step, io, steps_per_call, tables.capacity, names)))
    step = ge.no_scalar_inputs(step, names)

    loop_free = _loop_free_outputs(model, loop)
    extra = {f"state:{s.input}": s.init for s in body.states if s.role == "recurrent"}
    extra.update({f"output:{o}": o for o in loop_free})
    if start_name:
        extra["start"] = start_name
    if trip_name:
        extra["trip"] = trip_name
    reshapes = {s.input: s.shape for s in body.states if s.role == "recurrent" and body.init_shapes.get(s.input) != s.shape}
    encoder, enc = encoder_graph(model, loop, io, chains, extra, reshapes, names)
    encoder = ge.type_outputs(ge.simplify(encoder))
    check_static(encoder, "encoder")

    loop_spec = spec(model, body, io, chains, enc, tables.capacity, steps_per_call, start_const, step, loop_free)
    loop_spec["value_ranges"] = {"step": _ranges(io, tables)}
    roles = {s.role for s in body.states}
    notes = [(f"Loop '{loop.output[0]}' -> encoder ({len(encoder.graph.node)} nodes) + step "
              f"({len(step.graph.node)} nodes, {steps_per_call} step(s) per call), capacity {tables.capacity}"),
             f"hoisted {len(io.hoisted)} loop-invariant node(s) into the encoder",
             "states: " + ", ".join(f"{r} {sum(s.role == r for s in body.states)}" for r in sorted(roles))]
    return encoder, step, loop_spec, notes


def _settle_shapes(body) -> None:
    """A state whose value has one element may change rank on its first update ([] -> [1]); the step
    takes the updated shape (the encoder reshapes the initial value). Other changes are refused."""
    changed = False
    inferred = ge.value_infos(ge.infer(body.model))
    reads = {i for n in body.model.graph.node for i in ge.node_reads(n)}
    for st in body.states:
        if st.role == "append" or st.output not in inferred:
            continue
        out = ge.static_shape(inferred[st.output])
        if out is None or out == st.shape:
            continue
        if st.input in reads and not (int(np.prod(out)) == int(np.prod(st.shape)) == 1):
            raise SplitRefused(f"loop state '{st.input}' changes shape from {list(st.shape)} to {list(out)} per step")
        st.shape = out
        vi = next(v for v in body.model.graph.input if v.name == st.input)
        vi.type.tensor_type.shape.ClearField("dim")
        for d in out:
            vi.type.tensor_type.shape.dim.add().dim_value = d
        changed = True
    if changed:
        body.model = ge.simplify(body.model)


def _ranges(io, tables) -> dict[str, list[int]]:
    """[lo, hi] of the integer step inputs the host feeds, for the int32 pass: the step counter, and the
    step-only states at every step the loop can start (all evaluated)."""
    ranges = {io.index: [0, tables.capacity - 1]} if io.index else {}
    for name, history in tables.counters.items():
        values = np.concatenate([np.ravel(v) for v in history[: tables.capacity]])
        if name in io.states and np.issubdtype(values.dtype, np.integer):
            ranges[name] = [int(values.min()), int(values.max())]
    return ranges


def _check_states(step, io) -> None:
    """Each state the step feeds back must come out with the shape it went in with."""
    infos = ge.value_infos(ge.infer(step))
    for name in io.states:
        before, after = ge.static_shape(infos[name]), ge.static_shape(infos[io.outputs[f"next:{name}"]])
        if before != after:
            raise SplitRefused(f"loop state '{name}' changes shape from {list(before or [])} to {list(after or [])} per step")


def _scalar(name: str, consts: dict):
    """(constant value, None) or (None, tensor name) for a Loop's optional trip count / start condition."""
    if not name:
        return None, None
    if name in consts:
        return np.ravel(consts[name])[0].item(), None
    return None, name


def _roots(body, writes, tables, used: set[str], start_const):
    states = {s.input: s for s in body.states}
    by_result = {w.result: w for w in writes}
    roots, counter_finals = [], {}
    for st in body.states:
        if st.final not in used:
            if st.role == "last":
                st.role = "dropped"
            continue
        w = by_result.get(resolve(body.model.graph, st.output))
        if st.role == "append":
            rank = len(ge.static_shape(ge.value_infos(body.model)[st.output]) or ()) or None
            roots.append(Root("append", st.final, st.output, st.init, st.axis % rank if rank else st.axis, rank=rank))
        elif w is not None:
            if w.state != st.input and start_const is not True:
                raise SplitRefused(f"loop output '{st.final}' aliases the buffer '{w.state}' and the loop may run "
                                   "no step (its start condition is not constant true)")
            buffer = states[w.state]
            if st.role == "last":
                st.role = "alias"
            roots.append(Root("write", st.final, w.row, buffer.init, w.axis, w.offset, len(buffer.shape)))
        elif st.input in tables.counters:
            counter_finals[st.final] = st.input
        else:
            roots.append(Root("last", st.final, st.output, st.init))
    for source, final in body.scans:
        if final in used:
            rank = len(ge.static_shape(ge.value_infos(body.model)[source]) or ()) + 1
            roots.append(Root("scan", final, source, None, 0, 0, rank))
    return roots, counter_finals


def _loop_free_outputs(model, loop) -> list[str]:
    tainted = set(loop.output)
    for node in model.graph.node:
        if any(i in tainted for i in ge.node_reads(node)):
            tainted.update(node.output)
    return [o.name for o in model.graph.output if o.name not in tainted]


def spec(model, body, io, chains, enc: dict[str, str], capacity: int, k: int, start_const, step, loop_free) -> dict:
    """The host-loop spec: plain JSON naming encoder outputs and step inputs/outputs.

    format, capacity (most steps), steps_per_call (K), inputs / outputs (the original model's, in order),
    start (true | false | {"encoder": name}: the loop's initial condition), trip_count (null |
    {"encoder": name}), end (what stops the loop),
    step.index ({"input", "shape", "dtype"} or null: fed the step number k of the call's first step),
    step.feeds ([{"input", "encoder"}]: loop-invariant tensors fed every call), step.states ([{"input",
    "output", "init"}]: fed back; init from the encoder), step.cond (K outputs: false = the loop ends after
    that step),
    results (one per model output): {"mode": "encoder", "init"} | {"mode": "last", "init", "values": K
    outputs} | {"mode": "write" | "append", "init" (null: no rows before the first step), "rows": K outputs,
    "axis", "offset" (write: step k writes row k + offset), "count" (null: all rows, else keep
    `scale * steps + offset` rows, Slice semantics), "row_shape", "dtype"},
    roles: every loop state with its role (recurrent, write, append, alias, last, dropped) and step shape;
    value_ranges: {"step": {input: [lo, hi]}} for the integer inputs the host feeds (the int32 pass reads it)."""
    infos = ge.value_infos(step)
    results = {o: {"output": o, "mode": "encoder", "init": enc[f"output:{o}"]} for o in loop_free}
    for chain in chains:
        for o, info in chain.outputs.items():
            if chain.root.kind == "last":
                results[o] = {"output": o, "mode": "last", "init": enc.get(f"init:{o}"), "values": io.copies[f"last:{o}"]}
                continue
            rows = io.copies[f"row:{o}"]
            row = infos[rows[0]]
            results[o] = {
                "output": o, "mode": "write" if chain.root.kind == "write" else "append",
                "init": enc.get(f"init:{o}"), "rows": rows, "axis": info.axis,
                "offset": chain.root.offset,
                "count": None if info.count is None else {"scale": info.count[0], "offset": info.count[1]},
                "row_shape": list(ge.static_shape(row)),
                "dtype": str(np.dtype(_np_dtype(row.type.tensor_type.elem_type))),
            }
    index = None
    if io.index:
        vi = next(i for i in step.graph.input if i.name == io.index)
        index = {"input": io.index, "shape": list(ge.static_shape(vi)), "dtype": "int64"}
    return {
        "format": FORMAT,
        "capacity": capacity,
        "steps_per_call": k,
        "inputs": [i.name for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}],
        "outputs": [o.name for o in model.graph.output],
        "start": {"encoder": enc["start"]} if "start" in enc else bool(start_const if start_const is not None else True),
        "trip_count": {"encoder": enc["trip"]} if "trip" in enc else None,
        "end": {"condition": body.cond,
                "stops_when": "a step's cond output is false, or after `capacity` steps (or the trip count)"},
        "step": {
            "index": index,
            "feeds": [{"input": f, "encoder": enc[f"feed:{f}"]} for f in io.feeds],
            "states": [{"input": s, "output": io.outputs[f"next:{s}"], "init": enc[f"state:{s}"]} for s in io.states],
            "cond": io.copies["cond"],
        },
        "results": [results[o.name] for o in model.graph.output],
        "roles": [{"state": s.input, "role": s.role, "shape": list(s.shape or ())} for s in body.states],
    }


def _np_dtype(elem_type: int):
    from onnx import helper

    return helper.tensor_dtype_to_np_dtype(elem_type)


def early_exit(loop_spec: dict) -> dict:
    """What verify needs to compare only produced rows: per row output, its axis and how many rows the
    steps wrote (`scale * steps + offset`, capped by the returned count)."""
    outputs = {}
    for r in loop_spec["results"]:
        if r["mode"] in ("write", "append"):
            outputs[r["output"]] = {"axis": r["axis"], "mode": r["mode"], "count": r["count"],
                                    "written": {"scale": 1, "offset": r["offset"]} if r["mode"] == "write" else None}
    return {"capacity": loop_spec["capacity"], "outputs": outputs}

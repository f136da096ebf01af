"""fp16 emulation analysis: where activations overflow the fp16 range, and which `keep_dtype` entries
make the model pass. Statistics come from the graphs themselves: every watched tensor gets an in-graph
max|x| (NaN when it holds NaN/Inf), so one run per sample costs a few hundred scalars of memory.

An overflow is attributed to the node where it starts: an fp16 node whose inputs (as it sees them) are
finite but whose output exceeds 65504, or an fp16 node that must round a finite fp32 input beyond 65504
(a kept node's output, a graph input, a weight). Nodes the Inf merely flows into are not named."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from converter.passes.emulate_fp16 import EmulatedNode, Emulation

FP16_MAX = 65504.0


@dataclass(frozen=True)
class Overflow:
    """A node where fp16 overflow starts."""

    node: str
    op_type: str
    tensor: str
    kind: str          # "output": the node's own result; "input": rounding its fp32 input
    value: float       # max |x| of the offending tensor (inf when it was already non-finite)
    reference_max: float
    samples: tuple[int, ...]

    def to_json(self) -> dict:
        return {"node": self.node, "op_type": self.op_type, "tensor": self.tensor, "kind": self.kind,
                "max_abs": self.value, "reference_max_abs": self.reference_max, "samples": list(self.samples)}


@dataclass(frozen=True)
class Iteration:
    """One round of suggest -> apply -> re-verify."""

    keep_dtype: tuple[str, ...]
    passed: bool
    overflow: tuple[str, ...]
    worst_cosine: float
    worst_max_abs: float

    def to_json(self) -> dict:
        return {"keep_dtype": list(self.keep_dtype), "passed": self.passed, "overflow_nodes": list(self.overflow),
                "worst_cosine": self.worst_cosine, "worst_max_abs": self.worst_max_abs}


@dataclass(frozen=True)
class EmulationResult:
    """What fp16 emulation found for the recipe as written, and the keep_dtype that fixes it (if any)."""

    mode: str
    approximate: bool
    kept: tuple[str, ...]
    overflow: tuple[Overflow, ...]
    suggestion: tuple[str, ...]
    passes_with_suggestion: bool | None
    iterations: tuple[Iteration, ...] = field(default=())
    stopped: str = ""

    def to_json(self) -> dict:
        from converter.verify.keep_dtype import cfg_text

        return {
            "mode": self.mode,
            "approximate": self.approximate,
            "kept_fp32": list(self.kept),
            "overflow_nodes": [o.to_json() for o in self.overflow],
            "keep_dtype_suggestion": {
                "entries": list(self.suggestion),
                "cfg": cfg_text(self.suggestion),
                "passes_with_suggestion": self.passes_with_suggestion,
            } if self.suggestion else None,
            "iterations": [i.to_json() for i in self.iterations],
            "stopped": self.stopped,
        }


def with_stats(model, tensors: list[str]):
    """`model` plus one scalar output `<t>__absmax` per tensor: max |t|, NaN when t holds NaN or Inf.
    Only scalar temporaries, placed right after each tensor's producer, so no tensor lives longer."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    zero = "__npuconv_zero"
    model.graph.initializer.append(numpy_helper.from_array(np.zeros((), np.float32), zero))
    watched = dict.fromkeys(tensors)

    def stat_nodes(t: str) -> list:
        hi, lo, neg, peak, total, nonfinite, out = (f"{t}__{k}" for k in ("max", "min", "negmin", "peak", "sum", "nan", "absmax"))
        model.graph.output.append(helper.make_tensor_value_info(out, onnx.TensorProto.FLOAT, []))
        # No axes: every opset reduces all dims. A sum is NaN/Inf exactly when t holds NaN/Inf (finite
        # activations cannot add up to 3.4e38); times 0 that is NaN, else 0.
        return [helper.make_node("ReduceMax", [t], [hi], keepdims=0), helper.make_node("ReduceMin", [t], [lo], keepdims=0),
                helper.make_node("Neg", [lo], [neg]), helper.make_node("Max", [hi, neg], [peak]),
                helper.make_node("ReduceSum", [t], [total], keepdims=0), helper.make_node("Mul", [total, zero], [nonfinite]),
                helper.make_node("Add", [peak, nonfinite], [out])]

    produced = {o for n in model.graph.node for o in n.output}
    nodes = [n for t in watched if t not in produced for n in stat_nodes(t)]
    for node in model.graph.node:
        nodes.append(node)
        nodes += [n for t in node.output if t in watched for n in stat_nodes(t)]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def run_stats(model, tensors: list[str], feeds: list[dict]) -> list[dict[str, float]]:
    """max |t| per watched tensor and sample (NaN: the tensor held NaN/Inf)."""
    from converter.runners.onnxruntime import OnnxRuntimeRunner

    names = list(dict.fromkeys(tensors))
    outs = [f"{t}__absmax" for t in names]
    with OnnxRuntimeRunner(with_stats(model, names).SerializeToString(), priority_order=True,
                           rewritten_by="the fp16 statistics rewrite (with_stats)") as runner:
        return [{t: float(v) for t, v in zip(names, runner.fetch(outs, feed).values())} for feed in feeds]


def _bad(value: float) -> bool:
    return not math.isfinite(value) or value > FP16_MAX


def find_overflow(emulation: Emulation, stats: list[dict[str, float]], ref_stats: list[dict[str, float]]) -> tuple[Overflow, ...]:
    """Nodes where overflow starts, over all samples (see the module docstring)."""
    found: dict[tuple[str, str], list] = {}
    for sample, (emu, ref) in enumerate(zip(stats, ref_stats)):
        for node in emulation.nodes:
            if not node.fp16:
                continue
            for seen, source in zip(node.inputs, node.sources):
                if seen != source and math.isfinite(emu.get(source, 0.0)) and emu.get(source, 0.0) > FP16_MAX:
                    _add(found, node, source, "input", emu[source], ref.get(source, math.nan), sample)
            if not all(math.isfinite(emu.get(s, 0.0)) for s in node.inputs):
                continue  # the Inf flowed in: not where it starts
            for raw, tensor in zip(node.raw, node.outputs):
                if _bad(emu.get(raw, 0.0)) and math.isfinite(ref.get(tensor, 0.0)):
                    _add(found, node, tensor, "output", emu[raw], ref.get(tensor, math.nan), sample)
    return tuple(Overflow(n.name, n.op_type, t, k, v, r, tuple(s)) for (_, t), (n, k, v, r, s) in found.items())


def _add(found: dict, node: EmulatedNode, tensor: str, kind: str, value: float, ref: float, sample: int) -> None:
    key = (node.name, tensor)
    if key not in found:
        found[key] = [node, kind, value if math.isfinite(value) else math.inf, ref, []]
    entry = found[key]
    entry[2] = max(entry[2], value if math.isfinite(value) else math.inf)
    entry[4].append(sample)


def keep_entries(overflow: tuple[Overflow, ...], emulation: Emulation, ref_stats: list[dict[str, float]]) -> list[str]:
    """keep_dtype entries that remove the overflow: each starting node, and the nodes that consume a
    tensor whose fp32 reference value is beyond fp16 (they must take it in fp32), transitively."""
    by_name = {n.name: n for n in emulation.nodes}
    consumers: dict[str, list[EmulatedNode]] = {}
    for n in emulation.nodes:
        for source in n.sources:
            consumers.setdefault(source, []).append(n)
    big = {t for stats in ref_stats for t, v in stats.items() if _bad(v)}
    chosen: list[EmulatedNode] = []
    todo = [by_name[o.node] for o in overflow]
    while todo:
        node = todo.pop(0)
        if node in chosen or not node.fp16:
            continue
        chosen.append(node)
        for tensor in node.outputs:
            if tensor in big:
                todo.extend(consumers.get(tensor, []))
    return [entry_for(n) for n in chosen]


def entry_for(node: EmulatedNode) -> str:
    """The keep_dtype entry naming a node: its name, else (an unnamed node) its op type."""
    return node.name if node.named else f"OpType::{node.op_type}"


def suggest_loop(evaluate: Callable[[tuple[str, ...]], tuple[Emulation, bool, list[dict], float, float]],
                 ref_stats: list[dict[str, float]], lossy: Callable[[tuple[str, ...]], str | None],
                 max_rounds: int = 6) -> tuple[tuple[Overflow, ...], list[Iteration], tuple[str, ...], bool, str]:
    """Suggest -> apply -> re-verify until the model passes or nothing more helps. `evaluate(extra)` runs
    the emulation with extra keep_dtype entries and returns (emulation, passed, stats, worst cosine, worst
    max_abs); `lossy(extra)` names the node that loses the most precision when there is no overflow.
    Returns (first round's overflow, rounds, suggested entries, whether they pass, why it stopped)."""
    extra: tuple[str, ...] = ()
    rounds: list[Iteration] = []
    first_overflow: tuple[Overflow, ...] = ()
    best: tuple[float, float] | None = None
    for round_index in range(max_rounds):
        emulation, passed, stats, cosine, max_abs = evaluate(extra)
        overflow = find_overflow(emulation, stats, ref_stats)
        if round_index == 0:
            first_overflow = overflow
        rounds.append(Iteration(extra, passed, tuple(o.node for o in overflow), cosine, max_abs))
        if passed:
            return first_overflow, rounds, extra, True, "passes" if extra else "passes as written"
        if best is not None and not overflow and (cosine, -max_abs) <= best:
            rounds.pop()
            extra = rounds[-1].keep_dtype
            return first_overflow, rounds, extra, False, "the last suggestion did not help; stopped"
        best = (cosine, -max_abs)
        new = [e for e in keep_entries(overflow, emulation, ref_stats) if e not in extra] if overflow else []
        if not new:
            node = lossy(extra)
            new = [node] if node and node not in extra else []
        if not new:
            return first_overflow, rounds, extra, False, "nothing more to keep in fp32"
        extra = extra + tuple(new)
    return first_overflow, rounds, extra, False, f"stopped after {max_rounds} rounds"

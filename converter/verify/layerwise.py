"""Layerwise comparison: every intermediate float tensor of the reference ONNX becomes a graph output,
the reference and the target graph (one with the same tensor names: another ONNX, the fp16 emulation)
run on the same feed, and tensors are compared in topological order until the first node whose output
breaks tolerance. Memory-aware: tensors are fetched in chunks of at most `budget_mb` per ONNX Runtime
run and tensors larger than `max_tensor_mb` are skipped (and listed). A tensor breaks the limits under the
comparator's rule with max_abs scaled by the tensor's magnitude, max(1, max|reference|): activations
are not normalised."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from converter.compare import Limits, OutputCheck, compare_arrays

_BYTES = {1: 4, 10: 2, 11: 8}  # FLOAT, FLOAT16, DOUBLE


@dataclass(frozen=True)
class LayerTensor:
    """An intermediate tensor: the node that writes it, its topological position and size."""

    index: int
    node: str
    op_type: str
    tensor: str
    nbytes: int | None


@dataclass(frozen=True)
class Divergence:
    """The first node whose output breaks its limits."""

    layer: LayerTensor
    check: OutputCheck
    inputs: tuple[str, ...]

    def to_json(self) -> dict:
        return {"node": self.layer.node, "op_type": self.layer.op_type, "output": self.layer.tensor,
                "index": self.layer.index, "inputs": list(self.inputs), **self.check.metrics.to_json(),
                "tolerance": self.check.limits.to_json(), "failures": list(self.check.failures)}


@dataclass(frozen=True)
class LayerwiseResult:
    """What the layerwise pass compared and where the target first diverged."""

    via: str
    compared: int
    skipped: tuple[str, ...]
    first: Divergence | None
    limits: Limits
    available: bool = True
    reason: str = ""

    def to_json(self) -> dict:
        return {"available": self.available, "via": self.via, "reason": self.reason, "compared": self.compared,
                "skipped": list(self.skipped), "tolerance": self.limits.to_json(),
                "first_divergent_node": self.first.to_json() if self.first else None}


def layer_tensors(model) -> list[LayerTensor]:
    """Float node outputs of `model` (shape-inferred) in topological order, with byte sizes when static."""
    import onnx

    model = onnx.shape_inference.infer_shapes(model)
    infos = {v.name: v for v in list(model.graph.value_info) + list(model.graph.output)}
    out = []
    for index, node in enumerate(model.graph.node):
        for tensor in node.output:
            info = infos.get(tensor)
            if not tensor or info is None or info.type.tensor_type.elem_type not in _BYTES:
                continue
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in info.type.tensor_type.shape.dim]
            nbytes = None if any(d < 0 for d in dims) else int(np.prod(dims, dtype=np.int64)) * _BYTES[info.type.tensor_type.elem_type]
            out.append(LayerTensor(index, node.name or f"{node.op_type}_{index}", node.op_type, tensor, nbytes))
    return out


def expose(model, names: list[str]) -> bytes:
    """`model` with `names` added as graph outputs (serialized)."""
    import onnx

    model = onnx.ModelProto.FromString(model.SerializeToString())
    present = {o.name for o in model.graph.output}
    model.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names if n not in present)
    return model.SerializeToString()


def chunks(tensors: list[LayerTensor], budget: int) -> list[list[LayerTensor]]:
    """Consecutive groups whose known sizes add up to at most `budget` bytes (unknown: one per group)."""
    groups: list[list[LayerTensor]] = []
    current: list[LayerTensor] = []
    size = 0
    for t in tensors:
        cost = t.nbytes if t.nbytes is not None else budget
        if current and size + cost > budget:
            groups.append(current)
            current, size = [], 0
        current.append(t)
        size += cost
    if current:
        groups.append(current)
    return groups


def judge(tensor: str, reference: np.ndarray, actual: np.ndarray, limits: Limits) -> OutputCheck:
    """An intermediate tensor against `limits` with max_abs scaled by max(1, max|reference|); non-finite
    values both sides hold at the same place (masks of -inf) are equal."""
    metrics = compare_arrays(reference, actual)
    return OutputCheck(tensor, 0, metrics, limits.scaled(max(1.0, metrics.reference_max_abs)), tensor)


def first_divergence(reference_model, target_model, feed: dict, limits: Limits, *, via: str,
                     budget_mb: float = 128.0, max_tensor_mb: float = 512.0,
                     provider: str = "CPUExecutionProvider", structural: bool = False,
                     target_rewritten_by: str | None = None) -> LayerwiseResult:
    """Compare every shared intermediate tensor of two ONNX models (ModelProto) on `feed` in the
    reference's topological order; stop at the first one that breaks `limits` (see judge). The
    reference runs on ONNX Runtime CPU, the target on `provider`. `structural`: compare a tensor only
    where both graphs produce it with the same op type from the same input names (another exporter's
    graph may reuse a name for a different value, e.g. a Conv output before and after BatchNorm
    folding). `target_rewritten_by` names the npuconv rewrite that produced the target graph, if any."""
    from converter.runners.onnxruntime import OnnxRuntimeRunner

    if structural:
        ref_nodes, tgt_nodes = _producers(reference_model), _producers(target_model)
        tensors = [t for t in layer_tensors(reference_model) if t.tensor in tgt_nodes and tgt_nodes[t.tensor] == ref_nodes[t.tensor]]
    else:
        target_names = {t for node in target_model.graph.node for t in node.output}
        tensors = [t for t in layer_tensors(reference_model) if t.tensor in target_names]
    limit = int(max_tensor_mb * 2**20)
    skipped = tuple(t.tensor for t in tensors if t.nbytes is not None and t.nbytes > limit)
    tensors = [t for t in tensors if t.tensor not in skipped]
    inputs_of = {o: tuple(i for i in n.input if i) for n in reference_model.graph.node for o in n.output if o}
    exposing = "layerwise (intermediate tensors exposed as outputs)"
    target_rewrite = f"{target_rewritten_by} and {exposing}" if target_rewritten_by else exposing
    compared = 0
    # One pair of sessions per chunk, exposing only that chunk: ONNX Runtime materialises every graph
    # output on every run, whether fetched or not.
    for group in chunks(tensors, int(budget_mb * 2**20)):
        wanted = [t.tensor for t in group]
        with OnnxRuntimeRunner(expose(reference_model, wanted), priority_order=True, rewritten_by=exposing) as ref:
            ref_values = ref.fetch(wanted, feed)
        with OnnxRuntimeRunner(expose(target_model, wanted), provider, priority_order=True,
                               rewritten_by=target_rewrite) as tgt:
            tgt_values = tgt.fetch(wanted, feed)
        for t in group:
            check = judge(t.tensor, ref_values.pop(t.tensor), tgt_values.pop(t.tensor), limits)
            compared += 1
            if not check.passed:
                return LayerwiseResult(via, compared, skipped, Divergence(t, check, inputs_of.get(t.tensor, ())), limits)
        del ref_values, tgt_values
    return LayerwiseResult(via, compared, skipped, None, limits)


def _producers(model) -> dict[str, tuple]:
    """tensor -> (op type, input names) of the node writing it."""
    return {t: (n.op_type, tuple(n.input)) for n in model.graph.node for t in n.output if t}


"""Layerwise comparison: every intermediate float tensor of the reference ONNX becomes a graph output,
the reference and the target graph (one with the same tensor names: another ONNX, the fp16 emulation)
run on the same feed, and tensors are compared in topological order until the first node whose output
breaks tolerance. Memory-aware: tensors are fetched in chunks of at most `budget_mb` per ONNX Runtime
run and tensors larger than `max_tensor_mb` are skipped (and listed)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from converter.verify.metrics import OutputMetrics, compare_arrays
from converter.verify.tolerance import Tolerance

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
    """The first node whose output breaks tolerance."""

    layer: LayerTensor
    metrics: OutputMetrics
    scale: float
    inputs: tuple[str, ...]

    def to_json(self) -> dict:
        return {"node": self.layer.node, "op_type": self.layer.op_type, "output": self.layer.tensor,
                "index": self.layer.index, "inputs": list(self.inputs), "reference_max_abs": self.scale,
                **self.metrics.to_json()}


@dataclass(frozen=True)
class LayerwiseResult:
    """What the layerwise pass compared and where the target first diverged."""

    via: str
    compared: int
    skipped: tuple[str, ...]
    first: Divergence | None
    tolerance: Tolerance
    available: bool = True
    reason: str = ""

    def to_json(self) -> dict:
        return {"available": self.available, "via": self.via, "reason": self.reason, "compared": self.compared,
                "skipped": list(self.skipped), "tolerance": self.tolerance.to_json(),
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


def breaks(metrics: OutputMetrics, reference: np.ndarray, tolerance: Tolerance) -> tuple[bool, float]:
    """Whether an intermediate tensor breaks tolerance: max_abs is scaled by the tensor's magnitude
    (activations are not normalised), cosine is used as is. Returns (breaks, magnitude)."""
    finite = np.abs(reference[np.isfinite(reference)]) if reference.size else np.zeros(1)
    scale = float(finite.max()) if finite.size else 0.0
    if not metrics.shape_match or metrics.nan or metrics.inf:
        return True, scale
    return (metrics.max_abs > tolerance.max_abs * max(1.0, scale) or metrics.cosine < tolerance.cosine), scale


def first_divergence(reference_model, target_model, feed: dict, tolerance: Tolerance, *, via: str,
                     budget_mb: float = 128.0, max_tensor_mb: float = 512.0,
                     provider: str = "CPUExecutionProvider", structural: bool = False) -> LayerwiseResult:
    """Compare every shared intermediate tensor of two ONNX models (ModelProto) on `feed` in the
    reference's topological order; stop at the first one that breaks `tolerance`. The reference runs on
    ONNX Runtime CPU, the target on `provider`. `structural`: compare a tensor only where both graphs
    produce it with the same op type from the same input names (another exporter's graph may reuse a
    name for a different value, e.g. a Conv output before and after BatchNorm folding)."""
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
    inputs_of = {n.output[0]: tuple(i for i in n.input if i) for n in reference_model.graph.node if n.output}
    compared = 0
    # One pair of sessions per chunk, exposing only that chunk: ONNX Runtime materialises every graph
    # output on every run, whether fetched or not.
    for group in chunks(tensors, int(budget_mb * 2**20)):
        wanted = [t.tensor for t in group]
        with OnnxRuntimeRunner(expose(reference_model, wanted), priority_order=True) as ref:
            ref_values = ref.fetch(wanted, feed)
        with OnnxRuntimeRunner(expose(target_model, wanted), provider, priority_order=True) as tgt:
            tgt_values = tgt.fetch(wanted, feed)
        for t in group:
            r, a = ref_values.pop(t.tensor), tgt_values.pop(t.tensor)
            metrics = _compare_finite(r, a)
            compared += 1
            bad, scale = breaks(metrics, r, tolerance)
            if bad:
                first = Divergence(t, metrics, scale, inputs_of.get(t.tensor, ()))
                return LayerwiseResult(via, compared, skipped, first, tolerance)
        del ref_values, tgt_values
    return LayerwiseResult(via, compared, skipped, None, tolerance)


def _producers(model) -> dict[str, tuple]:
    """tensor -> (op type, input names) of the node writing it."""
    return {t: (n.op_type, tuple(n.input)) for n in model.graph.node for t in n.output if t}


def _compare_finite(reference: np.ndarray, actual: np.ndarray) -> OutputMetrics:
    """compare_arrays, except that non-finite values the reference has too (masks of -inf) are equal."""
    if reference.dtype.kind == "f" and reference.shape == actual.shape and not np.isfinite(reference).all():
        same = (reference == actual) | (np.isnan(reference) & np.isnan(actual))
        if same[~np.isfinite(reference)].all():
            mask = np.isfinite(reference)
            return compare_arrays(reference[mask], actual[mask])
    return compare_arrays(reference, actual)


"""fp16 emulation on the CPU: the reference ONNX rewritten so that every op atc would run in fp16 sees its
float inputs rounded through float16 and rounds its own output the same way (Cast fp32->fp16->fp32),
while ops kept in fp32 (`om.keep_dtype`, a mixed mode's black list) stay untouched. ONNX Runtime then
runs the rewritten graph. Tensor names of the original graph are kept, so layerwise comparison works.

Modes: `fp16` (atc `precision_mode_v2=fp16`, its default) and `mixed_float16` (approximate: CANN's
built-in mixed lists are not available here; only the recipe's lists are applied)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from converter.errors import InputError
from converter.runners.onnxruntime import OnnxRuntimeRunner
from converter.verify.keep_dtype import KeepRules

MODES = {"fp16": "fp16", "force_fp16": "fp16", "mixed_float16": "mixed_float16",
         "allow_mix_precision": "mixed_float16", "allow_mix_precision_fp16": "mixed_float16"}
RAW_SUFFIX = "__fp32raw"   # a fp16 node's output before rounding
SEEN_SUFFIX = "__fp16in"   # a tensor rounded for the fp16 nodes that consume it


@dataclass(frozen=True)
class EmulatedNode:
    """One node of the emulated graph: whether it runs in fp16, what it reads, what it writes."""

    index: int
    name: str
    op_type: str
    fp16: bool
    inputs: tuple[str, ...]       # float inputs as the node sees them (rounded ones for fp16 nodes)
    sources: tuple[str, ...]      # the original names of those inputs
    outputs: tuple[str, ...]      # float outputs (original names)
    raw: tuple[str, ...] = ()     # fp16 nodes: the outputs before rounding
    named: bool = True            # False: the ONNX node has no name (`name` is made up)


@dataclass(frozen=True)
class Emulation:
    """The rewritten model and the map of its nodes."""

    model_bytes: bytes
    nodes: tuple[EmulatedNode, ...]
    kept: tuple[str, ...] = field(default=())


def normalise_mode(mode: str) -> str:
    """The emulation mode a target names (`emulate:fp16`), or InputError."""
    if mode not in MODES:
        raise InputError(f"unknown emulation mode {mode!r}", hint=f"use one of: {', '.join(sorted(MODES))}")
    return MODES[mode]


def float_tensors(model) -> set[str]:
    """Names of every float32 tensor of the (shape-inferred) main graph."""
    from onnx import TensorProto

    graph = model.graph
    infos = list(graph.input) + list(graph.value_info) + list(graph.output)
    names = {v.name for v in infos if v.type.tensor_type.elem_type == TensorProto.FLOAT}
    names |= {t.name for t in graph.initializer if t.data_type == TensorProto.FLOAT}
    for node in graph.node:
        if node.op_type == "Constant":
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None and value.data_type == TensorProto.FLOAT:
                names.add(node.output[0])
    return names


def _node_name(node, index: int) -> str:
    return node.name or f"{node.op_type}_{index}"


def emulate_fp16(model, rules: KeepRules) -> Emulation:
    """Rewrite `model` (an onnx.ModelProto with static shapes) for fp16 emulation under `rules`."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.shape_inference.infer_shapes(model)
    floats = float_tensors(model)
    graph = model.graph
    produced_fp16: set[str] = set()
    rounded: dict[str, str] = {}
    new_nodes, table, kept = [], [], []

    def cast_pair(src: str, dst: str, tag: str) -> None:
        half = f"{dst}__fp16"
        new_nodes.append(helper.make_node("Cast", [src], [half], name=f"{tag}/to_fp16", to=TensorProto.FLOAT16))
        new_nodes.append(helper.make_node("Cast", [half], [dst], name=f"{tag}/to_fp32", to=TensorProto.FLOAT))

    for index, node in enumerate(graph.node):
        name = _node_name(node, index)
        float_in = [t for t in node.input if t and t in floats]
        float_out = [t for t in node.output if t and t in floats]
        fp16 = bool(float_in or float_out) and not rules.keeps(node.name, node.op_type)
        if not fp16:
            if float_in or float_out:
                kept.append(name)
            new_nodes.append(node)
            table.append(EmulatedNode(index, name, node.op_type, False, tuple(float_in), tuple(float_in), tuple(float_out),
                                      named=bool(node.name)))
            continue
        seen = []
        for pos, tensor in enumerate(node.input):
            if tensor in floats and tensor not in produced_fp16:
                if tensor not in rounded:
                    rounded[tensor] = tensor + SEEN_SUFFIX
                    cast_pair(tensor, rounded[tensor], f"{tensor}{SEEN_SUFFIX}")
                node.input[pos] = rounded[tensor]
            if tensor in floats:
                seen.append(node.input[pos])
        raw = []
        for pos, tensor in enumerate(node.output):
            if tensor in floats:
                node.output[pos] = tensor + RAW_SUFFIX
                raw.append(node.output[pos])
        new_nodes.append(node)
        for tensor, raw_name in zip(float_out, raw):
            cast_pair(raw_name, tensor, f"{name}/round")
            produced_fp16.add(tensor)
        table.append(EmulatedNode(index, name, node.op_type, True, tuple(seen), tuple(float_in), tuple(float_out),
                                  tuple(raw), named=bool(node.name)))
    del graph.node[:]
    graph.node.extend(new_nodes)
    return Emulation(model.SerializeToString(), tuple(table), tuple(kept))


class EmulatedRunner(OnnxRuntimeRunner):
    """ONNX Runtime CPU on the fp16-emulated rewrite of an ONNX file."""

    def __init__(self, onnx_path: Path, mode: str, rules: KeepRules, threads: int | None = None) -> None:
        import onnx

        self.mode = normalise_mode(mode)
        self.rules = rules
        self.emulation = emulate_fp16(onnx.load(str(onnx_path)), rules)
        super().__init__(self.emulation.model_bytes, threads=threads)
        self.name = f"emulate:{self.mode}"

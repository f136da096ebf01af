"""fp16 emulation as a rewrite: every op atc would run in fp16 sees its float inputs (weights included)
rounded through float16 and rounds its own outputs the same way (Cast fp32->fp16->fp32); ops kept in
fp32 (`om.keep_dtype`, a mixed mode's black list) stay untouched. Tensor names of the original graph
are kept, so the rewritten graph can be compared with the original tensor by tensor.

Modes: `fp16` (atc `precision_mode_v2=fp16`, its default) and `mixed_float16` (approximate: CANN's
built-in mixed lists are not available here; only the recipe's lists are applied)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from converter.errors import InputError
from converter.passes.base import ModelSet, Pass, PassResult
from converter.passes.keep_dtype import KeepRules, mixlist_black_types, parse_entries
from converter.passes.registry import register

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
    """The map of the rewritten graph's nodes, and the nodes kept in fp32."""

    nodes: tuple[EmulatedNode, ...]
    kept: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"fp16_nodes": sum(n.fp16 for n in self.nodes), "kept_fp32": list(self.kept)}


def normalise_mode(mode: str) -> str:
    """The emulation mode a target names (`emulate:fp16`), or InputError."""
    if mode not in MODES:
        raise InputError(f"unknown emulation mode {mode!r}", hint=f"use one of: {', '.join(sorted(MODES))}")
    return MODES[mode]


class EmulateFp16Config(BaseModel):
    """`mode` and the keep rules: `keep` holds `keep_dtype` entries (node names, `OpType::X`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["fp16", "mixed_float16"] = "fp16"
    keep: tuple[str, ...] = ()

    def rules(self) -> KeepRules:
        return parse_entries(self.keep)


def config_for(om: Any, mode: str) -> EmulateFp16Config:
    """The config that emulates an OM build (`om` is an OmConfig or None) under `mode`: its keep_dtype
    entries, plus in mixed modes the op types its modify_mixlist adds to the black list."""
    mode = normalise_mode(mode)
    keep = [str(e) for e in (getattr(om, "keep_dtype", None) or [])]
    if mode == "mixed_float16":
        keep += [f"OpType::{t}" for t in sorted(mixlist_black_types(getattr(om, "modify_mixlist", None)))]
    return EmulateFp16Config(mode=mode, keep=tuple(keep))


@register
class EmulateFp16(Pass):
    """Round what atc would compute in fp16 (see the module docstring). The card's `emulation` is the
    Emulation node map (which nodes run in fp16, their raw and rounded tensors)."""

    name = "emulate_fp16"
    Config = EmulateFp16Config

    def configure(self, section: Any) -> EmulateFp16Config:
        """From an om section: the mode its precision implies (fp16 when it names none)."""
        mode = getattr(section, "precision_mode_v2", None) or getattr(section, "precision_mode", None) or "fp16"
        return config_for(section, mode if mode in MODES else "fp16")

    def run(self, models: ModelSet, config: EmulateFp16Config) -> PassResult:
        model, emulation = emulate(models.model, config.rules())
        fp16 = sum(n.fp16 for n in emulation.nodes)
        return PassResult(ModelSet.single(model),
                          notes=(f"{config.mode}: {fp16} node(s) rounded through float16, {len(emulation.kept)} kept fp32",),
                          card={"emulation": emulation})


class _Fresh:
    """Names not yet used in one namespace of the graph (node names, or tensor names)."""

    def __init__(self, taken) -> None:
        self.taken = set(taken)

    def __call__(self, base: str) -> str:
        name, i = base, 0
        while name in self.taken:
            i += 1
            name = f"{base}_{i}"
        self.taken.add(name)
        return name


def emulate(model, rules: KeepRules):
    """(rewritten model, Emulation) for an onnx.ModelProto with static shapes under `rules`. Every
    added node and tensor gets a name unused in the graph (ops such as Split, LSTM, GRU have several
    float outputs, each rounded by its own pair of Casts)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.shape_inference.infer_shapes(model)
    floats = float_tensors(model)
    graph = model.graph
    node_names = _Fresh(n.name for n in graph.node)
    tensor_names = _Fresh([*(v.name for v in (*graph.input, *graph.output, *graph.value_info)),
                           *(t.name for t in graph.initializer), *(o for n in graph.node for o in n.output)])
    produced_fp16: set[str] = set()
    rounded: dict[str, str] = {}
    new_nodes, table, kept = [], [], []

    def cast_pair(src: str, dst: str, tag: str) -> None:
        half = tensor_names(f"{dst}__fp16")
        new_nodes.append(helper.make_node("Cast", [src], [half], name=node_names(f"{tag}/to_fp16"), to=TensorProto.FLOAT16))
        new_nodes.append(helper.make_node("Cast", [half], [dst], name=node_names(f"{tag}/to_fp32"), to=TensorProto.FLOAT))

    for index, node in enumerate(graph.node):
        name = node.name or f"{node.op_type}_{index}"
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
                    rounded[tensor] = tensor_names(tensor + SEEN_SUFFIX)
                    cast_pair(tensor, rounded[tensor], rounded[tensor])
                node.input[pos] = rounded[tensor]
            if tensor in floats:
                seen.append(node.input[pos])
        raw = []
        for pos, tensor in enumerate(node.output):
            if tensor in floats:
                node.output[pos] = tensor_names(tensor + RAW_SUFFIX)
                raw.append(node.output[pos])
        new_nodes.append(node)
        for tensor, raw_name in zip(float_out, raw):
            cast_pair(raw_name, tensor, f"{name}/round:{tensor}")
            produced_fp16.add(tensor)
        table.append(EmulatedNode(index, name, node.op_type, True, tuple(seen), tuple(float_in), tuple(float_out),
                                  tuple(raw), named=bool(node.name)))
    del graph.node[:]
    graph.node.extend(new_nodes)
    return model, Emulation(tuple(table), tuple(kept))


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

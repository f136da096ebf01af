"""`int32`: int64 computations CANN wants in int32, rewritten where the values provably fit.

AI Core has few int64 kernels (atc moves int64 arithmetic to AI CPU) and CANN documents ONNX OneHot with
int32 indices/depth. This pass, in every graph (Loop bodies included):
- runs int64 arithmetic (Add, Sub, Mul, Div, Mod, Neg, Abs, Max, Min, ReduceMax/Min) in int32 when the
  bounds of every operand and of the result lie in int32 (`value_ranges`): exact, since int32 arithmetic
  equals int64 arithmetic on such values; data movement between two converted nodes (Reshape, Squeeze,
  Gather, Where, ...) is carried along;
- feeds OneHot indices/depth, Gather/ScatterElements indices, comparisons and Casts int32 values where
  they have them (a `Cast(int32 -> int64)` in front is skipped);
- keeps every graph input and output as it was: a value still needed as int64 is cast back.
Bounds come from the graph (constants, ArgMax, shapes, casts from narrower types, a Loop's constant trip
count) and from `ModelSet.loop["value_ranges"][role][input] = [lo, hi]`, which a host loop can vouch for
(its step counter never exceeds the capacity)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto

from converter.passes import graphs as g
from converter.passes.base import ModelSet, Pass, PassResult, per_graph
from converter.passes.registry import register
from converter.passes.value_ranges import Ranges, fits_int32

INT64 = TensorProto.INT64
ARITHMETIC = frozenset({"Add", "Sub", "Mul", "Div", "Mod", "Neg", "Abs", "Max", "Min", "ReduceMax", "ReduceMin"})
# data input positions of data-movement ops (None: all inputs)
MOVES = {"Identity": (0,), "Reshape": (0,), "Squeeze": (0,), "Unsqueeze": (0,), "Flatten": (0,), "Transpose": (0,),
         "Expand": (0,), "Tile": (0,), "Slice": (0,), "Gather": (0,), "Concat": None, "Where": (1, 2), "Range": None}
COMPARE = frozenset({"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"})
# inputs that accept int32 whatever the other inputs are
INDEX_SINKS = {"OneHot": (0, 1), "Gather": (1,), "GatherElements": (1,), "ScatterElements": (1,), "Cast": (0,)}


def _data_positions(node) -> list[int]:
    if node.op_type in ARITHMETIC:
        return [i for i, n in enumerate(node.input) if n][:1 if node.op_type.startswith("Reduce") else None]
    spec = MOVES[node.op_type]
    return [i for i in (range(len(node.input)) if spec is None else spec) if i < len(node.input) and node.input[i]]


class _GraphRewrite:
    def __init__(self, graph, where, scope: g.Scope, ranges: Ranges, types: g.Types, names: g.Names) -> None:
        self.graph, self.where, self.scope, self.ranges, self.types, self.names = graph, where, scope, ranges, types, names
        self.notes: list[str] = []

    def _int64(self, name: str) -> bool:
        return bool(name) and self.types.dtype(name) == INT64

    def _castable(self, name: str) -> bool:
        """An int64 value that can be had as int32 exactly."""
        return fits_int32(self.ranges.of(name))

    def _free(self, name: str) -> str | None:
        """The int32 source of `name = Cast(int32 source -> int64)`, if that is how it was made."""
        node = self.producer.get(name)
        if node is not None and node.op_type == "Cast" and self.types.dtype(node.input[0]) == TensorProto.INT32:
            return node.input[0]
        return None

    def plan(self) -> tuple[set[int], dict[int, list[int]]]:
        """(ids of nodes to run in int32, {id of a consumer: input positions it takes as int32})."""
        self.producer = {o: n for n in self.graph.node for o in n.output if o}
        convert: set[int] = set()
        is32 = set()  # values that will exist as int32
        for node in self.graph.node:
            if node.domain not in ("", "ai.onnx") or not node.output or not self._int64(node.output[0]):
                if node.op_type == "Cast" and node.output and self._free(node.output[0]):
                    is32.add(node.output[0])
                continue
            if self.scope.value(node.output[0]) is not None:
                continue  # computed before the model runs: nothing to gain
            data = [node.input[i] for i in _data_positions(node)] if node.op_type in ARITHMETIC | set(MOVES) else None
            if data is None or not all(self._castable(o) for o in node.output if o):
                continue
            if node.op_type in ARITHMETIC and all(self._castable(d) for d in data if self._int64(d)):
                convert.add(id(node))
                is32.update(o for o in node.output if o)
                is32.update(d for d in data if self._int64(d))  # cast to int32 for this node anyway
            elif node.op_type in MOVES and any(d in is32 for d in data) and all(
                    d in is32 or self.scope.value(d) is not None for d in data if self._int64(d)):
                convert.add(id(node))
                is32.update(o for o in node.output if o)
        sinks: dict[int, list[int]] = {}
        for node in self.graph.node:
            if id(node) in convert or node.domain not in ("", "ai.onnx"):
                continue
            if node.op_type in INDEX_SINKS:
                take = [p for p in INDEX_SINKS[node.op_type] if p < len(node.input) and self._int64(node.input[p])
                        and (node.input[p] in is32 or (node.op_type == "OneHot" and self._castable(node.input[p])))]
            elif node.op_type in COMPARE and any(i in is32 for i in node.input):
                both = all(i in is32 or self._castable(i) for i in node.input)
                take = [p for p, i in enumerate(node.input) if self._int64(i)] if both else []
            else:
                take = []
            if take:
                sinks[id(node)] = take
        # data movement that feeds nothing converted is not worth its casts
        readers: dict[str, list] = {}
        for node in self.graph.node:
            for p, name in enumerate(node.input):
                readers.setdefault(name, []).append((node, p))
        for node in reversed(list(self.graph.node)):
            if id(node) in convert and node.op_type in MOVES and not any(
                    id(r) in convert or p in sinks.get(id(r), ()) for o in node.output for r, p in readers.get(o, ())):
                convert.discard(id(node))
        return convert, sinks

    def rewrite(self) -> bool:
        convert, sinks = self.plan()
        if not convert and not sinks:
            return False
        needed64 = {o.name for o in self.graph.output}
        for node in self.graph.node:
            for p, name in enumerate(node.input):
                if id(node) not in convert and p not in sinks.get(id(node), ()):
                    needed64.add(name)
            if g.subgraphs(node):
                needed64 |= g.references(node)
        as32: dict[str, str] = {}
        out = []

        def int32_of(name: str) -> str:
            if name in as32:
                return as32[name]
            value = self.scope.value(name)
            fresh = self.names.fresh(f"{name}_i32")
            if value is not None:
                out.append(g.const_node(fresh, value.astype(np.int32)))
            elif self._free(name):
                fresh = self._free(name)
            else:
                out.append(g.cast_node(name, fresh, TensorProto.INT32))
            as32[name] = fresh
            return fresh

        for node in self.graph.node:
            if id(node) in convert:
                where = g.located(node, self.where)  # before the outputs are renamed
                for p in _data_positions(node):
                    if self._int64(node.input[p]):
                        node.input[p] = int32_of(node.input[p])
                originals = list(node.output)
                for i, name in enumerate(originals):
                    if name:
                        node.output[i] = as32[name] = self.names.fresh(f"{name}_i32")
                out.append(node)
                out += [g.cast_node(as32[o], o, INT64) for o in originals if o in needed64]
                if node.op_type in ARITHMETIC:
                    lo, hi = self.ranges.of(originals[0])
                    self.notes.append(f"{where}: int64 -> int32 (values in [{int(lo)}, {int(hi)}])")
            elif id(node) in sinks:
                taken = [node.input[p] for p in sinks[id(node)]]
                for p in sinks[id(node)]:
                    node.input[p] = int32_of(node.input[p])
                if node.op_type != "Cast":
                    self.notes.append(f"{g.located(node, self.where)}: takes {', '.join(taken)} as int32")
                out.append(node)
            else:
                out.append(node)
        used = {o.name for o in self.graph.output} | {r for n in out for r in g.references(n)}
        g.replace_nodes(self.graph, [n for n in out if n.op_type != "Cast" or n.output[0] in used
                                     or not self._free(n.output[0])])
        return True


def narrow(model: onnx.ModelProto, given: dict | None = None) -> tuple[onnx.ModelProto, list[str]]:
    """`model` with int64 computations in int32 where provably exact, and one note per rewritten node (the
    model itself when nothing applies). `given`: {top-level input: (lo, hi)} bounds vouched for."""
    if not any(vt == INT64 for vt in _dtypes(model)):
        return model, []
    out = g.copy_model(model)
    types, names, opset = g.Types(model), g.Names(out), g.opset_of(model)
    notes: list[str] = []
    changed = False

    def visit(graph, where, outer_scope, outer_ranges, bounds):
        nonlocal changed
        scope = g.Scope(graph, opset, outer_scope, types)
        ranges = Ranges(graph, scope, types, bounds, outer_ranges)
        iteration = {}  # a Loop's iteration number lies in [0, trip count - 1] when that is constant
        for node in graph.node:
            if node.op_type == "Loop" and node.input[0]:
                trips = scope.value(node.input[0])
                if trips is not None and trips.size == 1:
                    iteration[g.label(node)] = (0, max(int(trips.ravel()[0]) - 1, 0))
        rewrite = _GraphRewrite(graph, where, scope, ranges, types, names)
        changed |= rewrite.rewrite()
        notes.extend(rewrite.notes)
        for node in graph.node:  # the rewritten list: protobuf copied the nodes
            for attr, sub in g.subgraphs(node):
                inner = {sub.input[0].name: iteration[g.label(node)]} if g.label(node) in iteration else {}
                visit(sub, f"{where} / {g.label(node)} {attr}" if where else f"{g.label(node)} {attr}", scope, ranges, inner)

    visit(out.graph, "", None, None, {k: tuple(v) for k, v in (given or {}).items()})
    return (out if changed else model), notes


def _dtypes(model):
    for graph, _ in g.walk(model.graph):
        for vi in (*graph.input, *graph.output, *graph.value_info):
            yield vi.type.tensor_type.elem_type
        for init in graph.initializer:
            yield init.data_type
        for node in graph.node:
            if node.op_type in ("ArgMax", "ArgMin", "Shape", "Size", "Cast", "Constant", "NonZero", "OneHot"):
                yield INT64


@register
class Int32(Pass):
    name = "int32"

    def run(self, models: ModelSet, config) -> PassResult:
        bounds = (models.loop or {}).get("value_ranges", {})
        return per_graph(models, lambda role, m: narrow(m, bounds.get(role)))

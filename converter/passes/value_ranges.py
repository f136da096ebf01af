"""Sound bounds on the values of integer (and small float) tensors, for the `int32` pass: an interval
[lo, hi] that every element provably lies in, or None when nothing is known.

Sources: constants; graph inputs whose range someone vouches for (a host loop's counter); ArgMax/ArgMin
(an index along a known axis); Shape/Size of known dims; Casts from narrower types; a Loop's iteration
number under a constant trip count. Interval arithmetic carries the bounds through elementwise and
data-movement ops; float bounds are widened by one before a cast back to an integer (rounding)."""

from __future__ import annotations

import math

import onnx
from onnx import TensorProto

from converter.passes import graphs as g

Interval = tuple[float, float]
INT32 = (-(2 ** 31), 2 ** 31 - 1)
_TYPE_RANGE = {TensorProto.BOOL: (0, 1), TensorProto.INT8: (-128, 127), TensorProto.UINT8: (0, 255),
               TensorProto.INT16: (-(2 ** 15), 2 ** 15 - 1), TensorProto.UINT16: (0, 2 ** 16 - 1), TensorProto.INT32: INT32}
_FLOATS = {TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16}
# data input positions of ops whose output values are some of their input values
_MOVES = {"Identity": (0,), "Reshape": (0,), "Squeeze": (0,), "Unsqueeze": (0,), "Flatten": (0,), "Transpose": (0,),
          "Expand": (0,), "Tile": (0,), "Slice": (0,), "Gather": (0,), "GatherElements": (0,), "GatherND": (0,),
          "Split": (0,), "ReduceMax": (0,), "ReduceMin": (0,), "Where": (1, 2), "Max": None, "Min": None,
          "Concat": None, "Range": (0, 1)}


def fits_int32(interval: Interval | None) -> bool:
    return interval is not None and INT32[0] <= interval[0] and interval[1] <= INT32[1]


def _hull(intervals) -> Interval | None:
    intervals = list(intervals)
    if not intervals or any(i is None for i in intervals):
        return None
    return min(i[0] for i in intervals), max(i[1] for i in intervals)


class Ranges:
    """Value bounds inside one graph (outer names resolved by the enclosing graph's Ranges)."""

    def __init__(self, graph: onnx.GraphProto, scope: g.Scope, types: g.Types,
                 given: dict[str, Interval] | None = None, outer: Ranges | None = None) -> None:
        self.scope, self.types, self.outer = scope, types, outer
        self._given = dict(given or {})
        self._inputs = {i.name for i in graph.input}
        self._producer = {o: n for n in graph.node for o in n.output if o}
        self._memo: dict[str, Interval | None] = {}

    def of(self, name: str) -> Interval | None:
        if not name:
            return None
        if name not in self._memo:
            self._memo[name] = None  # acyclic, but stay safe
            self._memo[name] = self._compute(name)
        return self._memo[name]

    def _compute(self, name: str) -> Interval | None:
        if name in self._given:
            return self._given[name]
        value = self.scope.value(name)
        if value is not None and value.dtype.kind in "biuf":
            return (0, 0) if value.size == 0 else (float(value.min()), float(value.max()))
        if name in self._inputs:
            return None
        node = self._producer.get(name)
        if node is None:
            return self.outer.of(name) if self.outer is not None else None
        if node.domain not in ("", "ai.onnx"):
            return None
        return self._rule(node)

    def _rule(self, node: onnx.NodeProto) -> Interval | None:
        op, ins = node.op_type, list(node.input)
        if op in ("ArgMax", "ArgMin"):
            vt = self.types.get(ins[0])
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
            dim = None if vt is None or vt.shape is None else vt.shape[axis]
            return None if dim is None else (0, dim - 1)
        if op in ("Shape", "Size"):
            vt = self.types.get(ins[0])
            if vt is None or vt.shape is None or any(d is None for d in vt.shape):
                return None
            return (0, max(vt.shape, default=0)) if op == "Shape" else (0, math.prod(vt.shape))
        if op == "Cast":
            to = next(a.i for a in node.attribute if a.name == "to")
            src = self.types.dtype(ins[0])
            inner = self.of(ins[0]) or _TYPE_RANGE.get(src)
            if inner is not None and src in _FLOATS and to not in _FLOATS:  # truncation; widened for rounding
                inner = (math.floor(inner[0]) - 1, math.ceil(inner[1]) + 1)
            narrow = _TYPE_RANGE.get(to)
            if narrow is not None and (inner is None or inner[0] < narrow[0] or inner[1] > narrow[1]):
                return narrow  # a narrow result type bounds the values whatever came in
            return inner
        if op in _MOVES:
            positions = _MOVES[op] if _MOVES[op] is not None else range(len(ins))
            return _hull(self.of(ins[i]) for i in positions if i < len(ins) and ins[i])
        args = [self.of(i) for i in ins]
        if any(a is None for a in args):
            return None
        if op == "Neg":
            return (-args[0][1], -args[0][0])
        if op == "Abs":
            lo, hi = args[0]
            return (0 if lo <= 0 <= hi else min(abs(lo), abs(hi)), max(abs(lo), abs(hi)))
        if op in ("Add", "Sub", "Mul") and len(args) == 2:
            (a, b), (c, d) = args
            if op == "Add":
                return (a + c, b + d)
            if op == "Sub":
                return (a - d, b - c)
            corners = [a * c, a * d, b * c, b * d]
            return (min(corners), max(corners))
        if op == "Div" and len(args) == 2 and not args[1][0] <= 0 <= args[1][1]:
            corners = [x / y for x in args[0] for y in args[1]]
            return (math.floor(min(corners)), math.ceil(max(corners)))
        if op == "Mod" and len(args) == 2:
            m = max(abs(args[1][0]), abs(args[1][1]))
            return (-m, m)
        return None


"""What `lower_opset` knows about each operator version: which version bumps only added types (the dtype
check against the target schema is then all it takes), which added an attribute or input that can be
dropped or turned back when it holds its old meaning, and how ops newer than the target are decomposed
into older ones. A bump not listed here cannot be lowered: the pass refuses rather than guess."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper

from converter.passes import graphs as g


class CannotLower(Exception):
    """This node has no exact form at the target opset (the message says why)."""


@dataclass
class Context:
    target: int
    types: g.Types
    scope: g.Scope
    names: g.Names

    def const(self, name: str) -> np.ndarray | None:
        return self.scope.value(name) if name else None

    def fresh(self, base: str) -> str:
        return self.names.fresh(base)


def _types_only(table: str) -> set[tuple[str, int]]:
    """'Op:v1,v2 Op2:v3' -> {(Op, v1), (Op, v2), (Op2, v3)}."""
    out = set()
    for item in table.split():
        op, versions = item.split(":")
        out.update((op, int(v)) for v in versions.split(","))
    return out


# Versions that only widened the accepted types (bfloat16, int8/16, string, optional, float8, int4...) or
# changed nothing a lower version's users could see.
TYPES_ONLY = _types_only("""
    Abs:13 Add:13,14 Sub:13,14 Mul:13,14 Div:13,14 Pow:12,13,15 ArgMax:13 ArgMin:13 Cast:13,21 Ceil:13 Floor:13
    Clip:12,13 Concat:13 Constant:12,13,19,21 ConstantOfShape:20,21 CumSum:14 DepthToSpace:13 Dropout:13
    Equal:13,19 Erf:13 Exp:13 Expand:13 Flatten:13,21 Gather:13 GatherElements:13 GatherND:13 Gemm:13
    Greater:13 GreaterOrEqual:16 Less:13 LessOrEqual:16 Identity:13,14,16,19,21 If:13,16,19,21 Loop:13,16,19,21
    Scan:16,19,21 IsInf:20 IsNaN:13,20 LRN:13 LeakyRelu:16 Log:13 MatMul:13 Max:12,13 Min:12,13 Mean:13
    MeanVarianceNormalization:13 Mod:13 Neg:13 NonZero:13 Pad:13,21 PRelu:16 Reciprocal:13 Relu:13,14
    ReduceL1:13 ReduceL2:13 ReduceLogSum:13 ReduceLogSumExp:13 ReduceMax:13,20 ReduceMean:13 ReduceMin:13,20
    ReduceProd:13 ReduceSumSquare:13 Reshape:13,19,21 Resize:13 ScatterElements:13 ScatterND:13 Shape:13,19,21
    Sigmoid:13 Sign:13 Size:13,19,21 Slice:13 SpaceToDepth:13 Sqrt:13 Squeeze:21 Unsqueeze:21 Sum:13 Tanh:13
    Tile:13 Transpose:13,21 Where:16 BatchNormalization:15 QuantizeLinear:13 DequantizeLinear:13
""")


def _attr(node: onnx.NodeProto, name: str):
    a = next((a for a in node.attribute if a.name == name), None)
    return None if a is None else helper.get_attribute_value(a)


def _drop(node: onnx.NodeProto, name: str) -> None:
    keep = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(keep)


def _drop_if(node: onnx.NodeProto, name: str, *old_meaning) -> None:
    """Drop attribute `name` when absent or holding a value that means what the older version did."""
    value = _attr(node, name)
    if isinstance(value, bytes):
        value = value.decode()
    if value is not None and value not in old_meaning:
        raise CannotLower(f"its attribute {name}={value!r} has no equivalent before this version")
    _drop(node, name)


def _reshape_allowzero(node, ctx) -> list:
    if _attr(node, "allowzero") == 1:
        shape = ctx.const(node.input[1])
        if shape is None or (shape == 0).any():
            raise CannotLower("allowzero=1 with a 0 in a shape known only at run time")
    _drop(node, "allowzero")
    return [node]


def _batchnorm_training(node, ctx) -> list:
    _drop_if(node, "training_mode", 0)
    if len([o for o in node.output if o]) > 1:
        raise CannotLower("it returns the running mean/var (training mode)")
    return [node]


def _shape_slice(node, ctx) -> list:
    start, end = _attr(node, "start"), _attr(node, "end")
    if start in (None, 0) and end is None:
        _drop(node, "start")
        return [node]
    full, starts, ends = ctx.fresh(f"{node.output[0]}_full"), ctx.fresh(f"{node.output[0]}_start"), ctx.fresh(f"{node.output[0]}_end")
    return [helper.make_node("Shape", [node.input[0]], [full], name=node.name),
            g.const_node(starts, np.array([start or 0], np.int64)),
            g.const_node(ends, np.array([end if end is not None else np.iinfo(np.int64).max], np.int64)),
            helper.make_node("Slice", [full, starts, ends], list(node.output))]


def _axes_to_attribute(node, ctx) -> list:
    """Reduce*-18: axes moved from an attribute to an input; back to the attribute (constant axes only)."""
    noop = _attr(node, "noop_with_empty_axes") or 0
    _drop(node, "noop_with_empty_axes")
    axes = ctx.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None
    if len(node.input) > 1 and node.input[1] and axes is None:
        raise CannotLower("its axes are computed at run time")
    if axes is None or axes.size == 0:
        if noop:
            return [helper.make_node("Identity", [node.input[0]], list(node.output), name=node.name)]
        del node.input[1:]
        return [node]
    del node.input[1:]
    node.attribute.append(helper.make_attribute("axes", [int(a) for a in axes.ravel()]))
    return [node]


def _split_sizes(node, ctx) -> list:
    parts = _attr(node, "num_outputs")
    _drop(node, "num_outputs")
    if parts is None:
        return [node]
    axis = _attr(node, "axis") or 0
    vt = ctx.types.get(node.input[0])
    dim = None if vt is None or vt.shape is None else vt.shape[axis]
    if dim is None:
        raise CannotLower("num_outputs splits an axis whose size is unknown")
    chunk = math.ceil(dim / parts)
    sizes = [chunk] * (dim // chunk) + ([dim % chunk] if dim % chunk else [])
    name = ctx.fresh(f"{node.output[0]}_split")
    node.input.append(name)
    return [g.const_node(name, np.array(sizes, np.int64)), node]


def _pad_axes(node, ctx) -> list:
    if len(node.input) > 3 and node.input[3]:
        raise CannotLower("it pads selected axes (the axes input)")
    return [node]


def _resize_18(node, ctx) -> list:
    _drop_if(node, "antialias", 0)
    _drop_if(node, "keep_aspect_ratio_policy", "stretch")
    if _attr(node, "axes") is not None:
        raise CannotLower("it resizes selected axes (the axes attribute)")
    return [node]


def _attr_not(name: str, *new_values):
    """The attribute stays; only values the bump introduced are refused."""
    def rule(node, ctx) -> list:
        value = _attr(node, name)
        value = value.decode() if isinstance(value, bytes) else value
        if value in new_values:
            raise CannotLower(f"its attribute {name}={value!r} has no equivalent before this version")
        return [node]
    return rule


def _attr_default(name: str, *old_meaning):
    def rule(node, ctx) -> list:
        _drop_if(node, name, *old_meaning)
        return [node]
    return rule


def _same(node, ctx) -> list:
    return [node]


# (op, version) -> rule making the node valid for the version before.
BUMP_RULES = {
    ("Reshape", 14): _reshape_allowzero, ("BatchNormalization", 14): _batchnorm_training,
    ("Shape", 15): _shape_slice, ("Split", 18): _split_sizes, ("Pad", 18): _pad_axes,
    ("Pad", 19): _attr_not("mode", "wrap"), ("Resize", 18): _resize_18,
    ("Resize", 19): _attr_not("coordinate_transformation_mode", "half_pixel_symmetric"), ("Cast", 19): _attr_default("saturate", 1),
    ("AveragePool", 19): lambda node, ctx: _pool_dilations(node),
    ("ScatterElements", 16): _attr_default("reduction", "none"), ("ScatterND", 16): _attr_default("reduction", "none"),
    ("ScatterElements", 18): _attr_not("reduction", "max", "min"), ("ScatterND", 18): _attr_not("reduction", "max", "min"),
    ("GRU", 14): _attr_default("layout", 0), ("LSTM", 14): _attr_default("layout", 0), ("RNN", 14): _attr_default("layout", 0),
    ("LpPool", 18): _attr_default("ceil_mode", 0), ("QuantizeLinear", 19): _attr_default("saturate", 1),
    ("DequantizeLinear", 19): _same, ("QuantizeLinear", 21): _attr_default("block_size", 0),
    ("DequantizeLinear", 21): _attr_default("block_size", 0),
    **{(op, 18): _axes_to_attribute for op in ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
                                               "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare")},
}


def _pool_dilations(node) -> list:
    dilations = _attr(node, "dilations")
    if dilations is not None and any(d != 1 for d in dilations):
        raise CannotLower(f"dilations {list(dilations)} are new in opset 19")
    _drop(node, "dilations")
    return [node]


def _hardswish(node, ctx) -> list:
    """HardSwish(x) = x * HardSigmoid(x; alpha=1/6, beta=1/2)."""
    gate = ctx.fresh(f"{node.output[0]}_gate")
    return [helper.make_node("HardSigmoid", [node.input[0]], [gate], alpha=1.0 / 6, beta=0.5),
            helper.make_node("Mul", [node.input[0], gate], list(node.output), name=node.name)]


def _mish(node, ctx) -> list:
    """Mish(x) = x * tanh(softplus(x))."""
    soft, tanh = ctx.fresh(f"{node.output[0]}_softplus"), ctx.fresh(f"{node.output[0]}_tanh")
    return [helper.make_node("Softplus", [node.input[0]], [soft]), helper.make_node("Tanh", [soft], [tanh]),
            helper.make_node("Mul", [node.input[0], tanh], list(node.output), name=node.name)]


def _scalar(ctx, base: str, value: float, like: str) -> tuple[str, onnx.NodeProto]:
    dtype = helper.tensor_dtype_to_np_dtype(ctx.types.dtype(like) or TensorProto.FLOAT)
    name = ctx.fresh(base)
    return name, g.const_node(name, np.array(value, dtype=dtype))


def _gelu(node, ctx) -> list:
    """Gelu: 0.5·x·(1 + erf(x/√2)), or with approximate='tanh' 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))."""
    x, out = node.input[0], node.output[0]
    half, c_half = _scalar(ctx, f"{out}_half", 0.5, x)
    one, c_one = _scalar(ctx, f"{out}_one", 1.0, x)
    t = [ctx.fresh(f"{out}_t{i}") for i in range(6)]
    if (_attr(node, "approximate") or b"none").decode() == "tanh":
        k, c_k = _scalar(ctx, f"{out}_k", math.sqrt(2 / math.pi), x)
        a, c_a = _scalar(ctx, f"{out}_a", 0.044715, x)
        inner = [c_k, c_a, helper.make_node("Mul", [x, x], [t[0]]), helper.make_node("Mul", [t[0], x], [t[1]]),
                 helper.make_node("Mul", [t[1], a], [t[2]]), helper.make_node("Add", [x, t[2]], [t[3]]),
                 helper.make_node("Mul", [t[3], k], [t[4]]), helper.make_node("Tanh", [t[4]], [t[5]])]
    else:
        r, c_r = _scalar(ctx, f"{out}_rsqrt2", 1 / math.sqrt(2), x)
        inner = [c_r, helper.make_node("Mul", [x, r], [t[4]]), helper.make_node("Erf", [t[4]], [t[5]])]
    s, h = ctx.fresh(f"{out}_1p"), ctx.fresh(f"{out}_hx")
    return [c_half, c_one, *inner, helper.make_node("Add", [t[5], one], [s]), helper.make_node("Mul", [x, half], [h]),
            helper.make_node("Mul", [h, s], [out], name=node.name)]


def _layernorm(node, ctx) -> list:
    """LayerNormalization over axes [axis, rank): (x - mean) / sqrt(var + eps) * scale (+ bias)."""
    if len([o for o in node.output if o]) > 1:
        raise CannotLower("it returns Mean/InvStdDev, which no older op computes")
    rank = ctx.types.rank(node.input[0])
    if rank is None:
        raise CannotLower("the rank of its input is unknown")
    axis = _attr(node, "axis")
    axis = -1 if axis is None else axis
    axes = list(range(axis % rank, rank))
    eps_value = _attr(node, "epsilon")
    x, out = node.input[0], node.output[0]
    dtype = ctx.types.dtype(x) or TensorProto.FLOAT
    nodes = []
    if dtype != TensorProto.FLOAT and (_attr(node, "stash_type") or 1) == 1:  # computed in float32, as specified
        xf = ctx.fresh(f"{out}_x32")
        nodes.append(g.cast_node(x, xf, TensorProto.FLOAT))
        x = xf
    n = {k: ctx.fresh(f"{out}_{k}") for k in ("mean", "d", "d2", "var", "vareps", "std", "norm", "scaled", "eps")}
    reduce = (lambda src, dst: helper.make_node("ReduceMean", [src], [dst], axes=axes, keepdims=1)) if ctx.target < 18 else None
    if reduce is None:
        ax = ctx.fresh(f"{out}_axes")
        nodes.append(g.const_node(ax, np.array(axes, np.int64)))
        reduce = lambda src, dst: helper.make_node("ReduceMean", [src, ax], [dst], keepdims=1)  # noqa: E731
    nodes += [reduce(x, n["mean"]), helper.make_node("Sub", [x, n["mean"]], [n["d"]]),
              helper.make_node("Mul", [n["d"], n["d"]], [n["d2"]]), reduce(n["d2"], n["var"]),
              g.const_node(n["eps"], np.array(1e-5 if eps_value is None else eps_value, np.float32)),
              helper.make_node("Add", [n["var"], n["eps"]], [n["vareps"]]),
              helper.make_node("Sqrt", [n["vareps"]], [n["std"]]), helper.make_node("Div", [n["d"], n["std"]], [n["norm"]])]
    normed = n["norm"]
    if x != node.input[0]:
        back = ctx.fresh(f"{out}_back")
        nodes.append(g.cast_node(normed, back, dtype))
        normed = back
    has_bias = len(node.input) > 2 and node.input[2]
    nodes.append(helper.make_node("Mul", [normed, node.input[1]], [n["scaled"] if has_bias else out]))
    if has_bias:
        nodes.append(helper.make_node("Add", [n["scaled"], node.input[2]], [out], name=node.name))
    return nodes


def _castlike(node, ctx) -> list:
    to = ctx.types.dtype(node.input[1])
    if not to:
        raise CannotLower("the dtype of its second input is unknown")
    return [helper.make_node("Cast", [node.input[0]], list(node.output), name=node.name, to=to)]


# Ops newer than the target, rewritten with older ops (exact up to float rounding).
DECOMPOSE = {"HardSwish": _hardswish, "Mish": _mish, "Gelu": _gelu, "LayerNormalization": _layernorm,
             "CastLike": _castlike}

"""`lower_opset`: the model rewritten for an older ai.onnx opset, when the recipe asks (`onnx.max_opset`,
e.g. 13 for CANN 5.x/6.x, whose atc parses opset 9..13). Never implicit: without `onnx.max_opset` the pass
does nothing.

Per node (subgraphs included), the versions of its op between the target and the model's opset decide:
nothing changed that the node uses -> it stays; a version only added types -> the node's dtypes must be
ones the target version accepts; a version added an attribute or input -> dropped or turned back when it
keeps the old meaning (`lowering_rules.BUMP_RULES`); the op is newer than the target -> decomposed into
older ops (`HardSwish` -> x·HardSigmoid(x), LayerNormalization, Gelu, Mish, CastLike). Anything else is an
error naming the nodes, with the lowest opset they allow."""

from __future__ import annotations

import functools
from collections import defaultdict

import onnx
import onnx.defs
from pydantic import BaseModel, ConfigDict, Field

from converter.errors import StageFailed
from converter.passes import graphs as g
from converter.passes.base import ModelSet, Pass, PassResult, onnx_options, per_graph
from converter.passes.lowering_rules import (
    BUMP_RULES,
    DECOMPOSE,
    TYPES_ONLY,
    CannotLower,
    Context,
)
from converter.passes.registry import register


class LowerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    max_opset: int | None = Field(None, ge=7)


def _since(op: str, opset: int) -> int | None:
    """The version of `op` a model of this opset uses (None: the op did not exist yet)."""
    try:
        return onnx.defs.get_schema(op, opset, "").since_version
    except onnx.defs.SchemaError:
        return None


@functools.cache
def _all_versions() -> dict[str, list[int]]:
    out: dict[str, set[int]] = defaultdict(set)
    for schema in onnx.defs.get_all_schemas_with_history():
        if schema.domain in ("", "ai.onnx"):
            out[schema.name].add(schema.since_version)
    return {op: sorted(v) for op, v in out.items()}


def _versions(op: str) -> list[int]:
    return _all_versions().get(op, [])


def _check_types(node: onnx.NodeProto, ctx: Context) -> None:
    """The node's known dtypes must be ones the target version of its op accepts."""
    schema = onnx.defs.get_schema(node.op_type, ctx.target, "")
    allowed = {c.type_param_str: set(c.allowed_type_strs) for c in schema.type_constraints}
    for names, formals in ((node.input, schema.inputs), (node.output, schema.outputs)):
        for i, name in enumerate(names):
            if not name or not formals:
                continue
            formal = formals[min(i, len(formals) - 1)]
            dtype = ctx.types.dtype(name)
            if dtype and f"tensor({g.dtype_name(dtype)})" not in allowed.get(formal.type_str, {formal.type_str}):
                raise CannotLower(f"its {formal.name} is {g.dtype_name(dtype)}, which opset {ctx.target}'s "
                                  f"{node.op_type} does not accept")


def _lower_node(node: onnx.NodeProto, source: int, ctx: Context) -> tuple[list, str | None]:
    """The node's replacement at the target opset and how it was rewritten (None: unchanged)."""
    op = node.op_type
    src = _since(op, source)
    if src is None or src <= ctx.target:
        return [node], None
    tgt = _since(op, ctx.target)
    if tgt is None:
        if op not in DECOMPOSE:
            raise CannotLower(f"{op} first appears in opset {src} and has no decomposition into older ops")
        doc = (DECOMPOSE[op].__doc__ or "").strip().splitlines()[0].rstrip(".")
        return DECOMPOSE[op](node, ctx), f"{op} (opset {src}) decomposed: {doc}"
    nodes, how = [node], []
    for version in sorted((v for v in _versions(op) if tgt < v <= src), reverse=True):
        if (op, version) in TYPES_ONLY:
            continue
        rule = BUMP_RULES.get((op, version))
        if rule is None:
            raise CannotLower(f"{op} changed in opset {version} in a way npuconv cannot undo")
        at = next((i for i, n in enumerate(nodes) if n.op_type == op), None)
        if at is None:
            break
        before = nodes[at].SerializeToString()
        nodes[at:at + 1] = rule(nodes[at], ctx)
        if len(nodes) != 1 or nodes[0].SerializeToString() != before:
            how.append(str(version))
    for n in nodes:
        if n.op_type == op:
            _check_types(n, ctx)
    return nodes, (f"{op} rewritten to its opset-{tgt} form (undoing opset {', '.join(how)})" if how else None)


def lower(model: onnx.ModelProto, target: int) -> tuple[onnx.ModelProto, list[str]]:
    """`model` rewritten for ai.onnx opset `target` and notes naming every rewritten node; the model
    itself when its opset is already at most `target`. Raises StageFailed naming what cannot be lowered."""
    source = g.opset_of(model)
    if source <= target:
        return model, []
    out = g.copy_model(model)
    types, names = g.Types(model), g.Names(out)
    top = g.Scope(out.graph, source, types=types)
    rewritten: dict[str, list[str]] = defaultdict(list)
    problems, needs = [], []
    for graph, where in g.walk(out.graph):
        scope = top if not where else g.Scope(graph, source, outer=top, types=types)
        ctx = Context(target, types, scope, names)
        nodes = []
        for node in graph.node:
            if node.domain not in ("", "ai.onnx"):
                nodes.append(node)
                continue
            try:
                new, how = _lower_node(node, source, ctx)
            except CannotLower as why:
                problems.append(f"{g.located(node, where)}: {why}")
                needs.append(_since(node.op_type, source) or source)
                nodes.append(node)
                continue
            if how:
                rewritten[how].append(f"'{node.name or node.output[0]}'" + (f" (in {where})" if where else ""))
            nodes.extend(new)
        g.replace_nodes(graph, nodes)
    if problems:
        shown = "; ".join(problems[:6]) + (f"; and {len(problems) - 6} more" if len(problems) > 6 else "")
        raise StageFailed(
            f"cannot lower the ONNX from opset {source} to onnx.max_opset {target}: {shown}",
            hint=f"these nodes need opset {max(needs)} or later: raise onnx.max_opset to {max(needs)} (and a CANN "
                 f"whose atc parses it), or re-export the model without these ops")
    for imp in out.opset_import:
        if imp.domain in ("", "ai.onnx"):
            imp.version = target
    notes = [f"ai.onnx opset {source} -> {target}"]
    notes += [f"{how}: {', '.join(nodes)} ({len(nodes)} node{'s' * (len(nodes) != 1)})" for how, nodes in rewritten.items()]
    return out, notes


@register
class LowerOpset(Pass):
    name = "lower_opset"
    Config = LowerConfig

    def configure(self, section) -> LowerConfig:
        return LowerConfig(max_opset=getattr(onnx_options(section), "max_opset", None))

    def run(self, models: ModelSet, config: LowerConfig) -> PassResult:
        if config.max_opset is None:
            return PassResult(models)
        return per_graph(models, lambda _role, m: lower(m, config.max_opset))

"""`fold_control_flow`: control flow whose path is known before the model runs, made flat.

- An `If` whose condition is constant is replaced by the nodes of the branch it takes.
- A `Loop` is unrolled when its path is provably fixed: before every step, the trip count (if any) and the
  condition evaluate to constants — the condition from constants alone, with the step's iteration number
  and carried values substituted (to_static writes `for i in range(N)` as a while loop with a carried
  counter, so the condition is usually `counter + 1 < N`). It unrolls only up to `onnx.unroll_max` steps;
  scan outputs are stacked with Unsqueeze + Concat.
- Everything else is left alone (a loop whose condition depends on the data is the decoder split's).

Unrolled and inlined graphs may hold further constant control flow: the pass works until none is left."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper
from pydantic import BaseModel, ConfigDict, Field

from converter.passes import graphs as g
from converter.passes.base import ModelSet, Pass, PassResult, onnx_options, per_graph
from converter.passes.registry import register


class FoldConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    unroll_max: int = Field(64, ge=0)


class _Abandon(Exception):
    """This loop stays a loop (the reason is for the notes, or None when there is nothing to say)."""

    def __init__(self, reason: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason


def _rename(nodes: list, old: str, new: str) -> None:
    """Rename a value everywhere in `nodes` (and the graphs nested in them)."""
    for node in nodes:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
        for _, sub in g.subgraphs(node):
            _rename(list(sub.node), old, new)
            for out in sub.output:
                if out.name == old:
                    out.name = new


def _clone_graph(graph: onnx.GraphProto, mapping: dict, names: g.Names, tag: str) -> onnx.GraphProto:
    """A copy of a nested graph with every name it defines made fresh and outer references mapped."""
    inner = dict(mapping)
    out = onnx.GraphProto()
    out.name = graph.name
    for vi in graph.input:
        inner[vi.name] = names.fresh(f"{vi.name}_{tag}")
        out.input.append(helper.make_value_info(inner[vi.name], vi.type))
    for init in graph.initializer:
        inner[init.name] = names.fresh(f"{init.name}_{tag}")
        out.initializer.append(numpy_helper.from_array(numpy_helper.to_array(init), inner[init.name]))
    out.node.extend(_clone_nodes(graph.node, inner, names, tag))
    for vi in graph.output:
        out.output.append(helper.make_value_info(inner.get(vi.name, vi.name), vi.type))
    return out


def _clone_nodes(nodes, mapping: dict, names: g.Names, tag: str) -> list:
    """Copies of `nodes` whose outputs get fresh names (recorded in `mapping`) and whose inputs are mapped."""
    out = []
    for node in nodes:
        new = onnx.NodeProto()
        new.CopyFrom(node)
        new.name = names.fresh(f"{node.name or node.op_type}_{tag}")
        for i, name in enumerate(node.input):
            new.input[i] = mapping.get(name, name)
        for i, name in enumerate(node.output):
            if name:
                mapping[name] = names.fresh(f"{name}_{tag}")
                new.output[i] = mapping[name]
        for attr in new.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                attr.g.CopyFrom(_clone_graph(attr.g, mapping, names, tag))
            for j, sub in enumerate(attr.graphs):
                attr.graphs[j].CopyFrom(_clone_graph(sub, mapping, names, tag))
        out.append(new)
    return out


def _bind_outputs(emitted: list, finals: list[str], outputs: list[str]) -> list:
    """Make `outputs[i]` carry `finals[i]`: rename the producing node's output where it is one of
    `emitted`'s own values (used once), else add an Identity. Returns the extra nodes."""
    produced = {o for n in emitted for o in n.output if o}
    extra, bound = [], {}
    for final, out in zip(finals, outputs):
        if not out:
            continue
        if final in bound:
            extra.append(helper.make_node("Identity", [bound[final]], [out]))
        elif final in produced:
            _rename(emitted, final, out)
            bound[final] = out
        else:
            extra.append(helper.make_node("Identity", [final], [out]))
    return extra


def _tidy(nodes: list, emitted: set, scope: g.Scope, outputs: set[str]) -> list:
    """Clean up after unrolling/inlining, touching only the nodes the pass emitted: those whose values were
    evaluated on the way (a loop counter, its exit test) become Constants, and those nothing reads go."""
    out = []
    for node in nodes:
        values = [scope.known(o) for o in node.output if o]
        if id(node) in emitted and node.op_type != "Constant" and values and all(v is not None for v in values):
            consts = [g.const_node(o, v) for o, v in zip([o for o in node.output if o], values)]
            emitted.update(id(c) for c in consts)
            out += consts
        else:
            out.append(node)
    used = set(outputs)
    alive = []
    for node in reversed(out):
        if id(node) in emitted and not any(o in used for o in node.output if o):
            continue
        used |= g.references(node)
        alive.append(node)
    return alive[::-1]


class _Folder:
    def __init__(self, model: onnx.ModelProto, unroll_max: int) -> None:
        self.model = model
        self.opset = g.opset_of(model)
        self.unroll_max = unroll_max
        self.names = g.Names(model)
        self.types = g.Types(model)
        self.notes: list[str] = []
        self.changed = False

    def fold_graph(self, graph: onnx.GraphProto, where: str, outer: g.Scope | None) -> None:
        scope = g.Scope(graph, self.opset, outer, self.types)
        queue = list(graph.node)
        kept, emitted = [], set()
        while queue:
            node = queue.pop(0)
            replacement = None
            if node.domain in ("", "ai.onnx") and node.op_type == "If":
                replacement = self._fold_if(node, where, scope)
            elif node.domain in ("", "ai.onnx") and node.op_type == "Loop":
                replacement = self._unroll(node, where, scope)
            if replacement is not None:
                self.changed = True
                for n in replacement:
                    scope.add_node(n)
                emitted.update(id(n) for n in replacement)
                queue[:0] = replacement  # their own control flow may now be constant
                continue
            for attr, sub in g.subgraphs(node):
                self.fold_graph(sub, f"{where} / {g.label(node)} {attr}" if where else f"{g.label(node)} {attr}", scope)
            kept.append(node)
        if emitted:
            kept = _tidy(kept, emitted, scope, {o.name for o in graph.output})
        g.replace_nodes(graph, kept)

    def _fold_if(self, node, where: str, scope: g.Scope) -> list | None:
        cond = scope.value(node.input[0])
        if cond is None or cond.size != 1:
            return None
        taken = "then_branch" if bool(cond.ravel()[0]) else "else_branch"
        branch = next(sub for attr, sub in g.subgraphs(node) if attr == taken)
        # cloned with fresh names: a branch may reuse names of the graph it is moved into
        mapping: dict[str, str] = {}
        nodes = []
        for init in branch.initializer:
            mapping[init.name] = self.names.fresh(f"{init.name}_{taken[:4]}")
            nodes.append(g.const_node(mapping[init.name], numpy_helper.to_array(init)))
        nodes += _clone_nodes(branch.node, mapping, self.names, taken[:4])
        nodes += _bind_outputs(nodes, [mapping.get(o.name, o.name) for o in branch.output], list(node.output))
        self.notes.append(f"{g.located(node, where)}: replaced by its {taken} ({len(branch.node)} nodes; the condition "
                          f"is constant {bool(cond.ravel()[0])})")
        return nodes

    def _unroll(self, node, where: str, scope: g.Scope) -> list | None:
        try:
            nodes, steps, scans = self._unrolled(node, scope)
        except _Abandon as why:
            if why.reason:
                self.notes.append(f"{g.located(node, where)}: left as a loop: {why.reason}")
            return None
        self.notes.append(f"{g.located(node, where)}: unrolled, {steps} step{'s' * (steps != 1)} (its path is "
                          f"constant at every step)" + (f"; {scans} scan output(s) stacked" if scans else ""))
        return nodes

    def _unrolled(self, node, scope: g.Scope) -> tuple[list, int, int]:
        body = next(sub for attr, sub in g.subgraphs(node) if attr == "body")
        n_state = len(node.input) - 2
        n_scan = len(body.output) - 1 - n_state
        trip = None
        if node.input[0]:
            m = scope.value(node.input[0])
            if m is None:
                raise _Abandon()
            trip = int(m.ravel()[0])
        use_cond = bool(node.input[1])  # without a condition input the body's condition output is ignored
        cond_name = node.input[1] or None
        current = list(node.input[2:])
        emitted = [g.const_node(self.names.fresh(f"{i.name}_unrolled"), numpy_helper.to_array(i)) for i in body.initializer]
        base = {i.name: n.output[0] for i, n in zip(body.initializer, emitted)}
        for n in emitted:
            scope.add_node(n)
        true_name = None
        if cond_name is None:
            true_name = self.names.fresh(f"{node.name or 'loop'}_true")
            emitted.append(g.const_node(true_name, np.array(True)))
            scope.add_node(emitted[-1])
        scans: list[list[str]] = []
        step = 0
        while True:
            if trip is not None and step >= trip:
                break
            if use_cond:
                cond = scope.value(cond_name)
                if cond is None:  # data-dependent: the decoder split's case, nothing to note here
                    raise _Abandon()
                if not bool(cond.ravel()[0]):
                    break
            if step >= self.unroll_max:
                bound = f"{trip} steps" if trip is not None else f"more than {self.unroll_max} steps"
                raise _Abandon(f"it runs {bound}, over onnx.unroll_max = {self.unroll_max} (raise it to unroll)")
            tag = f"u{step}"
            iter_name = self.names.fresh(f"{body.input[0].name}_{tag}")
            fresh = [g.const_node(iter_name, np.array(step, dtype=np.int64))]
            mapping = dict(base)
            mapping[body.input[0].name] = iter_name
            mapping[body.input[1].name] = cond_name if cond_name is not None else true_name
            for vi, value in zip(body.input[2:], current):
                mapping[vi.name] = value
            fresh += _clone_nodes(body.node, mapping, self.names, tag)
            for n in fresh:
                scope.add_node(n)
            emitted += fresh
            outs = [mapping.get(o.name, o.name) for o in body.output]
            cond_name, current = outs[0], outs[1:1 + n_state]
            scans.append(outs[1 + n_state:])
            step += 1
        if step == 0 and any(node.output[n_state:]):
            raise _Abandon("it runs no step, and its scan outputs would be empty tensors of unknown shape")
        stacked = 0
        for k in range(n_scan):
            out = node.output[n_state + k] if n_state + k < len(node.output) else ""
            if not out:
                continue
            rows = []
            for s, per_step in enumerate(scans):
                row = self.names.fresh(f"{out}_row{s}")
                emitted += g.unsqueeze_nodes(per_step[k], row, [0], self.opset, self.names)
                rows.append(row)
            emitted.append(helper.make_node("Concat", rows, [out], axis=0) if len(rows) > 1
                           else helper.make_node("Identity", rows, [out]))
            stacked += 1
        # after the scans: renaming a final state value also renames a scan row that reads it
        emitted += _bind_outputs(emitted, current, list(node.output[:n_state]))
        return emitted, step, stacked


def fold(model: onnx.ModelProto, unroll_max: int = 64) -> tuple[onnx.ModelProto, list[str]]:
    """The folded copy of `model` and one note per folded If/Loop (the model itself when nothing folds)."""
    if not any(n.op_type in ("If", "Loop") for graph, _ in g.walk(model.graph) for n in graph.node):
        return model, []
    out = g.copy_model(model)
    folder = _Folder(out, unroll_max)
    folder.fold_graph(out.graph, "", None)
    return (out if folder.changed else model), folder.notes


@register
class FoldControlFlow(Pass):
    name = "fold_control_flow"
    Config = FoldConfig

    def configure(self, section) -> FoldConfig:
        options = onnx_options(section)
        return FoldConfig(unroll_max=getattr(options, "unroll_max", 64))

    def run(self, models: ModelSet, config: FoldConfig) -> PassResult:
        return per_graph(models, lambda _role, m: fold(m, config.unroll_max))


"""Lint rules: each finding names its rule, a severity (`block`: a static 310-class atc build will fail
or fall off the AI Core; `warn`: slow or doubtful; `info`: expected) and the node it is about."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from converter import ascend as opt
from converter.errors import InputError
from converter.lint.graph import CONTROL_FLOW, GraphFacts, analyse

# Output shape depends on the input values, always.
ALWAYS_DATA_DEPENDENT = frozenset({"NonZero", "NonMaxSuppression", "Unique", "Compress", "StringSplit"})
# Output shape depends on the value of these input positions; fine when those inputs are constant.
SHAPE_INPUTS: dict[str, tuple[int, ...]] = {
    "TopK": (1,), "Range": (0, 1, 2), "Expand": (1,), "Tile": (1,), "Reshape": (1,), "ConstantOfShape": (0,),
    "Slice": (1, 2, 3, 4), "Resize": (2, 3), "Upsample": (1,), "Pad": (1, 2), "OneHot": (1,),
    "Squeeze": (1,), "Unsqueeze": (1,), "Split": (1,), "CenterCropPad": (1,),
}
# Scatter-like ops with runtime indices: AI CPU kernels (or none) on 310-class chips.
INDEX_INPUTS: dict[str, int] = {"ScatterND": 1, "ScatterElements": 1, "Scatter": 1}
ARITHMETIC = frozenset({"Add", "Sub", "Mul", "Div", "Mod", "Neg", "Abs", "Pow", "MatMul", "Gemm", "Max", "Min",
                        "ReduceSum", "ReduceProd", "ReduceMax", "ReduceMin", "CumSum"})
INT64 = 7
DEFAULT_DOMAINS = ("", "ai.onnx")
SEVERITY_ORDER = {"block": 0, "warn": 1, "info": 2}
Gear = Mapping[str, Sequence[int]]


@dataclass(frozen=True)
class Finding:
    """One lint fact about the graph."""

    rule: str
    severity: str
    message: str
    node: str | None = None
    op_type: str | None = None

    def to_json(self) -> dict:
        return {"rule": self.rule, "severity": self.severity, "message": self.message, "node": self.node,
                "op_type": self.op_type}


@dataclass(frozen=True)
class LintReport:
    """All findings for one ONNX file; truthy when nothing blocks a static 310-class build."""

    model: str
    opset: int
    cann_version: str
    opset_range: tuple[int, int]
    nodes: int
    inputs: dict[str, list]
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    note: str | None = None
    gears: tuple[dict[str, list[int]], ...] = ()

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "block"]

    def __bool__(self) -> bool:
        return not self.blocking

    def to_json(self) -> dict:
        counts = {s: sum(f.severity == s for f in self.findings) for s in ("block", "warn", "info")}
        return {"passed": bool(self), "model": self.model, "opset": self.opset, "cann_version": self.cann_version,
                "opset_range": list(self.opset_range), "nodes": self.nodes, "inputs": self.inputs,
                "counts": counts, "findings": [f.to_json() for f in self.findings], "note": self.note,
                "gears": [dict(g) for g in self.gears]}


def _name(node) -> str:
    return node.name or (node.output[0] if node.output else node.op_type)


def _dims(shape: list | None) -> str:
    return "?" if shape is None else "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def _input_findings(facts: GraphFacts, gears: Sequence[Gear]) -> list[Finding]:
    out = []
    graph = facts.model.graph
    inits = {i.name for i in graph.initializer}
    for vi in graph.input:
        if vi.name in inits:
            continue
        shape = facts.shapes.get(vi.name)
        if shape is None:
            out.append(Finding("dynamic-input", "block", f"input {vi.name} has no declared shape", vi.name))
            continue
        if gears and vi.name in gears[0]:
            out += _gear_shape_findings(vi.name, shape, gears)
        dynamic = [i for i, d in enumerate(shape) if d is None]
        if not dynamic:
            continue
        filled = bool(gears) and all(len(g.get(vi.name, ())) == len(shape) for g in gears)
        out.append(Finding("dynamic-input", "info" if filled else "block",
                           f"input {vi.name} {_dims(shape)} keeps dynamic axes {dynamic}"
                           + (" (covered by the om.dynamic gears: each gear is linted with its static shapes)"
                              if filled else
                              "; 310-class chips need fixed shapes (set inputs[].shape or om.dynamic gears)"),
                           vi.name))
    return out


def _gear_shape_findings(name: str, shape: list, gears: Sequence[Gear]) -> list[Finding]:
    """A gear that gives an input another rank, or another value on an axis the ONNX fixes."""
    for gear in gears:
        want = list(gear[name])
        if len(want) != len(shape):
            return [Finding("gear-shape", "block", f"gear {_gear_label(gear)} gives input {name} rank {len(want)}, "
                            f"the ONNX input is {_dims(shape)}", name)]
        fixed = [i for i, (d, w) in enumerate(zip(shape, want)) if d is not None and d != w]
        if fixed:
            return [Finding("gear-shape", "block", f"gear {_gear_label(gear)} sets axes {fixed} of input {name}, "
                            f"which the ONNX fixes ({_dims(shape)}); rebuild the ONNX with the gear axes symbolic",
                            name)]
    return []


def _gear_label(gear: Gear) -> str:
    return ";".join(f"{name}:{','.join(str(d) for d in shape)}" for name, shape in gear.items())


def _node_findings(facts: GraphFacts) -> list[Finding]:
    out = []
    int64_nodes = []
    graph = facts.model.graph
    inits = {i.name for i in graph.initializer}
    inputs = {vi.name for vi in graph.input if vi.name not in inits}
    # tensors whose shape or value depends on run-time shapes: dynamic inputs, then everything downstream
    # of them or of a node flagged below
    dynamic = {n for n in inputs if not facts.static(n)}
    for node in graph.node:
        name = _name(node)
        flagged = False
        if node.domain not in DEFAULT_DOMAINS:
            out.append(Finding("custom-domain", "block", f"{node.op_type} is in domain {node.domain!r}; atc only parses "
                               "ai.onnx ops (E19010 'No parser is registered')", name, node.op_type))
            continue
        if node.op_type in CONTROL_FLOW:
            flagged = True
            out.append(Finding("control-flow", "block", f"{node.op_type} is control flow; atc needs a flat static graph "
                               "(unroll it before export or split the model)", name, node.op_type))
        elif node.op_type in ALWAYS_DATA_DEPENDENT:
            flagged = True
            out.append(Finding("data-dependent-shape", "block", f"{node.op_type}'s output shape depends on the input "
                               "values; no static 310-class kernel (move it to post-processing on the host)",
                               name, node.op_type))
        elif node.op_type in SHAPE_INPUTS:
            runtime = [node.input[i] for i in SHAPE_INPUTS[node.op_type]
                       if i < len(node.input) and not facts.is_const(node.input[i])]
            if runtime:
                static_out = all(facts.static(o) for o in node.output if o)
                flagged = not static_out
                out.append(Finding("data-dependent-shape", "warn" if static_out else "block",
                                   f"{node.op_type} takes {', '.join(runtime)} at run time"
                                   + (" (its output shape is still fixed)" if static_out else
                                      ", so its output shape is only known at run time"), name, node.op_type))
        elif node.op_type in INDEX_INPUTS:
            idx = INDEX_INPUTS[node.op_type]
            if idx < len(node.input) and not facts.is_const(node.input[idx]):
                out.append(Finding("dynamic-indices", "block", f"{node.op_type} scatters at indices computed at run "
                                   "time; 310-class chips run it on AI CPU or reject it", name, node.op_type))
        if flagged or any(i in dynamic for i in node.input if i):
            dynamic.update(o for o in node.output if o)
        if (node.op_type in ARITHMETIC and node.output and facts.dtypes.get(node.output[0]) == INT64
                and not facts.is_const(node.output[0])):
            int64_nodes.append(name)
    if int64_nodes:
        share = len(int64_nodes) / max(1, len(graph.node))
        out.append(Finding("int64-arithmetic", "warn", f"{len(int64_nodes)} arithmetic node(s) compute in int64 "
                           f"({share:.0%} of the graph{', int64-heavy' if share >= 0.1 else ''}); AI Core has few "
                           f"int64 kernels, atc may place them on AI CPU: {', '.join(int64_nodes[:5])}"))
    downstream = [n for n in dynamic if n not in inputs]
    if downstream:
        out.append(Finding("dynamic-intermediate", "warn", f"{len(downstream)} tensor(s) get their shape at run "
                           f"time, e.g. {', '.join(sorted(downstream)[:5])}"))
    return out


def _concretise(model, gear: Gear):
    """A copy of the model with the gear's static shape on every symbolic input dim it fills; inferred
    shapes that were symbolic are dropped so that shape inference recomputes them for this gear."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    for vi in graph.input:
        dims = vi.type.tensor_type.shape.dim
        shape = gear.get(vi.name)
        if shape is not None and len(shape) == len(dims):
            for dim, value in zip(dims, shape):
                if not (dim.HasField("dim_value") and dim.dim_value > 0):
                    dim.dim_value = int(value)

    def symbolic(vi) -> bool:
        t = vi.type.tensor_type
        return t.HasField("shape") and any(not (d.HasField("dim_value") and d.dim_value > 0) for d in t.shape.dim)

    static_info = [vi for vi in graph.value_info if not symbolic(vi)]
    del graph.value_info[:]
    graph.value_info.extend(static_info)
    for vi in graph.output:
        if symbolic(vi):
            vi.type.tensor_type.ClearField("shape")
    return copy


def _gear_findings(model, gears: Sequence[Gear]) -> list[Finding]:
    """Node findings of every gear's static graph, merged: the worst severity per (rule, node); a finding
    that only some gears have names them."""
    merged: dict[tuple, tuple[Finding, list[int]]] = {}
    for index, gear in enumerate(gears):
        for finding in _node_findings(analyse(_concretise(model, gear))):
            key = (finding.rule, finding.node, finding.op_type)
            kept, seen = merged.get(key, (finding, []))
            if SEVERITY_ORDER[finding.severity] < SEVERITY_ORDER[kept.severity]:
                kept = finding
            merged[key] = (kept, seen + [index])
    out = []
    for finding, seen in merged.values():
        if len(seen) < len(gears):
            finding = dataclasses.replace(finding, message=finding.message + " (only in gear(s) "
                                          + ", ".join(f"[{_gear_label(gears[i])}]" for i in seen) + ")")
        out.append(finding)
    return out


def lint_onnx(path: Path, *, cann_version: str | None = None, gears: Sequence[Gear] | None = None) -> LintReport:
    """Lint one ONNX file against atc (the CANN version's opset range) and a static 310-class build.
    `gears` are the static input shapes of each gear of a gear build (om.dynamic), e.g.
    `[{"x": [1, 3, 32, 64]}, {"x": [4, 3, 32, 64]}]`: atc compiles every gear as a static graph, so each
    gear's graph is linted with its shapes and the findings merged; the input axes they fill are info."""
    import onnx

    if not Path(path).is_file():
        raise InputError(f"ONNX file not found: {path}", hint="pass a .onnx file or a recipe")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any protobuf decode error means "not an ONNX file"
        raise InputError(f"{path} is not a readable ONNX file: {exc}", hint="pass the .onnx the onnx stage wrote") from None
    gears = [dict(g) for g in gears or ()]
    key, findings = _cann_findings(cann_version)
    (low, high), release = opt.opset_range(cann_version)
    facts = analyse(model)
    domains = [o.domain for o in model.opset_import if o.domain in DEFAULT_DOMAINS]
    if len(domains) > 1:
        findings.append(Finding("opset-import", "block", "the model declares the ai.onnx opset more than once "
                                "(atc E16005)"))
    if not low <= facts.opset <= high:
        findings.append(Finding("opset-range", "block", f"ai.onnx opset {facts.opset} is outside {low}..{high}, what "
                                f"CANN {release} atc parses"))
    findings += _input_findings(facts, gears)
    findings += _gear_findings(model, gears) if gears else _node_findings(facts)
    inits = {i.name for i in model.graph.initializer}
    inputs = {vi.name: [d if d is not None else "?" for d in (facts.shapes.get(vi.name) or [])]
              for vi in model.graph.input if vi.name not in inits}
    findings.sort(key=lambda f: SEVERITY_ORDER[f.severity])
    return LintReport(model=str(path), opset=facts.opset, cann_version=key, opset_range=(low, high),
                      nodes=len(model.graph.node), inputs=inputs, findings=tuple(findings),
                      gears=tuple({k: list(v) for k, v in g.items()} for g in gears))


def _cann_findings(cann_version: str | None) -> tuple[str, list[Finding]]:
    """The CANN release key and a warning when the version is not in the table (its nearest lower release
    is used); an InputError for a version that is not one or is older than every known release."""
    if cann_version is not None and not re.match(r"^\d+\.\d+", cann_version):
        raise InputError(f"--cann-version {cann_version!r} is not a CANN version",
                         hint="write major.minor[.patch], e.g. 8.0 or 8.0.RC2")
    key = opt.cann_key(cann_version)
    release = opt.cann_release(cann_version)
    if release is None:
        raise InputError(f"CANN {cann_version} is older than every CANN release npuconv knows "
                         f"({', '.join(opt.known_canns())})", hint="lint against the CANN the build server runs")
    if release == key:
        return key, []
    return key, [Finding("cann-version", "warn", f"CANN {cann_version} is not in npuconv's table; the opset is "
                         f"checked against the nearest lower known release, CANN {release}")]

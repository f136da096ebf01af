"""Lint rules: each finding names its rule, a severity (`block`: a static 310-class atc build will fail
or fall off the AI Core; `warn`: slow or doubtful; `info`: expected) and the node it is about."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from converter.errors import InputError
from converter.lint.graph import CONTROL_FLOW, GraphFacts, analyse
from converter.stages.atc import options as opt

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

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "block"]

    def __bool__(self) -> bool:
        return not self.blocking

    def to_json(self) -> dict:
        counts = {s: sum(f.severity == s for f in self.findings) for s in ("block", "warn", "info")}
        return {"passed": bool(self), "model": self.model, "opset": self.opset, "cann_version": self.cann_version,
                "opset_range": list(self.opset_range), "nodes": self.nodes, "inputs": self.inputs,
                "counts": counts, "findings": [f.to_json() for f in self.findings], "note": self.note}


def _name(node) -> str:
    return node.name or (node.output[0] if node.output else node.op_type)


def _dims(shape: list | None) -> str:
    return "?" if shape is None else "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def _input_findings(facts: GraphFacts, expected: Mapping[str, Sequence[int]]) -> list[Finding]:
    out = []
    graph = facts.model.graph
    inits = {i.name for i in graph.initializer}
    for vi in graph.input:
        if vi.name in inits:
            continue
        shape = facts.shapes.get(vi.name)
        dynamic = [i for i, d in enumerate(shape or []) if d is None] if shape is not None else None
        if dynamic is None:
            out.append(Finding("dynamic-input", "block", f"input {vi.name} has no declared shape", vi.name))
        elif dynamic:
            covered = sorted(expected.get(vi.name, ())) == dynamic
            out.append(Finding("dynamic-input", "info" if covered else "block",
                               f"input {vi.name} {_dims(shape)} keeps dynamic axes {dynamic}"
                               + (" (covered by the om.dynamic gears)" if covered else
                                  "; 310-class chips need fixed shapes (set inputs[].shape or om.dynamic gears)"),
                               vi.name))
    return out


def _node_findings(facts: GraphFacts, gears: bool) -> list[Finding]:
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
        out.append(Finding("dynamic-intermediate", "info" if gears else "warn",
                           f"{len(downstream)} tensor(s) get their shape at run time, e.g. {', '.join(sorted(downstream)[:5])}"
                           + (" (from the om.dynamic gears)" if gears else "")))
    return out


def lint_onnx(path: Path, *, cann_version: str | None = None,
              expected_dynamic: Mapping[str, Sequence[int]] | None = None) -> LintReport:
    """Lint one ONNX file against atc (the CANN version's opset range) and a static 310-class build.
    `expected_dynamic` lists input axes the recipe's gears make dynamic on purpose (reported as info)."""
    import onnx

    if not Path(path).is_file():
        raise InputError(f"ONNX file not found: {path}", hint="pass a .onnx file or a recipe")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - any protobuf decode error means "not an ONNX file"
        raise InputError(f"{path} is not a readable ONNX file: {exc}", hint="pass the .onnx the onnx stage wrote") from None
    facts = analyse(model)
    (low, high), known = opt.opset_range(cann_version)
    findings: list[Finding] = []
    domains = [o.domain for o in model.opset_import if o.domain in DEFAULT_DOMAINS]
    if len(domains) > 1:
        findings.append(Finding("opset-import", "block", "the model declares the ai.onnx opset more than once "
                                "(atc E16005)"))
    if not low <= facts.opset <= high:
        findings.append(Finding("opset-range", "block", f"ai.onnx opset {facts.opset} is outside {low}..{high}, what "
                                f"CANN {opt.cann_key(cann_version)} atc parses"))
    if not known:
        findings.append(Finding("cann-version", "warn", f"CANN {cann_version} is not in npuconv's table; opset "
                                f"checked against CANN {opt.DEFAULT_CANN}"))
    findings += _input_findings(facts, expected_dynamic or {})
    findings += _node_findings(facts, gears=bool(expected_dynamic))
    inits = {i.name for i in model.graph.initializer}
    inputs = {vi.name: [d if d is not None else "?" for d in (facts.shapes.get(vi.name) or [])]
              for vi in model.graph.input if vi.name not in inits}
    order = {"block": 0, "warn": 1, "info": 2}
    findings.sort(key=lambda f: order[f.severity])
    return LintReport(model=str(path), opset=facts.opset, cann_version=opt.cann_key(cann_version),
                      opset_range=(low, high), nodes=len(model.graph.node), inputs=inputs, findings=tuple(findings))

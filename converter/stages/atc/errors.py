"""atc's error codes in plain words, and a parser that turns an atc log into codes and unsupported ops.

Codes and message templates follow the CANN Graph Engine error-code catalog (`docs/en/user_guides/
error_codes/`) and the ATC troubleshooting pages; the op regexes follow msit's ATC log analyser. atc prints
a code either at the start of a line (`E19010: [PID: 12] 2025-03-18-09:02:18.501.341 No parser ...`) or,
in newer CANN, after its title (`[PID: 12] 2026-01-14-06:41:59.991.811 Unsupported_Operator(EZ3002): ...`);
both are read, and the PID and timestamp are dropped from the message."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# code -> (what it means, how to fix it)
ERROR_CODES: dict[str, tuple[str, str]] = {
    "E10001": ("an option value is invalid or two options cannot be combined",
               "read the Reason in the message; npuconv checks most combinations, so also check extra_args"),
    "E10002": ("--input_shape is malformed (it needs name:d1,d2,... per input, ';' between inputs)",
               "fix inputs[].shape in the recipe"),
    "E10003": ("an option value has the wrong format (e.g. a non-digit in a gear list)", "fix the named option"),
    "E10004": ("an option was given an empty value", "give the option a value or drop it"),
    "E10005": ("a boolean option needs true or false", "write true or false"),
    "E10006": ("an option needs 1 or 0", "write 1 or 0"),
    "E10007": ("--framework is missing or not 0/1/3/5", "npuconv always passes --framework=5 (ONNX); check extra_args"),
    "E10009": ("more than one dynamic option was given (batch, image size, dims, shape range)",
               "keep exactly one of om.dynamic.batch / image_size / dims"),
    "E10010": ("--log has an invalid level", "use debug, info, warning, error or null"),
    "E10011": ("--input_shape has a non-positive dim (e.g. -1 without a gear option)",
               "use fixed shapes, or add om.dynamic gears for the -1 dims"),
    "E10013": ("an option value is out of range", "use a value in the documented range"),
    "E10014": ("an option value is invalid", "see the message for the option and allowed values"),
    "E10016": ("an input name in --input_shape (or a node in --out_nodes) is not in the model",
               "make inputs[].name match the ONNX input names (npuconv lint lists them)"),
    "E10017": ("a node named in --input_shape or --input_fp16_nodes is not a graph input",
               "name graph inputs only (inputs[].name), not inner nodes"),
    "E10018": ("dynamic batch: only the N axis of an input may be -1",
               "use om.dynamic.dims (with input_format ND) for other axes"),
    "E10019": ("dynamic image size: only the H and W axes may be -1", "use om.dynamic.dims for other axes"),
    "E10020": ("a --dynamic_image_size profile does not have exactly two values", "write profiles as [h, w]"),
    "E10031": ("dynamic batch is set but no input has N = -1", "npuconv writes -1 itself; check extra_args"),
    "E10035": ("too few gears (atc needs at least 2)", "list at least two gears"),
    "E10036": ("too many gears (atc allows at most 100)", "list at most 100 gears"),
    "E10037": ("gears have an inconsistent number of dims", "give every profile one value per dynamic axis"),
    "E10038": ("a gear dim is <= 0", "every gear dim must be >= 1"),
    "E10039": ("a gear is listed twice", "list each gear once"),
    "E10040": ("a gear option is set but --input_shape has no -1 (or has a ~ range)",
               "let npuconv write --input_shape from om.dynamic"),
    "E10054": ("a required option (--model, --soc_version, --output) is empty",
               "check om.soc_version and that the ONNX path exists"),
    "E10058": ("an option that needs a value was given none", "give the option a value or drop it"),
    "E10056": ("--precision_mode and --precision_mode_v2 were both given", "keep only precision_mode_v2"),
    "E16002": ("the ONNX parser has no mapping for an op type", "replace the op (npuconv lint shows it) or use a newer CANN"),
    "E16004": ("the ONNX file has no graph", "rebuild the ONNX (npuconv onnx --force)"),
    "E16005": ("the ONNX declares the ai.onnx domain more than once", "re-export the ONNX so it has one opset_import per domain"),
    "E19010": ("no ONNX parser is registered for an op (unsupported or custom op)",
               "replace the listed op types before export, or use a CANN version that supports them"),
    "EZ9010": ("no ONNX parser is registered for an op (unsupported or custom op)",
               "replace the listed op types before export, or use a CANN version that supports them"),
    "EZ0501": ("an op has no Ascend IR registered", "the op is not supported by this CANN; replace it or upgrade CANN"),
    "EZ3002": ("an op kernel rejects this op, often 'Dynamic shape is not supported on this chip'",
               "make every shape static (310-class chips have no dynamic-shape kernels); run npuconv lint"),
    "EZ3003": ("no kernel or engine on this SoC implements the op",
               "the op is not available on this chip; replace it or target another soc_version"),
    "E20001": ("compiling an op failed", "check the op's inputs in the log; try precision_mode_v2: origin or another CANN"),
    "EC0010": ("atc's op compiler (TBE) could not import a Python module",
               "install the module into the Python atc runs (the python3 first on PATH after set_env.sh)"),
    "E19999": ("an internal atc error", "rerun with extra_args: {log: debug} and send the log (~/ascend/log) to Huawei support"),
    "E89999": ("an internal atc error", "rerun with extra_args: {log: debug} and send the log (~/ascend/log) to Huawei support"),
}

_STAMP = r"(?:\[PID:\s*\d+\]\s*)?(?:\d{4}-\d{2}-\d{2}-\d{2}:\d{2}:\d{2}(?:\.\d+)*\s*)?"
_CODE = re.compile(rf"(?m)^[^\S\n]*{_STAMP}"
                   r"(?:\w+\((?P<titled>E[0-9A-Z]\d{4})\)|\[?(?P<bare>E[0-9A-Z]\d{4})\]?(?=[\s:]|$))"
                   r"[^\S\n]*:?[^\S\n]*(?P<message>.*)$")
_LEADING_STAMP = re.compile(rf"^{_STAMP}")
_OP_PATTERNS = (
    re.compile(r"Op \[([^,\]]+), optype \[([^\]]+)\]\]"),  # E19010 / EZ9010 / EZ0501
    re.compile(r"found for \[([^\]]+)\], optype \[([^\]]+)\]"),  # EZ3003
)
_KERNEL = re.compile(r"Optype \[([^\]]+)\] of Ops kernel \[([^\]]+)\] is unsupported"  # EZ3002
                     r"\.?(?:[^\S\n]*Reason:[^\S\n]*([^\n]*))?")


@dataclass(frozen=True)
class AtcError:
    """One error code from the log with its first message line and its plain meaning and fix."""

    code: str
    message: str
    meaning: str
    fix: str

    def to_json(self) -> dict:
        return {"code": self.code, "message": self.message, "meaning": self.meaning, "fix": self.fix}


@dataclass(frozen=True)
class AtcDiagnosis:
    """What an atc log says went wrong."""

    errors: tuple[AtcError, ...] = ()
    unsupported_ops: tuple[dict, ...] = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return bool(self.errors or self.unsupported_ops)

    def to_json(self) -> dict:
        return {"errors": [e.to_json() for e in self.errors], "unsupported_ops": list(self.unsupported_ops)}

    def summary(self) -> str:
        """One line per code and one for the unsupported ops."""
        lines = [f"{e.code}: {e.meaning}; fix: {e.fix}" for e in self.errors]
        if self.unsupported_ops:
            ops = ", ".join(f"{o['name']} ({o['type']})" if o["name"] else o["type"] for o in self.unsupported_ops)
            lines.append(f"unsupported ops: {ops}")
        return "\n".join(lines)


def _op_type(raw: str) -> str:
    """`ai.onnx::11::NonZero` -> `NonZero`."""
    return raw.rsplit("::", 1)[-1].strip()


def parse_log(text: str) -> AtcDiagnosis:
    """Error codes (first occurrence each, in log order) and the unsupported ops an atc log names."""
    errors: list[AtcError] = []
    seen: set[str] = set()
    for match in _CODE.finditer(text):
        code = match.group("titled") or match.group("bare")
        message = _LEADING_STAMP.sub("", match.group("message").strip(), count=1).strip()
        if code in seen:
            continue
        seen.add(code)
        meaning, fix = ERROR_CODES.get(code, ("an atc error npuconv has no explanation for",
                                              "search the code in the CANN error-code reference"))
        errors.append(AtcError(code, message, meaning, fix))
    ops: list[dict] = []
    for pattern in _OP_PATTERNS:
        for match in pattern.finditer(text):
            entry = {"name": match.group(1).strip(), "type": _op_type(match.group(2)), "raw_type": match.group(2).strip()}
            if entry not in ops:
                ops.append(entry)
    for match in _KERNEL.finditer(text):
        entry = {"name": "", "type": _op_type(match.group(1)), "raw_type": match.group(1).strip(),
                 "kernel": match.group(2).strip()}
        if match.group(3) and match.group(3).strip():
            entry["reason"] = match.group(3).strip()
        named = [o for o in ops if o["type"] == entry["type"]]
        if not named:
            ops.append(entry)
        for o in named:  # the same op type named by EZ3003: one entry with the node name and the kernel's reason
            if "kernel" not in o:
                o.update({k: v for k, v in entry.items() if k in ("kernel", "reason")})
    return AtcDiagnosis(tuple(errors), tuple(ops))

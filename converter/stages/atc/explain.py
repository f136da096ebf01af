"""What an atc log (or the captured output of a failed `--emit-script` build script) says went wrong, in
recipe terms: each error code with its meaning and fix, the unsupported ops with node names and types, the
recipe key to change, and for a refused option value what atc allows (for `--soc_version`, the closest
chips npuconv knows). `npuconv explain` renders it."""

from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass

from converter import ascend as opt
from converter.recipe.om import OmConfig
from converter.stages.atc.errors import AtcDiagnosis, AtcError, parse_log

# atc option -> the recipe key that writes it (anything else comes from om.extra_args).
OPTION_KEYS: dict[str, str] = {
    "soc_version": "om.soc_version", "input_format": "om.input_format", "input_shape": "inputs[].shape",
    "dynamic_batch_size": "om.dynamic.batch", "dynamic_image_size": "om.dynamic.image_size",
    "dynamic_dims": "om.dynamic.dims", "input_shape_range": "om.dynamic",
    "precision_mode_v2": "om.precision_mode_v2", "precision_mode": "om.precision_mode",
    "keep_dtype": "om.keep_dtype", "modify_mixlist": "om.modify_mixlist",
    "op_select_implmode": "om.op_select_implmode", "optypelist_for_implmode": "om.optypelist_for_implmode",
    "insert_op_conf": "om.aipp", "host_env_os": "om.host_env_os", "host_env_cpu": "om.host_env_cpu",
    "model": "source", "output": "output_dir",
}
# Options npuconv always writes itself: a complaint about them is about the build, not a recipe key.
_WRITTEN_BY_NPUCONV = frozenset({"framework", "mode"})

# code -> (recipe key, what to change) when the code alone says it; option codes are handled by _option_change.
CODE_CHANGES: dict[str, tuple[str, str]] = {
    "E10002": ("inputs[].shape", "give every input a full shape of integers (atc gets name:d1,d2,... per input)"),
    "E10009": ("om.dynamic", "keep exactly one of batch, image_size or dims"),
    "E10011": ("inputs[].shape", "make every dim an integer >= 1, or declare the dynamic axes with om.dynamic gears"),
    "E10016": ("inputs[].name", "use the ONNX graph's input names exactly (`npuconv lint MODEL.onnx` lists them)"),
    "E10017": ("inputs[].name", "name graph inputs only, not inner nodes"),
    "E10018": ("om.dynamic.batch", "batch gears make axis 0 dynamic only; use om.dynamic.dims for other axes"),
    "E10019": ("om.dynamic.image_size", "image-size gears make H and W dynamic only; use om.dynamic.dims otherwise"),
    "E10020": ("om.dynamic.image_size", "write each profile as [h, w]"),
    "E10031": ("om.dynamic.batch", "let npuconv write --input_shape (no input_shape in om.extra_args)"),
    "E10035": ("om.dynamic", f"list at least {opt.MIN_GEARS} gears"),
    "E10036": ("om.dynamic", f"list at most {opt.MAX_GEARS} gears"),
    "E10037": ("om.dynamic.dims", "give every profile one value per axis in om.dynamic.axes"),
    "E10038": ("om.dynamic", "every gear value must be >= 1"),
    "E10039": ("om.dynamic", "list each gear once"),
    "E10040": ("om.dynamic", "let npuconv write --input_shape from om.dynamic (no input_shape in om.extra_args)"),
    "E10056": ("om.precision_mode", "drop it and keep om.precision_mode_v2 only"),
    "E16004": ("onnx", "rebuild the ONNX: npuconv onnx RECIPE --force"),
    "E16005": ("onnx.opset", "re-export so the ONNX has one opset_import per domain"),
    "E20001": ("om.precision_mode_v2", "try origin or mixed_float16, or another om.cann_version"),
    "E19999": ("om.extra_args.log", "set it to debug, rebuild, and send the log (~/ascend/log) to Huawei support"),
    "E89999": ("om.extra_args.log", "set it to debug, rebuild, and send the log (~/ascend/log) to Huawei support"),
}
_OP_CODES = frozenset({"E16002", "E19010", "EZ9010", "EZ0501", "EZ3003"})
_PARSER_CODES = frozenset({"E16002", "E19010", "EZ9010"})
# Codes that refuse one option (or its value): the message names the option.
_OPTION_CODES = frozenset({"E10001", "E10003", "E10004", "E10005", "E10006", "E10007", "E10010", "E10013",
                           "E10014", "E10016", "E10017", "E10054", "E10058"})

_PARAM = re.compile(r"\[?--(\w+)\]?")
_VALUE = re.compile(r"Value \[?(?P<value>[^\]]*?)\]? for (?:parameter )?\[?--\w+\]? is (?:invalid|out of range)",
                    re.IGNORECASE)
_OPNAME = re.compile(r"Opname \[?(?P<value>[^\]]*?)\]? specified in", re.IGNORECASE)
_REASON = re.compile(r"Reason:\s*(?P<reason>.+)$")
_RAW_TYPE = re.compile(r"^(?P<domain>[\w.]*)::(?P<version>\d+)::(?P<type>\w+)$")
_COMPILING = re.compile(r"(?m)^atc: compiling .+ for (?P<soc>\S+), log: .+$")  # the build script's first line
_SCRIPT_RC = re.compile(r"(?m)^error: atc exited with code (?P<rc>\d+)")

# Lines of the emitted build script or of the shell around atc: (pattern, kind, fix).
_PROBLEMS: tuple[tuple[re.Pattern, str, str], ...] = (
    (re.compile(r"(?m)^error: atc not found.*$"), "environment",
     "install the CANN toolkit on the build server, or set ASCEND_TOOLKIT_HOME to it"),
    (re.compile(r"(?m)^error: ONNX model not found.*$"), "script",
     "pass the ONNX that `npuconv onnx RECIPE` wrote as the script's first argument"),
    (re.compile(r"(?m)^error: atc exited 0 without printing.*$"), "script",
     "atc stopped early without saying why; rerun with om.extra_args.log: debug"),
    (re.compile(r"(?m)^error: atc reported success but wrote no.*$"), "script",
     "check free disk space in the output directory"),
    (re.compile(r"(?m)^.*error while loading shared libraries: \S+.*$"), "environment",
     "source CANN's set_env.sh (e.g. /usr/local/Ascend/ascend-toolkit/set_env.sh) before running atc"),
)


@dataclass(frozen=True)
class RecipeChange:
    """One change to the recipe: the key, what to do, and the codes (or `ops`) that call for it."""

    key: str
    advice: str
    because: tuple[str, ...]

    def to_json(self) -> dict:
        return {"key": self.key, "advice": self.advice, "because": list(self.because)}


@dataclass(frozen=True)
class Explanation:
    """What the log says: success or failure, the codes, the ops, the changes. bool() = atc succeeded."""

    status: str  # "success" | "failed"
    diagnosis: AtcDiagnosis
    options: tuple[dict, ...]  # refused option values: option, value, reason, recipe_key, allowed, closest
    problems: tuple[dict, ...]  # script and environment lines: kind, message, fix
    changes: tuple[RecipeChange, ...]
    soc_version: str | None = None
    exit_code: int | None = None

    def __bool__(self) -> bool:
        return self.status == "success"

    def option_for(self, code: str) -> dict | None:
        return next((o for o in self.options if o["code"] == code), None)

    def to_json(self) -> dict:
        options = {o["code"]: o for o in self.options}
        return {
            "passed": bool(self), "status": self.status, "soc_version": self.soc_version,
            "atc_exit_code": self.exit_code,
            "errors": [{**e.to_json(), "option": options.get(e.code)} for e in self.diagnosis.errors],
            "unsupported_ops": list(self.diagnosis.unsupported_ops),
            "problems": list(self.problems),
            "recipe_changes": [c.to_json() for c in self.changes],
        }


def _literal_values(annotation) -> tuple[str, ...]:
    """The strings of a Literal, also inside Optional/Union (not inside containers)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return tuple(str(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return tuple(v for arg in typing.get_args(annotation) for v in _literal_values(arg))
    return ()


def allowed_values(option: str) -> tuple[str, ...] | None:
    """What atc (and the recipe) accept for an option, when it is a closed set; None otherwise."""
    key = OPTION_KEYS.get(option, "")
    field = OmConfig.model_fields.get(key.removeprefix("om.")) if key.startswith("om.") else None
    if field is not None:
        return _literal_values(field.annotation) or None
    return opt.EXTRA_OPTIONS.get(option)


def _option(error: AtcError) -> dict | None:
    """The option (and refused value) an option-level error names."""
    param = _PARAM.search(error.message)
    if param is None or error.code not in _OPTION_CODES:
        return None
    name = param.group(1)
    value = _VALUE.search(error.message) or _OPNAME.search(error.message)
    reason = _REASON.search(error.message)
    if error.code in ("E10016", "E10017") and name in ("input_shape", "input_fp16_nodes"):
        key = "inputs[].name"  # the shape is fine, the name is not
    else:
        key = None if name in _WRITTEN_BY_NPUCONV else OPTION_KEYS.get(name, f"om.extra_args.{name}")
    entry = {"code": error.code, "option": name, "value": value.group("value") if value else None,
             "reason": reason.group("reason").strip() if reason else None, "recipe_key": key,
             "allowed": None, "closest": None}
    if name == "soc_version":
        entry["closest"] = opt.closest_socs(entry["value"]) if entry["value"] else None
    else:
        allowed = allowed_values(name)
        entry["allowed"] = list(allowed) if allowed else None
    return entry


def _option_change(error: AtcError, option: dict) -> RecipeChange:
    name, key = option["option"], option["recipe_key"]
    if error.code in ("E10016", "E10017"):
        what = option["value"] or "the name atc gives"
        if name in ("input_shape", "input_fp16_nodes"):
            return RecipeChange("inputs[].name", f"{what} is not a graph input; {CODE_CHANGES['E10016'][1]}",
                                (error.code,))
        return RecipeChange(key or "om.extra_args", f"{what} is not a node of the ONNX: name one that exists",
                            (error.code,))
    if key is None:
        return RecipeChange("om.extra_args", f"npuconv writes --{name} itself: remove it from om.extra_args, "
                            "or the build script was edited by hand", (error.code,))
    if name == "soc_version":
        closest = option["closest"] or []
        hint = f"; closest known: {', '.join(closest)}" if closest else ""
        return RecipeChange(key, "use `Ascend` + the chip Name `npu-smi info` prints on the device box" + hint,
                            (error.code,))
    if name == "model":
        return RecipeChange("source", "atc got no ONNX: run `npuconv onnx RECIPE` first, or pass the ONNX path "
                            "as the build script's first argument", (error.code,))
    if option["allowed"]:
        return RecipeChange(key, f"use one of {', '.join(option['allowed'])}", (error.code,))
    if error.code in CODE_CHANGES:
        return RecipeChange(*CODE_CHANGES[error.code], (error.code,))
    return RecipeChange(key, "fix the value" + (f": {option['reason']}" if option["reason"] else ""), (error.code,))


def _ez3002_change(ops: list[dict], soc: str | None) -> RecipeChange:
    reasons = " ".join(o.get("reason", "") for o in ops).lower()
    types = ", ".join(dict.fromkeys(o["type"] for o in ops))
    if "data type" in reasons and "dynamic shape is not supported" not in reasons:
        return RecipeChange("om.precision_mode_v2", f"the kernel of {types} has no implementation for this dtype: "
                            "leave om.precision_mode_v2 unset (fp16) or use mixed_float16 instead of origin, and drop "
                            "these ops from om.keep_dtype", ("EZ3002",))
    static = ""
    if soc and opt.soc_family(soc) in opt.STATIC_ONLY_FAMILIES:
        static = f" ({soc} is a 310-class chip: no dynamic-shape kernels)"
    return RecipeChange("inputs[].shape / om.dynamic", f"make every shape static{static}: fixed inputs[].shape, no "
                        f"om.dynamic; if {types} computes its output shape from the data, replace it: `npuconv lint "
                        "--strict` shows what stays dynamic", ("EZ3002",))


def _op_changes(diagnosis: AtcDiagnosis, codes: set[str], soc: str | None) -> list[RecipeChange]:
    changes: list[RecipeChange] = []
    ops = [o for o in diagnosis.unsupported_ops if "kernel" not in o]
    max_opset = max(hi for _, hi in opt.OPSET_RANGES.values())
    too_new = sorted({f"{m['type']} (opset {m['version']})" for o in ops
                      if (m := _RAW_TYPE.match(o["raw_type"])) and m["domain"] in ("", "ai.onnx")
                      and int(m["version"]) > max_opset})
    if too_new:
        changes.append(RecipeChange(
            "onnx.opset", f"atc parses ai.onnx opsets up to {max_opset}; {', '.join(too_new)} need a lower "
            f"onnx.opset (<= {max_opset})", tuple(sorted(codes & _PARSER_CODES)) or ("ops",)))
    if ops:
        listed = ", ".join(f"{o['name']} ({o['type']})" if o["name"] else o["type"] for o in ops)
        elsewhere = ("; or target a chip that has them (om.soc_version)" if "EZ3003" in codes
                     else "; or a CANN that parses them (om.cann_version)")
        changes.append(RecipeChange(
            "the model's ops", f"replace or remove {listed} before atc (`npuconv lint` on the ONNX shows them in "
            f"context){elsewhere}",
            tuple(sorted(codes & _OP_CODES)) or ("ops",)))
    kernel_ops = [o for o in diagnosis.unsupported_ops if "kernel" in o]
    if kernel_ops:
        changes.append(_ez3002_change(kernel_ops, soc))
    return changes


def _problems(text: str, has_codes: bool) -> list[dict]:
    found = []
    for pattern, kind, fix in _PROBLEMS:
        for match in pattern.finditer(text):
            found.append({"kind": kind, "message": match.group(0).strip(), "fix": fix})
    rc = _SCRIPT_RC.search(text)
    if rc and int(rc["rc"]) == 137:
        found.append({"kind": "environment", "message": rc.group(0).strip(),
                      "fix": "atc was killed (SIGKILL), usually out of memory: give the build at least 2 GB free"})
    elif rc:
        fix = ("the error codes above say why" if has_codes else
               "atc printed no error code: rerun with om.extra_args.log: debug and read the whole log")
        found.append({"kind": "script", "message": rc.group(0).strip(), "fix": fix})
    return found


def explain(text: str) -> Explanation | None:
    """The explanation of an atc log or build-script output; None when the text shows no atc run at all."""
    diagnosis = parse_log(text)
    problems = _problems(text, bool(diagnosis.errors))
    script_rc = _SCRIPT_RC.search(text)
    failed = opt.FAILURE_MARKER in text or bool(diagnosis) or bool(problems)
    if not failed and opt.SUCCESS_MARKER not in text:
        return None
    compiling = _COMPILING.search(text)
    soc = compiling["soc"] if compiling else None
    options: list[dict] = []
    changes: list[RecipeChange] = []
    codes = {e.code for e in diagnosis.errors}
    for error in diagnosis.errors:
        option = _option(error)
        if option is not None:
            options.append(option)
            changes.append(_option_change(error, option))
        elif error.code in CODE_CHANGES:
            changes.append(RecipeChange(*CODE_CHANGES[error.code], (error.code,)))
    changes += _op_changes(diagnosis, codes, soc)
    merged: dict[tuple[str, str], RecipeChange] = {}
    for c in changes:
        prev = merged.get((c.key, c.advice))
        merged[(c.key, c.advice)] = c if prev is None else RecipeChange(c.key, c.advice, prev.because + c.because)
    return Explanation("failed" if failed else "success", diagnosis, tuple(options), tuple(problems),
                       tuple(merged.values()), soc, int(script_rc["rc"]) if script_rc else None)

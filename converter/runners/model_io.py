"""The inputs a source model declares (name, shape with None for dynamic dims, dtype), read from the
files without importing paddle: ONNX graph inputs, a Paddle 3 PIR program (`inference.json`), or a legacy
`.pdmodel` ProgramDesc (parsed with Paddle's own framework.proto module, loaded on its own)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

# framework.proto VarType.Type values of dense tensors -> numpy dtype names
_PROTO_DTYPES = {"BOOL": "bool", "INT16": "int16", "INT32": "int32", "INT64": "int64", "FP16": "float16",
                 "FP32": "float32", "FP64": "float64", "UINT8": "uint8", "INT8": "int8", "BF16": "bfloat16"}


def declared_inputs(model_file: Path) -> list[dict] | None:
    """[{name, shape, dtype}] of the model's inputs, or None when the format cannot be read here."""
    suffix = model_file.suffix.lower()
    try:
        if suffix == ".onnx":
            return _onnx_inputs(model_file)
        if suffix == ".json":
            return _pir_inputs(model_file)
        if suffix == ".pdmodel":
            return _pdmodel_inputs(model_file)
    except (ImportError, OSError, ValueError, KeyError, TypeError, IndexError):
        return None  # unreadable here: the exporter will say what is wrong
    return None


def _onnx_inputs(path: Path) -> list[dict]:
    import onnx

    from converter.passes.graphinfo import io_specs

    inputs, _ = io_specs(onnx.load(str(path), load_external_data=False))
    return [{**i, "shape": [d if isinstance(d, int) and d > 0 else None for d in i["shape"]]} for i in inputs]


def _pir_inputs(path: Path) -> list[dict]:
    program = json.loads(path.read_text(encoding="utf-8"))["program"]
    out = []
    for op in program["regions"][0]["blocks"][0]["ops"]:
        if not str(op.get("#", "")).endswith(".data"):
            continue
        attrs = {a["N"]: a["AT"]["D"] for a in op.get("A", []) if isinstance(a, dict)}
        out.append({"name": attrs["name"], "shape": [d if d > 0 else None for d in attrs["shape"]],
                    "dtype": str(attrs["dtype"])})
    return out


def _framework_proto():
    spec = importlib.util.find_spec("paddle")
    if spec is None or spec.origin is None:
        raise ValueError("paddle is not installed")
    proto = Path(spec.origin).parent / "base" / "proto" / "framework_pb2.py"
    loader_spec = importlib.util.spec_from_file_location("_npuconv_framework_pb2", proto)
    module = importlib.util.module_from_spec(loader_spec)
    loader_spec.loader.exec_module(module)  # protobuf only; importing paddle would cost seconds
    return module


def _pdmodel_inputs(path: Path) -> list[dict]:
    pb = _framework_proto()
    program = pb.ProgramDesc()
    program.ParseFromString(path.read_bytes())
    block = program.blocks[0]
    variables = {v.name: v for v in block.vars}
    out = []
    for op in block.ops:
        if op.type != "feed":
            continue
        var = variables[op.outputs[0].arguments[0]]
        tensor = var.type.dense_tensor.tensor
        dtype = pb.VarType.Type.Name(tensor.data_type)
        out.append({"name": var.name, "shape": [d if d > 0 else None for d in tensor.dims],
                    "dtype": _PROTO_DTYPES.get(dtype, dtype.lower())})
    return out


def check_recipe_inputs(declared: list[dict] | None, specs, where: str) -> None:
    """Refuse recipe inputs whose names, ranks, fixed dims or dtypes the model contradicts."""
    from converter.errors import InputError

    if declared is None:
        return
    by_name = {d["name"]: d for d in declared}
    real = ", ".join(f"{d['name']}{[x if x else -1 for x in d['shape']]} {d['dtype']}" for d in declared)
    for spec in specs:
        have = by_name.get(spec.name)
        if have is None:
            raise InputError(f"the recipe names input '{spec.name}', but {where} has: {real}",
                             hint="use the model's input names in `inputs[].name`")
        if have["dtype"] != spec.dtype:
            raise InputError(f"input '{spec.name}': the recipe says dtype {spec.dtype}, {where} declares {have['dtype']}",
                             hint=f"set inputs[{spec.name}].dtype: {have['dtype']}")
    missing = [d["name"] for d in declared if d["name"] not in {s.name for s in specs}]
    if missing:
        raise InputError(f"the recipe gives no shape for model input(s) {missing} (model inputs: {real})",
                         hint="add an `inputs:` entry with its fixed shape for each")

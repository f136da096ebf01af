"""Helpers shared by the om / lint / doctor tests (paths, the fake atc record, tiny ONNX models)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FAKE_ATC_DIR = HERE / "fake_atc"
MODELS = REPO / "models"


def atc_calls(record: Path) -> list[dict]:
    """Every recorded fake-atc call."""
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines()]


def conv_model(path: Path, inputs=(("x", ["N", 3, 16, 16]),), opset: int = 14) -> Path:
    """x -> Conv(3->4) -> Relu (-> + y when a second input `y` [N, 4] is given, broadcast over H, W)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype("float32"), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv0"),
             helper.make_node("Relu", ["c"], ["r"], name="relu0")]
    graph_inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs]
    inits = [w]
    out = "r"
    if any(n == "y" for n, _ in inputs):
        inits.append(numpy_helper.from_array(np.array([0, 4, 1, 1], dtype="int64"), "yshape"))
        nodes += [helper.make_node("Reshape", ["y", "yshape"], ["y4"], name="reshape_y"),
                  helper.make_node("Add", ["r", "y4"], ["s"], name="add0")]
        out = "s"
    graph = helper.make_graph(nodes, "tiny", graph_inputs,
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["N", 4, 16, 16])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="tests")
    model.ir_version = 8
    save(model, str(path))
    return path


def needs_models(*names: str):
    """Skip (with the reason) when the real PP-OCRv4 models are not unpacked."""
    missing = [n for n in names if not (MODELS / n).is_dir()]
    return pytest.mark.skipif(bool(missing), reason=f"real models missing: {missing} (run `make models`)")

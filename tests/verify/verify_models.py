"""Small ONNX models built in code for the verify tests."""

from __future__ import annotations

from pathlib import Path


def make_overflow_onnx(path: Path) -> Path:
    """x [1, 8] in [100, 200) -> fc1 (MatMul by 100s: ~1.2e5, beyond fp16's 65504) -> scale (x 1e-3: back
    to ~120) -> act (Relu) -> head (MatMul by 1e-3: ~1). In fp32 all is finite; in fp16 fc1's output is Inf
    and flows through scale, act and head."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("MatMul", ["x", "W1"], ["h1"], name="fc1"),
             helper.make_node("Mul", ["h1", "s"], ["h2"], name="scale"),
             helper.make_node("Relu", ["h2"], ["h3"], name="act"),
             helper.make_node("MatMul", ["h3", "W2"], ["y"], name="head")]
    inits = [numpy_helper.from_array(np.full((8, 8), 100.0, np.float32), "W1"),
             numpy_helper.from_array(np.full((8, 4), 1e-3, np.float32), "W2"),
             numpy_helper.from_array(np.array(1e-3, np.float32), "s")]
    graph = helper.make_graph(nodes, "overflow", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path

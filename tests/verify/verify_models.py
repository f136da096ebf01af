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


def make_multi_output_paddle(out_dir: Path) -> Path:
    """A real Paddle model whose ops have several float outputs: x [N, 10, 8] -> Linear -> split in two
    -> LSTM on one half (outputs y, h, c), GRU on the other (y, h) -> (Linear of both sequences
    [N, 10, 5], h_lstm + h_gru [1, N, 12]). paddle2onnx writes Split, LSTM and GRU nodes."""
    import paddle
    from paddle import nn
    from paddle_models import save_static

    class MultiOutput(nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(8, 16)
            self.lstm = nn.LSTM(8, 12)
            self.gru = nn.GRU(8, 12)
            self.head = nn.Linear(24, 5)

        def forward(self, x):
            a, b = paddle.split(self.proj(x), 2, axis=-1)
            y1, (h1, _c1) = self.lstm(a)
            y2, h2 = self.gru(b)
            return self.head(paddle.concat([y1, y2], axis=-1)), h1 + h2

    paddle.seed(0)
    return save_static(MultiOutput(), [paddle.static.InputSpec([None, 10, 8], "float32", "x")], out_dir)

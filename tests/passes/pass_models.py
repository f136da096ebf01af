"""Small real Paddle models with the patterns the rewrite passes handle, built at test time and exported
with the working set's paddle2onnx (in one subprocess: paddle2onnx may abort the process it runs in)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from paddle_models import save_static

_EXPORT = """
import json, sys, paddle2onnx
for job in json.loads(sys.argv[1]):
    paddle2onnx.export(job["model"], job["params"], job["out"], opset_version=job["opset"],
                       auto_upgrade_opset=True, enable_onnx_checker=True, optimize_tool="None")
"""


def where_loop(out_dir: Path) -> Path:
    """A loop with a constant bound (5 steps, to_static's while form: no trip count, a carried counter)
    whose body selects between bool tensors with paddle.where, plus one bool where after it: paddle2onnx
    writes `Where` on bool tensors, which ONNX Runtime refuses."""
    import paddle
    from paddle import nn

    class WhereLoop(nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            h = x
            seen = paddle.zeros([1, 4], dtype="bool")
            for _ in range(paddle.to_tensor(5)):  # a tensor bound, or to_static unrolls it itself
                h = paddle.tanh(self.fc(h))
                seen = paddle.where(h > 0.3, paddle.ones_like(seen), seen)
            return h, seen, paddle.where(x > 0, seen, h < 0)

    paddle.seed(0)
    return save_static(WhereLoop(), [paddle.static.InputSpec([1, 4], "float32", "x")], out_dir)


def const_if(out_dir: Path) -> Path:
    """An `if` on a tensor condition that is constant (2.0 > 1.0): paddle2onnx writes an If whose
    condition is computed from constants; both branches read the input."""
    import paddle
    from paddle import nn

    class ConstIf(nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            if paddle.full([1], 2.0) > 1.0:
                y = self.fc(x) * 2.0
            else:
                y = x + 1.0
            return y

    paddle.seed(0)
    return save_static(ConstIf(), [paddle.static.InputSpec([2, 4], "float32", "x")], out_dir)


def eos_loop(out_dir: Path) -> Path:
    """A decoder-like loop that stops at an end token: a token history written at the step counter, argmax
    fed back through one-hot, `break` once every row holds token 3. Its condition depends on the data."""
    import paddle
    from paddle import nn

    class EosLoop(nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.cell = nn.Linear(4 + 6, 4)
            self.out = nn.Linear(4, 6)

        def forward(self, x):
            h = x
            prev = paddle.zeros([1], dtype="int64")
            ids = paddle.zeros([1, 8], dtype="int32")
            for i in range(paddle.to_tensor(7) + 1):
                step_in = paddle.concat([h, nn.functional.one_hot(prev, 6)], axis=-1)
                h = paddle.tanh(self.cell(step_in))
                prev = paddle.argmax(self.out(h), axis=-1)
                ids[:, i] = prev.astype("int32")
                if (ids == 3).any(-1).all():
                    break
            return h, ids

    paddle.seed(0)
    return save_static(EosLoop(), [paddle.static.InputSpec([1, 4], "float32", "x")], out_dir)


def one_hot(out_dir: Path) -> Path:
    """argmax -> one_hot -> linear (OneHot on int64 indices) and int64 arithmetic on the argmax, one
    result of which is an int64 model output."""
    import paddle
    from paddle import nn

    class OneHot(nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 6)
            self.emb = nn.Linear(6, 3)

        def forward(self, x):
            ids = paddle.argmax(self.fc(x), axis=-1)
            pos = ids + paddle.argmin(self.fc(x), axis=-1)  # int64 Add of two values in [0, 5]
            return self.emb(nn.functional.one_hot(ids, 6)), pos * pos

    paddle.seed(0)
    return save_static(OneHot(), [paddle.static.InputSpec([2, 4], "float32", "x")], out_dir)


def block(out_dir: Path) -> Path:
    """A transformer-ish block: LayerNorm, Linear, hardswish, split in two, mean/max/sum reductions and a
    reshape with a 0 dim. Exported at opset 18, paddle2onnx writes LayerNormalization (17), HardSwish (14),
    Split with num_outputs and ReduceMean/ReduceMax with axes inputs (18), Reshape with allowzero (14)."""
    import paddle
    from paddle import nn

    class Block(nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.ln = nn.LayerNorm(8)
            self.fc = nn.Linear(8, 8)

        def forward(self, x):
            y = nn.functional.hardswish(self.fc(self.ln(x)))
            a, b = paddle.split(y, 2, axis=-1)
            z = a * b - y.mean(axis=-1, keepdim=True) + y.max(axis=1, keepdim=True).sum(axis=-1, keepdim=True)
            return z.reshape([0, -1])

    paddle.seed(0)
    return save_static(Block(), [paddle.static.InputSpec([2, 3, 8], "float32", "x")], out_dir)


BUILDERS = {"where_loop": where_loop, "const_if": const_if, "eos_loop": eos_loop, "one_hot": one_hot, "block": block}
OPSETS = {"block": 18}  # the opset to ask paddle2onnx for (default 11)


def export_all(model_dirs: dict[str, Path], out_dir: Path, model_file: str = "inference.json") -> dict[str, Path]:
    """paddle2onnx every model (in one subprocess); returns name -> .onnx path."""
    jobs = [{"model": str(d / model_file), "params": str(d / "inference.pdiparams"),
             "out": str(out_dir / f"{name}.onnx"), "opset": OPSETS.get(name, 11)} for name, d in model_dirs.items()]
    proc = subprocess.run([sys.executable, "-c", _EXPORT, json.dumps(jobs)], capture_output=True, text=True, timeout=600)
    paths = {name: out_dir / f"{name}.onnx" for name in model_dirs}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if proc.returncode != 0 or missing:
        raise RuntimeError(f"paddle2onnx failed (rc {proc.returncode}), missing {missing}:\n{proc.stderr[-2000:]}")
    return paths

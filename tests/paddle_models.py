"""Small real Paddle models, built at test time with paddle.jit.save (Paddle 3 writes inference.json +
inference.pdiparams). Each has the dynamic dims its real counterpart has."""

from __future__ import annotations

from pathlib import Path


def save_static(layer, specs, out_dir: Path) -> Path:
    """paddle.jit.to_static + paddle.jit.save of an eval-mode layer into out_dir/inference.*."""
    import paddle

    paddle.seed(0)
    layer.eval()
    static = paddle.jit.to_static(layer, input_spec=specs, full_graph=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    paddle.jit.save(static, str(out_dir / "inference"))
    return out_dir


def crnn(out_dir: Path) -> Path:
    """CRNN-like recognizer: x [N, 3, 32, W] -> [N, W/4, 11], dynamic batch and width."""
    import paddle
    from paddle import nn

    class Crnn(nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2D(3, 8, 3, padding=1)
            self.bn = nn.BatchNorm2D(8)
            self.conv2 = nn.Conv2D(8, 16, 3, padding=1)
            self.pool = nn.MaxPool2D(2, 2)
            self.head = nn.Linear(16 * 8, 11)

        def forward(self, x):
            y = self.pool(nn.functional.relu(self.bn(self.conv1(x))))
            y = self.pool(nn.functional.hardswish(self.conv2(y)))  # hardswish: paddle2onnx raises opset to 14
            y = y.transpose([0, 3, 1, 2]).flatten(2)  # [N, W/4, C*H/4]
            return nn.functional.softmax(self.head(y), axis=-1)

    paddle.seed(0)
    return save_static(Crnn(), [paddle.static.InputSpec([None, 3, 32, None], "float32", "x")], out_dir)


def fcn(out_dir: Path) -> Path:
    """Segmentation-style FCN: x [N, 3, H, W] -> [N, 1, H, W] probabilities, dynamic H and W."""
    import paddle
    from paddle import nn

    class Fcn(nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv2D(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2D(8, 8, 3, stride=2, padding=1), nn.ReLU())
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
            self.out = nn.Conv2D(8, 1, 1)

        def forward(self, x):
            return nn.functional.sigmoid(self.out(self.up(self.body(x))))

    paddle.seed(0)
    return save_static(Fcn(), [paddle.static.InputSpec([None, 3, None, None], "float32", "x")], out_dir)


def two_inputs(out_dir: Path) -> Path:
    """Two inputs, two outputs: image [N, 3, 16, 16] and features [N, 10] -> ([N, 4], [N, 10])."""
    import paddle
    from paddle import nn

    class TwoInputs(nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2D(3, 4, 3, padding=1)
            self.fc = nn.Linear(10, 4)

        def forward(self, image, features):
            pooled = self.conv(image).mean(axis=[2, 3])
            return pooled + self.fc(features), features * 2.0

    paddle.seed(0)
    specs = [paddle.static.InputSpec([None, 3, 16, 16], "float32", "image"),
             paddle.static.InputSpec([None, 10], "float32", "features")]
    return save_static(TwoInputs(), specs, out_dir)


def adaptive_pool(out_dir: Path) -> Path:
    """A model paddle2onnx cannot export with dynamic H/W (it aborts the process: 'Adaptive only support
    static input shape')."""
    import paddle
    from paddle import nn

    class Adaptive(nn.Layer):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2D(3, 4, 3)
            self.pool = nn.AdaptiveAvgPool2D((3, 5))

        def forward(self, x):
            return self.pool(self.conv(x))

    paddle.seed(0)
    return save_static(Adaptive(), [paddle.static.InputSpec([None, 3, None, None], "float32", "x")], out_dir)

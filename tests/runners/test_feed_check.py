"""Every runner checks its feed in the base class, against what the model declares: the same bad input is
the same InputError (exit 2 at the CLI) on ONNX Runtime and Paddle Inference, before the backend runs."""

from __future__ import annotations

import numpy as np
import pytest

from converter.errors import InputError
from converter.runners.base import dtype_of
from converter.runners.onnxruntime import OnnxRuntimeRunner
from converter.runners.paddle import PaddleRunner

GOOD = np.zeros((2, 3, 32, 48), np.float32)  # crnn: x [N, 3, 32, W] float32, N and W dynamic
BAD = [
    ({"y": GOOD}, "the feed lacks ['x']"),
    ({"x": GOOD, "extra": GOOD}, "inputs the model does not take: ['extra']"),
    ({"x": GOOD.astype(np.float64)}, "float64 given, the {} model takes float32"),
    ({"x": np.zeros((2, 4, 32, 48), np.float32)}, "shape [2, 4, 32, 48] given, the {} model takes ['?', 3, 32, '?']"),
    ({"x": np.zeros((3, 32, 48), np.float32)}, "shape [3, 32, 48] given"),
]


@pytest.fixture(scope="module")
def crnn_onnx(paddle_models, tmp_path_factory):
    """The crnn model through paddle2onnx (in the onnx stage's worker process), batch and width left dynamic."""
    from converter.stages.paddle_export import PaddleExport

    src = paddle_models["crnn"]
    job = PaddleExport(src / "inference.json", src / "inference.pdiparams", 14, tmp_path_factory.mktemp("crnn-onnx"), None)
    try:
        return job.wait_exported()
    finally:
        job.close()


def runners(paddle_models, crnn_onnx):
    src = paddle_models["crnn"]
    return [OnnxRuntimeRunner(crnn_onnx), PaddleRunner(src / "inference.json", src / "inference.pdiparams", threads=1)]


@pytest.mark.parametrize("feed, message", BAD, ids=["missing", "unknown", "dtype", "static-dim", "rank"])
def test_bad_feed_is_the_same_input_error_on_every_backend(paddle_models, crnn_onnx, feed, message):
    for runner in runners(paddle_models, crnn_onnx):
        with runner:
            with pytest.raises(InputError) as exc:
                runner.infer(feed)
            assert message.format(runner.name) in str(exc.value), runner.name
            assert exc.value.hint
            with pytest.raises(InputError):
                runner.bind(feed)  # bench's timed call is checked the same way, once


def test_dynamic_dims_accept_any_size_and_backends_agree(paddle_models, crnn_onnx):
    feed = {"x": np.random.default_rng(0).uniform(-1, 1, (3, 3, 32, 40)).astype(np.float32)}
    ort, paddle = runners(paddle_models, crnn_onnx)
    with ort, paddle:
        (a,), (b,) = ort.infer(feed).values(), paddle.infer(feed).values()
        assert a.shape == b.shape == (3, 10, 11)
        np.testing.assert_allclose(a, b, atol=1e-5)
        assert [i.shape for i in paddle.input_infos()] == [(-1, 3, 32, -1)]  # declared, not the last feed


@pytest.mark.parametrize("spelling, dtype", [
    ("tensor(float)", "float32"), ("tensor(int64)", "int64"), ("DataType.FLOAT32", "float32"),
    ("FLOAT16", "float16"), ("tensor(bool)", "bool"), ("tensor(string)", None),
])
def test_backend_dtype_spellings(spelling, dtype):
    assert dtype_of(spelling) == (np.dtype(dtype) if dtype else None)

"""Helpers of the pass tests (conftest holds the fixtures): load, run with ONNX Runtime or Paddle
Inference, seeded feeds, one pass run the way the registry runs it, op counts, exact comparison."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from converter.passes import registry
from converter.passes.base import ModelSet


def load(path: Path) -> onnx.ModelProto:
    return onnx.load(str(path))


def ort_run(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feed)


def paddle_run(model_dir: Path, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    from converter.runners.paddle import PaddleRunner

    model_file = next(p for p in (model_dir / "inference.json", model_dir / "inference.pdmodel") if p.is_file())
    with PaddleRunner(model_file, model_dir / "inference.pdiparams", threads=1) as runner:
        return list(runner.infer(feed).values())


def seeded_feed(model: onnx.ModelProto, seed: int = 0, low: float = -1.0, high: float = 1.0) -> dict[str, np.ndarray]:
    """Uniform float inputs of the model's declared (static) shapes."""
    rng = np.random.default_rng(seed)
    inits = {i.name for i in model.graph.initializer}
    feed = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        feed[vi.name] = rng.uniform(low, high, shape).astype(np.float32)
    return feed


def run_pass(name: str, model: onnx.ModelProto, section=None, role: str = "model", loop=None):
    """Run one registered pass the way the registry does; returns (models, record)."""
    p = registry.get(name)
    models = ModelSet({role: model}, loop)
    out, records, _, _ = registry.apply(models, [(p, p.configure(section))])
    return out, records[0]


def op_count(model: onnx.ModelProto, op: str) -> int:
    """`op` nodes over the graph and every subgraph."""
    return ModelSet.single(model).op_counts()[op]


def assert_same(expected: list[np.ndarray], actual: list[np.ndarray], atol: float = 0.0) -> None:
    assert len(expected) == len(actual)
    for e, a in zip(expected, actual):
        assert e.shape == a.shape and e.dtype == a.dtype, (e.shape, e.dtype, a.shape, a.dtype)
        if atol:
            np.testing.assert_allclose(a, e, rtol=0, atol=atol)
        else:
            np.testing.assert_array_equal(a, e)

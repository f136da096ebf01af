"""Fixtures of the pass tests: small real Paddle models exported with paddle2onnx, ONNX Runtime and Paddle
Inference runners, seeded feeds, and the real SLANet-plus export (`make models`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest

from converter.passes import registry
from converter.passes.base import ModelSet

REPO = Path(__file__).resolve().parents[2]
REAL_MODELS = Path(os.environ.get("NPUCONV_MODELS", REPO / "models"))


@pytest.fixture(scope="session")
def paddle_dirs(tmp_path_factory) -> dict[str, Path]:
    """name -> Paddle inference model dir, for every model in pass_models.BUILDERS."""
    import pass_models

    root = tmp_path_factory.mktemp("pass-paddle")
    return {name: build(root / name) for name, build in pass_models.BUILDERS.items()}


@pytest.fixture(scope="session")
def exported(paddle_dirs, tmp_path_factory) -> dict[str, Path]:
    """name -> the raw paddle2onnx export (opset 11 requested) of each model."""
    import pass_models

    return pass_models.export_all(paddle_dirs, tmp_path_factory.mktemp("pass-onnx"))


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


@pytest.fixture(scope="session")
def slanet_dir() -> Path:
    """The real SLANet-plus inference model (`make models`); missing: skipped here, a failure in CI."""
    path = REAL_MODELS / "slanet_plus"
    if not (path / "inference.pdiparams").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"SLANet-plus missing under {REAL_MODELS} in CI")
        pytest.skip(f"SLANet-plus not found under {REAL_MODELS}: run `make models`")
    return path


@pytest.fixture(scope="session")
def slanet_raw(slanet_dir, tmp_path_factory) -> Path:
    """SLANet-plus exported by paddle2onnx as the onnx stage does (opset 11 requested, 17 written)."""
    import pass_models

    out = tmp_path_factory.mktemp("slanet")
    return pass_models.export_all({"slanet": slanet_dir}, out, model_file="inference.pdmodel")["slanet"]

"""Fixtures of the pass tests: small real Paddle models built and exported with paddle2onnx at test time,
and the real SLANet-plus model and its raw export (`make models`; skipped without it, a failure in CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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

"""Shared fixtures: small real Paddle models built once per session, recipe writing, and a CLI runner
that runs `npuconv` in a subprocess (real exit codes, real stdout/stderr separation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REAL_MODELS = Path(os.environ.get("NPUCONV_MODELS", REPO / "models"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_support import CliResult  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def session_cache(tmp_path_factory) -> Path:
    """Every test run gets its own stage cache (tests that need an empty one monkeypatch their own)."""
    path = tmp_path_factory.mktemp("npuconv-cache")
    os.environ["NPUCONV_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def paddle_models(tmp_path_factory) -> dict[str, Path]:
    """crnn (dynamic width), fcn (dynamic H/W), two_inputs, adaptive_pool (paddle2onnx aborts on it)."""
    import paddle_models as pm

    root = tmp_path_factory.mktemp("paddle-models")
    return {name: getattr(pm, name)(root / name) for name in ("crnn", "fcn", "two_inputs", "adaptive_pool")}


SMALL_INPUTS = {
    "crnn": [{"name": "x", "shape": [1, 3, 32, 64], "range": [-1.0, 1.0]}],
    "fcn": [{"name": "x", "shape": [1, 3, 64, 96]}],
    "two_inputs": [{"name": "image", "shape": [2, 3, 16, 16]}, {"name": "features", "shape": [2, 10], "range": [-3, 3]}],
    "adaptive_pool": [{"name": "x", "shape": [1, 3, 32, 32]}],
}


@pytest.fixture
def make_recipe(tmp_path):
    """Write a recipe YAML under tmp_path. `model` names a small model (its dir and inputs are filled in)
    or `text` gives the whole YAML."""

    def make(model: str | None = None, model_dir: Path | None = None, text: str | None = None,
             name: str = "recipe.yaml", **sections) -> Path:
        path = tmp_path / name
        if text is None:
            data = {"name": model, "source": {"format": "paddle", "model_dir": str(model_dir)},
                    "inputs": SMALL_INPUTS[model], "output_dir": str(tmp_path / "out"), **sections}
            text = json.dumps(data)  # JSON is YAML
        path.write_text(textwrap.dedent(text))
        return path

    return make


@pytest.fixture
def run_cli():
    """Run `npuconv ARGS...` as a user would, in a subprocess."""

    def run(*args: str, env: dict | None = None, cwd: Path | None = None) -> CliResult:
        proc = subprocess.run(
            [sys.executable, "-m", "converter", *map(str, args)],
            capture_output=True, text=True, cwd=cwd or REPO,
            env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=600,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    return run


@pytest.fixture(scope="session")
def real_models() -> Path:
    """The real PP-OCRv4 inference models (`make models`)."""
    if not (REAL_MODELS / "ch_PP-OCRv4_rec_infer" / "inference.pdiparams").is_file():
        if os.environ.get("CI"):  # CI fetches them (`make test` depends on `make models`): never skip there
            pytest.fail(f"real PP-OCRv4 models missing under {REAL_MODELS} in CI")
        pytest.skip(f"real PP-OCRv4 models not found under {REAL_MODELS}: run `make models`")
    return REAL_MODELS

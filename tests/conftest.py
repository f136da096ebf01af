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


FAKE_AIS_BENCH = '''\
"""FAKE ais_bench for tests only: the real one needs an Ascend NPU. The "OM" it loads is an ONNX file,
run by ONNX Runtime; output names are atc-style ("output_0") so that verify must pair them by position.
Every call is logged to $FAKE_AIS_BENCH_LOG."""
import json, os
import numpy as np
import onnxruntime as ort


def _log(event, **data):
    with open(os.environ["FAKE_AIS_BENCH_LOG"], "a") as f:
        f.write(json.dumps({"event": event, **data}) + "\\n")


def _dtype(ort_type):
    name = ort_type.removeprefix("tensor(").removesuffix(")")
    return {"float": "FLOAT32", "double": "FLOAT64"}.get(name, name.upper())


class _Desc:
    def __init__(self, name, shape, datatype):
        self.name, self.shape, self.datatype = name, shape, datatype


class InferSession:
    def __init__(self, device_id, model_path, acl_json_path=None, debug=False, loop=1):
        self._s = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
        _log("load", device_id=device_id, model_path=model_path)

    def get_inputs(self):  # ais_bench spells dtypes like FLOAT32, INT64
        return [_Desc(i.name, i.shape, _dtype(i.type)) for i in self._s.get_inputs()]

    def get_outputs(self):
        return [_Desc(f"output_{k}", o.shape, "FLOAT32") for k, o in enumerate(self._s.get_outputs())]

    def infer(self, feeds, mode="static", custom_sizes=100000, out_array=True):
        _log("infer", mode=mode, shapes=[list(np.shape(f)) for f in feeds], dtypes=[str(np.asarray(f).dtype) for f in feeds])
        names = [i.name for i in self._s.get_inputs()]
        return self._s.run(None, dict(zip(names, feeds)))

    def free_resource(self):
        _log("free")
'''


@pytest.fixture
def fake_ais_bench(tmp_path) -> dict:
    """Environment for a subprocess that finds the FAKE ais_bench package (see FAKE_AIS_BENCH)."""
    root = tmp_path / "fake_site"
    pkg = root / "ais_bench" / "infer"
    pkg.mkdir(parents=True)
    (root / "ais_bench" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "interface.py").write_text(FAKE_AIS_BENCH)
    log = tmp_path / "ais_bench.log"
    return {"PYTHONPATH": str(root), "FAKE_AIS_BENCH_LOG": str(log)}

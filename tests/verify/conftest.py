"""Fixtures of the verify tests: recipes for the real PP-OCRv4 models, a toy ONNX whose middle activation
overflows fp16, a folder of rendered text lines, and a fake ais_bench package (the NPU runtime cannot
exist here)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from verify_models import make_multi_output_paddle, make_overflow_onnx

REPO = Path(__file__).resolve().parents[2]
RECIPES = {"rec": "ppocrv4_rec", "det": "ppocrv4_det", "cls": "ppocr_cls"}
MODEL_DIRS = {"rec": "ch_PP-OCRv4_rec_infer", "det": "ch_PP-OCRv4_det_infer", "cls": "ch_ppocr_mobile_v2_cls_infer"}
SHAPES = {"rec": [1, 3, 48, 320], "det": [1, 3, 640, 640], "cls": [1, 3, 48, 192]}


@pytest.fixture
def real_recipe(real_models, tmp_path):
    """Write a recipe for a real model ("rec", "det", "cls") under tmp_path, built from the shipped
    recipe's inputs and preprocess sections; `sections` add or replace top-level keys."""
    import yaml

    def make(kind: str, name: str = "recipe.yaml", **sections) -> Path:
        shipped = yaml.safe_load((REPO / "recipes" / f"{RECIPES[kind]}.yaml").read_text())
        data = {
            "name": shipped["name"],
            "source": {**shipped["source"], "model_dir": str(real_models / MODEL_DIRS[kind])},
            "inputs": shipped["inputs"],
            "preprocess": shipped["preprocess"],
            "output_dir": str(tmp_path / "out"),
            **sections,
        }
        path = tmp_path / name
        path.write_text(json.dumps(data))
        return path

    return make


@pytest.fixture
def ctc_dict(real_models) -> Path:
    return real_models / "ppocr_keys_v1.txt"


@pytest.fixture
def overflow_recipe(tmp_path):
    """A recipe over the overflow toy; `low`/`high` set the declared input range, `om` the om section."""

    def make(low: float = 100.0, high: float = 200.0, om: str = "{soc_version: Ascend310P3}", extra: str = "") -> Path:
        make_overflow_onnx(tmp_path / "overflow.onnx")
        path = tmp_path / "overflow.yaml"
        path.write_text(textwrap.dedent(f"""\
            name: overflow
            source: {{format: onnx, path: overflow.onnx}}
            inputs:
              - {{name: x, shape: [1, 8], range: [{low}, {high}]}}
            om: {om}
            output_dir: out
            """) + extra)
        return path

    return make


@pytest.fixture(scope="session")
def multi_output_model(tmp_path_factory) -> Path:
    """The Split + LSTM + GRU Paddle model (verify_models.make_multi_output_paddle), built once."""
    return make_multi_output_paddle(tmp_path_factory.mktemp("paddle-multi-output") / "model")


@pytest.fixture
def multi_output_recipe(multi_output_model, tmp_path):
    """A recipe over the Split + LSTM + GRU model; `sections` add top-level keys."""

    def make(**sections) -> Path:
        data = {"name": "multi", "source": {"format": "paddle", "model_dir": str(multi_output_model)},
                "inputs": [{"name": "x", "shape": [2, 10, 8], "range": [-1.0, 1.0]}],
                "output_dir": str(tmp_path / "out"), **sections}
        path = tmp_path / "multi.yaml"
        path.write_text(json.dumps(data))
        return path

    return make


@pytest.fixture
def text_lines(tmp_path) -> Path:
    """Two rendered text-line images (black on white, 320x48): real input for the recognition model."""
    from PIL import Image, ImageDraw, ImageFont

    folder = tmp_path / "lines"
    folder.mkdir()
    for i, text in enumerate(["npuconv 2026", "HELLO WORLD"]):
        image = Image.new("RGB", (320, 48), "white")
        ImageDraw.Draw(image).text((8, 4), text, fill="black", font=ImageFont.load_default(size=32))
        image.save(folder / f"{i}.png")
    return folder


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


class _Desc:
    def __init__(self, name, shape, datatype):
        self.name, self.shape, self.datatype = name, shape, datatype


class InferSession:
    def __init__(self, device_id, model_path, acl_json_path=None, debug=False, loop=1):
        self._s = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
        _log("load", device_id=device_id, model_path=model_path)

    def get_inputs(self):
        return [_Desc(i.name, i.shape, "FLOAT32") for i in self._s.get_inputs()]

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

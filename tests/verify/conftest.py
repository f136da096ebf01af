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

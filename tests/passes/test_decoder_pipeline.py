"""The decoder through the real pipeline, as a user runs it: dygraph code and .pdparams weights -> `npuconv
export` -> `npuconv onnx` (the pass chain splits the loop into an encoder and a static step) -> `npuconv
verify` against Paddle Inference on inputs that exit early and inputs that run to capacity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

import decoder_models as dm

TESTS = Path(__file__).resolve().parents[1]
BANNED = {"Loop", "If", "Scan", "ScatterND", "ScatterElements", "Scatter", "NonZero"}


@pytest.fixture(scope="module")
def decoder_recipe(tmp_path_factory):
    """A recipe whose model is built from tests/decoder_models.py with weights saved by paddle.save, and two
    verification inputs: `early` (eos after a few steps) and `full` (all steps)."""
    import paddle

    root = tmp_path_factory.mktemp("decoder-project")
    paddle.save(dm.make_decoder("slanet").state_dict(), str(root / "decoder.pdparams"))
    data = root / "data"
    data.mkdir()
    for name, x in dm.inputs().items():
        np.save(data / f"{name}.npy", x)
    recipe = root / "decoder.yaml"
    recipe.write_text(json.dumps({
        "name": "decoder",
        "export": {"builder": "decoder_models:make_decoder", "kwargs": {"variant": "slanet"},
                   "weights": "decoder.pdparams", "search_path": [str(TESTS)],
                   "input_spec": [{"name": "x", "shape": [-1, 3, 8, 8]}]},
        "inputs": [{"name": "x", "shape": list(dm.SHAPE), "range": [0.2, 1.0]}],
        "verify": {"data": "data"},
        "om": {"soc_version": "Ascend310P3", "precision_mode_v2": "origin"},
        "output_dir": str(root / "out"),
    }))
    return recipe


def test_export_then_onnx_split_the_loop_into_static_graphs(decoder_recipe, run_cli):
    res = run_cli("onnx", decoder_recipe, "--json")
    assert res.code == 0, res.stderr
    data = res.json()
    assert [g["role"] for g in data["graphs"]] == ["encoder", "step"]
    assert all(g["static"] for g in data["graphs"]) and data["dynamic_dims"] == [] and data["dynamic_ops_left"] == []
    for g in data["graphs"]:
        model = onnx.load(g["path"])
        assert not {n.op_type for n in model.graph.node} & BANNED
        dims = [d for vi in (*model.graph.input, *model.graph.output) for d in vi.type.tensor_type.shape.dim]
        assert all(d.HasField("dim_value") for d in dims)
    split = next(p for p in data["passes"] if p["name"] == "decoder_split")
    assert split["changed"]["Loop"] == -1
    assert data["parity"]["passed"] and data["parity"]["reference"] == "paddle-inference"
    for out in data["parity"]["outputs"].values():  # Paddle Inference vs the host loop, the rows produced
        assert out["max_abs"] <= 1e-5 and out["window"]["rows"] >= 1


def test_verify_compares_the_produced_rows_of_every_sample(decoder_recipe, run_cli):
    res = run_cli("verify", decoder_recipe, "--target", "paddle", "--json")
    assert res.code == 0, res.stderr
    data = res.json()
    assert data["samples"] == ["early.npy", "full.npy"]
    rows = {(c["output"], c["sample"]): c["window"]["rows"] for c in data["checks"]}
    assert rows[(data["outputs"][0]["name"], 0)] < rows[(data["outputs"][0]["name"], 1)] == dm.CAPACITY
    assert all(c["max_abs"] <= 1e-5 for c in data["checks"])


def test_k_steps_per_call_give_the_same_outputs(decoder_recipe, run_cli, tmp_path):
    one = tmp_path / "k1"
    four = tmp_path / "k4"
    assert run_cli("verify", decoder_recipe, "--target", "onnx:cpu", "--save", one, "--json").code == 0
    res = run_cli("verify", decoder_recipe, "--target", "onnx:cpu", "--set", "onnx.decoder.steps_per_call=4",
                  "--save", four, "--json")
    assert res.code == 0, res.stderr
    for i in range(2):
        with np.load(one / "reference" / f"{i:04d}.npz") as a, np.load(four / "reference" / f"{i:04d}.npz") as b:
            assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)


def test_encoder_and_step_oms_replay_through_the_host_loop(decoder_recipe, run_cli, fake_ais_bench, tmp_path):
    """`npuconv om` compiles each graph (the recording fake atc); the fake NPU runtime runs each "OM" (the
    graph's ONNX bytes), and verify drives them through the host loop as the card describes."""
    import os
    import shutil

    fake_atc = TESTS / "om" / "fake_atc"
    env = {"PATH": f"{fake_atc}{os.pathsep}{os.environ['PATH']}", "FAKE_ATC_RECORD": str(tmp_path / "atc.jsonl")}
    built = run_cli("om", decoder_recipe, "--json", env=env)
    assert built.code == 0, built.stderr
    data = built.json()
    assert sorted(data["oms"]) == ["encoder", "step"] and len(data["graphs"]) == 2
    for graph in data["graphs"]:
        shutil.copyfile(graph["onnx"], data["oms"][graph["role"]])
    res = run_cli("verify", decoder_recipe, "--target", "om", "--json", env=fake_ais_bench)
    assert res.code == 0, res.stderr
    checks = res.json()["checks"]
    assert all(c["max_abs"] == 0.0 for c in checks)  # the same graphs on the same runtime underneath
    loads = [json.loads(line)["model_path"] for line in open(fake_ais_bench["FAKE_AIS_BENCH_LOG"])
             if json.loads(line)["event"] == "load"]
    assert sorted(Path(p).name for p in loads) == ["decoder.encoder.om", "decoder.step.om"]


def test_bench_times_the_host_loop_end_to_end_and_per_graph(decoder_recipe, run_cli):
    res = run_cli("bench", decoder_recipe, "--json", "--set", "bench.iterations=3", "--set", "bench.warmup=1")
    assert res.code == 0, res.stderr
    (result,) = res.json()["results"]
    graphs = {g["role"]: g for g in result["graphs"]}
    assert set(graphs) == {"encoder", "step"}
    # verify.data cycles early (3 steps) and full (CAPACITY steps): one encoder call per run, several steps
    assert graphs["encoder"]["calls"] == 1 and graphs["step"]["calls"] > 1
    assert result["latency_ms"]["median"] > 0

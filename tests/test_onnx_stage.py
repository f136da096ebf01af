"""The onnx stage on small real Paddle models, through the pipeline: static shapes, parity with Paddle
Inference judged with the recipe's tolerances, the card, and the stage runner's cache (hits, integrity,
locks, permissions)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from pipeline_support import convert, onnx_path

from converter.recipe import load_recipe
from converter.stages import onnx_stage

REPO = Path(__file__).resolve().parent.parent


def static_dims(model: onnx.ModelProto) -> list[list[int]]:
    return [[d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in list(model.graph.input) + list(model.graph.output)]


def no_dim_param(model: onnx.ModelProto) -> bool:
    values = list(model.graph.input) + list(model.graph.output) + list(model.graph.value_info)
    return all(d.HasField("dim_value") for vi in values for d in vi.type.tensor_type.shape.dim)


def parity_outputs(outcome) -> list[dict]:
    return list(outcome.report.to_json()["outputs"].values())


def test_crnn_dynamic_width_becomes_static(paddle_models, make_recipe):
    outcome = convert(load_recipe(make_recipe("crnn", paddle_models["crnn"])), force=True)
    card, path = outcome.artifact.card, onnx_path(outcome)
    model = onnx.load(path)
    assert path.name == "crnn.onnx" and not outcome.artifact.cached
    assert static_dims(model) == [[1, 3, 32, 64], [1, 16, 11]]
    assert no_dim_param(model) and card["dynamic_dims"] == [] and card["dynamic_ops_left"] == []
    assert card["opset_requested"] == 11 and card["opset_written"] == 14  # hardswish raises it
    assert {o.domain for o in model.opset_import} <= {"", "ai.onnx"}
    assert not any(n.op_type == "Constant" for n in model.graph.node)
    assert card["nodes_after"] < card["nodes_before"] == len(onnx.load(outcome.artifact.path("raw")).graph.node)
    # each pass with its op-count delta; onnxsim removed what the card says it removed
    passes = {p["name"]: p for p in card["passes"]}
    assert list(passes)[0] == "fix_shapes" and "simplify" in passes
    raw_ops = card["ops_before"]
    assert all(card["ops_after"].get(op, 0) - raw_ops.get(op, 0) == sum(p["changed"].get(op, 0) for p in card["passes"])
               for op in set(raw_ops) | set(card["ops_after"]))
    assert outcome.passed and outcome.report.reference == "paddle-inference"
    (out,) = parity_outputs(outcome)
    assert out["shape"] == [1, 16, 11] and out["max_abs"] < 1e-5 and out["cosine"] > 0.99999
    published = json.loads(Path(outcome.artifact.published["card"]).read_text())
    assert published["card"]["parity"] == card["parity"]
    assert published["files"]["model"]["sha256"] == outcome.artifact.digests["model"]


def test_fcn_dynamic_hw_and_two_inputs(paddle_models, make_recipe, tmp_path):
    fcn = convert(load_recipe(make_recipe("fcn", paddle_models["fcn"])))
    assert static_dims(onnx.load(onnx_path(fcn))) == [[1, 3, 64, 96], [1, 1, 64, 96]]
    assert fcn.passed
    two = convert(load_recipe(make_recipe("two_inputs", paddle_models["two_inputs"], name="two.yaml")))
    assert [i["shape"] for i in two.artifact.card["inputs"]] == [[2, 3, 16, 16], [2, 10]]
    assert [o["shape"] for o in two.artifact.card["outputs"]] == [[2, 4], [2, 10]]
    outputs = parity_outputs(two)
    assert len(outputs) == 2 and two.passed
    assert outputs[1]["max_abs"] == 0.0  # features * 2 is exact


def test_batch_gears_keep_axis_zero_symbolic_in_an_onnx_of_their_own(paddle_models, make_recipe):
    recipe = load_recipe(make_recipe("fcn", paddle_models["fcn"]))
    outcome = convert(recipe, batch_gears=[1, 4, 8])
    model = onnx.load(onnx_path(outcome))
    assert [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == ["x_0", 3, 64, 96]
    assert onnx_path(outcome).name == "fcn_b1-4-8.onnx"
    assert outcome.artifact.card["dynamic_axes"] == {"x": [0]} and outcome.passed
    static = convert(recipe)
    assert onnx_path(static).name == "fcn.onnx" and onnx_path(static).is_file() and onnx_path(outcome).is_file()


def test_onnx_source_is_fixed_and_checked_against_itself(paddle_models, make_recipe, tmp_path):
    # The raw paddle2onnx output of the CRNN keeps its dynamic batch and width.
    first = convert(load_recipe(make_recipe("crnn", paddle_models["crnn"])))
    raw = first.artifact.path("raw")
    assert [d.dim_param or d.dim_value for d in onnx.load(raw).graph.input[0].type.tensor_type.shape.dim][3] != 64
    recipe = make_recipe(text=f"""
        name: from_onnx
        source: {{format: onnx, path: {raw}}}
        inputs: [{{name: x, shape: [2, 3, 32, 128]}}]
        output_dir: {tmp_path / 'o2'}
    """, name="o.yaml")
    result = convert(load_recipe(recipe))
    assert static_dims(onnx.load(onnx_path(result))) == [[2, 3, 32, 128], [2, 32, 11]]
    assert result.report.reference == "onnxruntime-source" and result.passed
    assert result.artifact.card["opset_requested"] is None


def test_recipe_dtype_that_disagrees_with_the_model_is_refused(paddle_models, make_recipe, run_cli, tmp_path):
    recipe = make_recipe("crnn", paddle_models["crnn"], inputs=[{"name": "x", "shape": [1, 3, 32, 64], "dtype": "int64"}])
    res = run_cli("onnx", recipe, "--json")
    assert res.code == 2
    assert res.json()["error"]["message"] == ("input 'x': the recipe says dtype int64, the model (inference.json) "
                                              "declares float32")


def test_tolerance_is_judged_from_the_card_without_rebuilding(paddle_models, make_recipe, run_cli):
    recipe = make_recipe("crnn", paddle_models["crnn"])
    first = run_cli("onnx", recipe, "--json")
    assert first.code == 0, first.stderr
    (out,) = first.json()["parity"]["outputs"].values()
    assert 0 < out["max_abs"] < 1e-5  # Paddle (oneDNN) and ONNX Runtime differ in the last bits
    strict = run_cli("onnx", recipe, "--json", "--set", f"verify.tolerance.default.max_abs={out['max_abs'] / 10}",
                     "--set", "verify.tolerance.default.rtol=1e-12")
    assert strict.code == 1 and strict.json()["cached"] is True
    assert strict.json()["passed"] is False


class TestCache:
    @pytest.fixture
    def fresh_cache(self, tmp_path, monkeypatch):
        monkeypatch.setenv("NPUCONV_CACHE", str(tmp_path / "cache"))
        return tmp_path / "cache"

    @pytest.fixture
    def model_copy(self, paddle_models, tmp_path):
        import shutil

        dest = tmp_path / "model"
        shutil.copytree(paddle_models["fcn"], dest)
        return dest

    @pytest.fixture
    def onnx_source(self, tmp_path):
        """A small Conv + Relu ONNX with a dynamic batch (no Paddle: rebuilds here take a fraction of a second)."""
        import numpy as np
        from onnx import TensorProto, helper, numpy_helper

        w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype("float32"), "w")
        graph = helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])],
            "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])], [w])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
        model.ir_version = 8
        path = tmp_path / "conv.onnx"
        onnx.save(model, str(path))
        return path

    def test_rerun_is_a_hit_and_changes_rebuild(self, fresh_cache, onnx_source, make_recipe, monkeypatch):
        path = make_recipe(text=f"""
            name: conv
            source: {{format: onnx, path: {onnx_source}}}
            inputs: [{{name: x, shape: [1, 3, 8, 8]}}]
        """, name="conv.yaml")
        assert not convert(load_recipe(path)).artifact.cached
        assert convert(load_recipe(path)).artifact.cached
        # Neither the bench nor the verify section changes the ONNX.
        assert convert(load_recipe(path, ["bench.iterations=7", "verify.samples=3"])).artifact.cached
        # The onnx and inputs sections do.
        assert not convert(load_recipe(path, ["onnx.disable_passes=[simplify]"])).artifact.cached
        assert not convert(load_recipe(path, ["inputs.0.shape=[2,3,8,8]"])).artifact.cached
        # --force rebuilds even when nothing changed.
        assert not convert(load_recipe(path), force=True).artifact.cached
        # Another tool version rebuilds.
        real = onnx_stage.tool_versions
        monkeypatch.setattr(onnx_stage, "tool_versions", lambda names: {**real(names), "onnxsim": "0.0.0-other"})
        assert not convert(load_recipe(path)).artifact.cached
        monkeypatch.setattr(onnx_stage, "tool_versions", real)
        assert convert(load_recipe(path)).artifact.cached
        # One changed byte in the source rebuilds.
        data = bytearray(onnx_source.read_bytes())
        data[-1] ^= 0x01
        onnx_source.write_bytes(bytes(data))
        assert not convert(load_recipe(path)).artifact.cached

    def test_a_changed_params_byte_rebuilds(self, fresh_cache, model_copy, make_recipe):
        path = make_recipe("fcn", model_copy)
        assert not convert(load_recipe(path)).artifact.cached
        params = model_copy / "inference.pdiparams"
        data = bytearray(params.read_bytes())
        data[-1] ^= 0x01
        params.write_bytes(bytes(data))
        assert not convert(load_recipe(path)).artifact.cached

    def test_hit_imports_no_heavy_backend(self, fresh_cache, model_copy, make_recipe):
        path = make_recipe("fcn", model_copy)
        convert(load_recipe(path))
        probe = (
            "import sys, json\n"
            "from converter.recipe import load_recipe\n"
            "from converter.pipeline.plan import execute, onnx_runs\n"
            f"o = execute(onnx_runs(load_recipe({str(path)!r})))[-1]\n"
            "heavy = sorted(m for m in ('paddle', 'onnx', 'onnxruntime', 'onnxsim', 'paddle2onnx') if m in sys.modules)\n"
            "print(json.dumps({'cached': o.artifact.cached, 'passed': o.passed, 'heavy': heavy}))\n"
        )
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
        assert json.loads(out.stdout) == {"cached": True, "passed": True, "heavy": []}

    def test_cached_output_is_restored_to_output_dir(self, fresh_cache, model_copy, make_recipe):
        path = make_recipe("fcn", model_copy)
        first = convert(load_recipe(path))
        expected = onnx_path(first).read_bytes()
        onnx_path(first).unlink()
        again = convert(load_recipe(path))
        assert again.artifact.cached and onnx_path(again).read_bytes() == expected

    def conv_recipe(self, make_recipe, onnx_source):
        return make_recipe(text=f"""
            name: conv
            source: {{format: onnx, path: {onnx_source}}}
            inputs: [{{name: x, shape: [1, 3, 8, 8]}}]
            output_dir: {onnx_source.parent / 'out'}
        """, name="conv.yaml")

    def test_damaged_entry_is_rebuilt_and_said_so(self, fresh_cache, onnx_source, make_recipe, run_cli):
        path = self.conv_recipe(make_recipe, onnx_source)
        first = run_cli("onnx", path, "--json")
        assert first.code == 0, first.stderr
        entry = Path(first.json()["raw_onnx"]).parent
        model = entry / "model.onnx"
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte in the cached ONNX
        model.write_bytes(bytes(data))
        again = run_cli("onnx", path, "--json")
        assert again.code == 0 and again.json()["cached"] is False
        warnings = [ln for ln in again.stderr.splitlines() if ln.startswith("warning:") and "damaged" in ln]
        assert len(warnings) == 1 and "model does not match its recorded sha256" in warnings[0]
        assert Path(again.json()["onnx"]).read_bytes() == Path(first.json()["onnx"]).read_bytes()

    def test_second_writer_waits_for_the_first(self, fresh_cache, model_copy, make_recipe, tmp_path):
        path = make_recipe("fcn", model_copy)
        cmd = [sys.executable, "-m", "converter", "onnx", str(path), "--json"]
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
                 for _ in range(2)]
        results = [(p.wait(timeout=300), json.loads(p.stdout.read())) for p in procs]
        assert [code for code, _ in results] == [0, 0]
        assert sorted(data["cached"] for _, data in results) == [False, True]  # one built, one waited and reused
        entries = [p for p in (fresh_cache / "onnx").iterdir() if not p.name.startswith(".") and p.is_dir()]
        assert len(entries) == 1 and not any((fresh_cache / "onnx" / ".scratch").iterdir())

    @pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664)])
    def test_artifacts_get_the_umask_permissions(self, fresh_cache, onnx_source, make_recipe, tmp_path, umask, mode):
        path = self.conv_recipe(make_recipe, onnx_source)
        probe = (f"import os, sys\nos.umask({umask})\nsys.argv = ['npuconv', 'onnx', {str(path)!r}]\n"
                 "from converter.cli import main\nmain()\n")
        subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
        out = tmp_path / "out"
        for name in ("conv.onnx", "conv.card.json"):
            assert stat.S_IMODE((out / name).stat().st_mode) == mode
        entry = next(p for p in (fresh_cache / "onnx").iterdir() if p.is_dir() and not p.name.startswith("."))
        assert stat.S_IMODE(entry.stat().st_mode) == mode | 0o111
        assert stat.S_IMODE((entry / "model.onnx").stat().st_mode) == mode


def test_culprit_is_the_pass_whose_output_differs(paddle_models, make_recipe):
    """Given a chain whose last snapshot is a real model with one weight perturbed, the culprit search
    names that step, and not the export or the passes before it."""
    import numpy as np
    from onnx import numpy_helper

    from converter.passes.base import ModelSet
    from converter.passes.registry import PassRecord
    from converter.stages.onnx_parity import _culprit
    from converter.verify.inputs import random_feed

    recipe = load_recipe(make_recipe("fcn", paddle_models["fcn"]))
    good = onnx.load(onnx_path(convert(recipe)))
    bad = onnx.ModelProto.FromString(good.SerializeToString())
    weight = next(t for t in bad.graph.initializer if len(t.dims) == 4)
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) + np.float32(0.05), weight.name))
    records = [PassRecord(name, {"Conv": 0} if name == "broken" else {}, ("changed",), 0.0, ("model",))
               for name in ("fix_shapes", "simplify", "broken")]
    feed = random_feed(recipe.inputs, 0)
    from converter.stages.checks import run_ort

    reference = run_ort(good.SerializeToString(), feed)
    culprit = _culprit(reference, [ModelSet.single(good), ModelSet.single(good), ModelSet.single(bad)], records, feed)
    assert culprit["step"] == "broken"
    assert _culprit(reference, [ModelSet.single(good)] * 3, records, feed) is None

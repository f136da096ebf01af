"""decoder_split + the host loop on small real Paddle decoders built at test time (tests/decoder_models.py):
static encoder/step graphs, outputs equal to Paddle Inference's on the produced rows, K steps per call equal
to one, and one real model per refusal."""

from __future__ import annotations

import json
import math

import decoder_models as dm
import numpy as np
import onnx
import pytest

from converter.passes import registry
from converter.passes.base import ModelSet
from converter.passes.loop_body import SplitRefused
from converter.runners.hostloop import HostLoopRunner

BANNED = {"Loop", "If", "Scan", "ScatterElements", "ScatterND", "Scatter", "NonZero"}


def run_pass(name: str, model: onnx.ModelProto, section=None):
    """One registered pass as the registry runs it: (models, record)."""
    p = registry.get(name)
    out, records, _, _ = registry.apply(ModelSet.single(model), [(p, p.configure(section))])
    return out, records[0]


def op_count(model: onnx.ModelProto, op: str) -> int:
    return ModelSet.single(model).op_counts()[op]


def ort_run(model: onnx.ModelProto, feed: dict) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"]).run(None, feed)


def paddle_run(model_dir, feed: dict) -> list[np.ndarray]:
    from converter.runners.paddle import PaddleRunner

    with PaddleRunner(model_dir / "inference.json", model_dir / "inference.pdiparams", threads=1) as runner:
        return list(runner.infer(feed).values())


def prepare(raw: onnx.ModelProto) -> onnx.ModelProto:
    """What the onnx stage runs before decoder_split: fixed input, repairs, onnxsim, fold_control_flow."""
    from converter.passes.fix_shapes import fix_input_shapes
    from converter.passes.simplify import simplify_onnx

    model = fix_input_shapes(raw, {"x": list(dm.SHAPE)})
    model = run_pass("repairs", model)[0].model
    model = simplify_onnx(model, check_n=0)
    return run_pass("fold_control_flow", model)[0].model


@pytest.fixture(scope="session")
def decoder(tmp_path_factory):
    """variant -> (Paddle model dir, prepared ONNX), each built once on first use."""
    root = tmp_path_factory.mktemp("decoders")
    built: dict = {}

    def get(variant: str):
        if variant not in built:
            model_dir, raw = dm.build_onnx(variant, root)
            built[variant] = (model_dir, prepare(onnx.load(str(raw))))
        return built[variant]

    return get


@pytest.fixture(scope="session")
def reference(decoder):
    """variant -> {input name: Paddle Inference outputs}."""
    cache: dict = {}

    def get(variant: str):
        if variant not in cache:
            model_dir = decoder(variant)[0]
            cache[variant] = {name: paddle_run(model_dir, {"x": x}) for name, x in dm.inputs().items()}
        return cache[variant]

    return get


@pytest.fixture(scope="session")
def split(decoder):
    """(variant, K) -> (ModelSet, pass record, card facts)."""
    cache: dict = {}

    def get(variant: str, k: int = 1):
        if (variant, k) not in cache:
            p = registry.get("decoder_split")
            config = p.configure({"onnx": {"decoder": {"steps_per_call": k}}})
            cache[variant, k] = registry.apply(ModelSet.single(decoder(variant)[1]), [(p, config)])[:3]
        return cache[variant, k]

    return get


def host_loop(models: ModelSet, card_source) -> HostLoopRunner:
    graphs = {role: m.SerializeToString() for role, m in models.graphs.items()}
    return HostLoopRunner(graphs, card_source)


def constant_shapes(model: onnx.ModelProto) -> list[tuple]:
    """Shapes of the initializers and Constant-node tensors."""
    tensors = list(model.graph.initializer) + [a.t for n in model.graph.node if n.op_type == "Constant" for a in n.attribute]
    return [tuple(t.dims) for t in tensors]


def all_static(model: onnx.ModelProto) -> bool:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    g = inferred.graph
    values = list(g.input) + list(g.output) + list(g.value_info)
    produced = {o for n in g.node for o in n.output}
    annotated = {v.name for v in values}
    return produced <= annotated | {o.name for o in g.output} and all(
        d.HasField("dim_value") for v in values for d in v.type.tensor_type.shape.dim)


def test_split_graphs_are_static_and_hoist_the_invariant_projection(split, decoder):
    models, (record,), facts = split("slanet")
    assert set(models.graphs) == {"encoder", "step"}
    for role, model in models.graphs.items():
        assert not {n.op_type for n in model.graph.node} & BANNED, role
        assert all_static(model), role
    original = decoder("slanet")[1]
    assert op_count(original, "Loop") == 1 and op_count(original, "ScatterElements") == 3  # the model as exported
    assert record.changed["Loop"] == -1 and record.changed["If"] == -1 and record.changed["ScatterElements"] == -3
    # proj_feat's weight [FEAT, HIDDEN] is applied to the encoder output: computed once, in the encoder
    shapes = {role: constant_shapes(m) for role, m in models.graphs.items()}
    assert (dm.FEAT, dm.HIDDEN) in shapes["encoder"] and (dm.FEAT, dm.HIDDEN) not in shapes["step"]
    loop = facts["host_loop"]
    assert loop == models.loop and json.loads(json.dumps(loop)) == loop
    assert loop["capacity"] == dm.CAPACITY and loop["steps_per_call"] == 1
    assert [r["mode"] for r in loop["results"]] == ["write", "write"]
    assert facts["early_exit"]["outputs"]["fetch_name_1"]["axis"] == 1


def test_host_loop_equals_paddle_on_the_produced_rows(split, reference, tmp_path):
    models, _, facts = split("slanet")
    card = tmp_path / "card.json"
    card.write_text(json.dumps(facts))  # the runner reads the loop from the card, as a file
    with host_loop(models, card) as runner:
        steps = {}
        for name, x in dm.inputs().items():
            got = runner.infer({"x": x})
            steps[name] = runner.steps
            want = reference("slanet")[name]
            assert list(got) == ["fetch_name_0", "fetch_name_1"]
            for out, w in zip(got, want):
                g = got[out]
                # the static export returns steps + 1 rows (the last never written), at most the capacity
                assert g.shape == w.shape == (1, min(runner.steps + 1, dm.CAPACITY), w.shape[2])
                assert runner.valid_rows[out] == (1, runner.steps)
                rows = runner.steps
                assert float(np.abs(g[:, :rows] - w[:, :rows]).max()) <= 1e-5
            tokens = np.argmax(got["fetch_name_1"][0, : runner.steps], -1)
            assert np.array_equal(tokens, np.argmax(want[1][0, : runner.steps], -1))
            assert (tokens[-1] == dm.EOS) == (runner.steps < dm.CAPACITY)
        assert steps["early"] < dm.CAPACITY and steps["full"] == dm.CAPACITY
        assert runner.timings["encoder"]["calls"] == 2
        assert runner.timings["step"]["calls"] == steps["early"] + steps["full"]


def test_four_steps_per_call_equal_one(split):
    one, _, _ = split("slanet", 1)
    four, _, facts = split("slanet", 4)
    assert facts["host_loop"]["steps_per_call"] == 4 and len(facts["host_loop"]["step"]["cond"]) == 4
    assert all_static(four.graphs["step"])
    with host_loop(one, one.loop) as a, host_loop(four, four.loop) as b:
        calls = 0
        for x in dm.inputs().values():
            want, got = a.infer({"x": x}), b.infer({"x": x})
            assert b.steps == a.steps
            calls += math.ceil(a.steps / 4)
            for name in want:
                np.testing.assert_array_equal(got[name], want[name])
        assert b.timings["step"]["calls"] == calls


def test_concat_grown_buffer_becomes_appended_rows(split, reference):
    models, _, facts = split("concat", 2)
    assert [r["mode"] for r in facts["host_loop"]["results"]] == ["write", "append"]
    for model in models.graphs.values():
        assert not {n.op_type for n in model.graph.node} & BANNED and all_static(model)
    with host_loop(models, models.loop) as runner:
        for name, x in dm.inputs().items():
            got = list(runner.infer({"x": x}).values())
            want = reference("concat")[name]
            assert got[1].shape == want[1].shape == (1, runner.steps + 1, dm.VOCAB)  # the initial row + one per step
            for g, w in zip(got, want):
                assert g.shape == w.shape and float(np.abs(g - w).max()) <= 1e-5


@pytest.mark.parametrize("variant, reason", [
    ("concat_read", r"grows by Concat '[^']+' every step and the body reads it back in ReduceSum"),
    ("data_write", r"ScatterElements '[^']+' writes at a position that depends on data"),
    ("multi_row", r"ScatterElements '[^']+' writes 2 rows at step 0"),
    ("window", r"Slice '[^']+' in the step graph has a shape that is not fixed"),
    ("nested", r"Loop '[^']+' is a loop nested in the body of Loop"),
    ("two_loops", r"the model holds 2 top-level loops"),
])
def test_what_cannot_be_split_exactly_is_refused(decoder, variant, reason):
    with pytest.raises(SplitRefused, match=reason) as caught:
        run_pass("decoder_split", decoder(variant)[1])
    assert caught.value.message.startswith("decoder split refused: ") and "decoder_split" in caught.value.hint


def test_a_model_without_loop_is_left_alone():
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    models = ModelSet.single(helper.make_model(graph))
    p = registry.get("decoder_split")
    assert p.run(models, p.configure(None)).models is models


@pytest.mark.e2e
def test_real_slanet_plus_splits_and_matches_the_whole_model(slanet_raw):
    from converter.passes.fix_shapes import fix_input_shapes
    from converter.passes.simplify import simplify_onnx

    model = fix_input_shapes(onnx.load(str(slanet_raw)), {"x": [1, 3, 488, 488]})
    model = run_pass("fold_control_flow", simplify_onnx(run_pass("repairs", model)[0].model, check_n=0))[0].model
    models = run_pass("decoder_split", model)[0]
    for m in models.graphs.values():
        assert not {n.op_type for n in m.graph.node} & BANNED and all_static(m)
    assert models.loop["capacity"] == 501  # max_text_length + 1 steps
    x = np.random.default_rng(0).uniform(-2.2, 2.7, (1, 3, 488, 488)).astype(np.float32)
    boxes, probs = ort_run(model, {"x": x})
    with host_loop(models, models.loop) as runner:
        got_boxes, got_probs = runner.infer({"x": x}).values()
    assert got_probs.shape == probs.shape == (1, runner.steps + 1, 50) and got_boxes.shape == boxes.shape
    np.testing.assert_allclose(got_probs, probs, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got_boxes, boxes, rtol=0, atol=1e-6)


def _counted_loop(trip: int | None, table_rows: int, by_counter: bool) -> onnx.ModelProto:
    """A hand-built decoder-like Loop: h' = tanh(0.9 h + table[i]), a scan output sigmoid(h') read through a
    softmax after the loop, the final h, and an output that does not depend on the loop. The row comes from
    the iteration number (a constant trip count) or from a counter state that also bounds the loop."""
    from onnx import TensorProto, helper, numpy_helper

    f = TensorProto.FLOAT
    table = np.random.default_rng(1).normal(size=(table_rows, 4)).astype(np.float32)
    nodes = [helper.make_node("Gather", ["table", "c" if by_counter else "it"], ["pos"], axis=0),
             helper.make_node("Mul", ["h", "c09"], ["hm"]), helper.make_node("Add", ["hm", "pos"], ["ha"]),
             helper.make_node("Tanh", ["ha"], ["h2"]), helper.make_node("Sigmoid", ["h2"], ["y"]),
             helper.make_node("Add", ["c", "one"], ["c2"])]
    nodes.append(helper.make_node("Less", ["c2", "limit"], ["cout"]) if by_counter else helper.make_node("Identity", ["cin"], ["cout"]))
    body = helper.make_graph(nodes, "body", [
        helper.make_tensor_value_info("it", TensorProto.INT64, []), helper.make_tensor_value_info("cin", TensorProto.BOOL, []),
        helper.make_tensor_value_info("h", f, [1, 4]), helper.make_tensor_value_info("c", TensorProto.INT64, [])], [
        helper.make_tensor_value_info("cout", TensorProto.BOOL, []), helper.make_tensor_value_info("h2", f, [1, 4]),
        helper.make_tensor_value_info("c2", TensorProto.INT64, []), helper.make_tensor_value_info("y", f, [1, 4])])
    consts = {"table": table, "T": np.array(True), "c09": np.array(0.9, np.float32), "zero": np.array(0, np.int64),
              "one": np.array(1, np.int64), "limit": np.array(table_rows, np.int64)}
    if trip is not None:
        consts["M"] = np.array(trip, np.int64)
    graph = helper.make_graph([
        helper.make_node("Loop", ["M" if trip is not None else "", "T", "x", "zero"], ["hf", "cf", "ys"], body=body),
        helper.make_node("Softmax", ["ys"], ["p"], axis=-1), helper.make_node("Relu", ["x"], ["r"]),
    ], "g", [helper.make_tensor_value_info("x", f, [1, 4])],
        [helper.make_tensor_value_info(n, f, s) for n, s in (("hf", [1, 4]), ("p", [trip or table_rows, 1, 4]), ("r", [1, 4]))],
        [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.mark.parametrize("k", [1, 3])
def test_scan_output_final_state_and_trip_count(k):
    model = _counted_loop(trip=80, table_rows=80, by_counter=False)  # 80 > unroll_max: stays a Loop
    x = np.random.default_rng(0).normal(size=(1, 4)).astype(np.float32)
    want = ort_run(model, {"x": x})
    models = run_pass("decoder_split", model, {"onnx": {"decoder": {"steps_per_call": k}}})[0]
    assert [r["mode"] for r in models.loop["results"]] == ["last", "append", "encoder"]
    assert models.loop["capacity"] == 80 and all(all_static(m) for m in models.graphs.values())
    with host_loop(models, models.loop) as runner:
        got = list(runner.infer({"x": x}).values())
        assert runner.steps == 80 and runner.timings["step"]["calls"] == math.ceil(80 / k)
    for g, w in zip(got, want):  # 80 % 3 != 0: the last call's steps past the capacity are dropped
        assert g.shape == w.shape and float(np.abs(g - w).max()) <= 1e-6


def test_steps_past_the_capacity_that_would_fail_are_refused():
    model = _counted_loop(trip=None, table_rows=10, by_counter=True)  # table[c] for c = 0..9, 10 steps
    assert run_pass("decoder_split", model, {"onnx": {"decoder": {"steps_per_call": 2}}})[0].loop["capacity"] == 10
    with pytest.raises(SplitRefused, match="runs step 10, past the capacity 10, and that step fails"):
        run_pass("decoder_split", model, {"onnx": {"decoder": {"steps_per_call": 3}}})


def test_host_loop_feeds_the_counter_in_the_dtype_the_step_declares(split):
    """A later pass (int32) may narrow the step counter input: the host follows the step's declaration."""
    from onnx import TensorProto, helper

    models, _, _ = split("slanet")
    step = onnx.ModelProto()
    step.CopyFrom(models.graphs["step"])
    index = models.loop["step"]["index"]["input"]
    narrow = next(i for i in step.graph.input if i.name == index)
    narrow.name = index + ".i32"
    narrow.type.tensor_type.elem_type = TensorProto.INT32
    step.graph.node.insert(0, helper.make_node("Cast", [narrow.name], [index], to=TensorProto.INT64))
    spec = json.loads(json.dumps(models.loop))
    spec["step"]["index"]["input"] = narrow.name
    narrowed = ModelSet({"encoder": models.graphs["encoder"], "step": step}, spec)
    x = dm.inputs()["early"]
    with host_loop(models, models.loop) as a, host_loop(narrowed, spec) as b:
        want, got = a.infer({"x": x}), b.infer({"x": x})
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


def test_int32_after_the_split_uses_the_host_loop_ranges(split):
    """Chain order: int32 runs on encoder + step; the spec vouches for the counter's range."""
    models, _, facts = split("slanet", 2)
    assert facts["host_loop"]["value_ranges"]["step"][models.loop["step"]["index"]["input"]] == [0, dm.CAPACITY - 1]
    p = registry.get("int32")
    narrowed, records, _, _ = registry.apply(models, [(p, p.configure(None))])
    assert any("OneHot" in n for n in records[0].notes) and narrowed.loop == models.loop
    with host_loop(models, models.loop) as a, host_loop(narrowed, narrowed.loop) as b:
        for x in dm.inputs().values():
            want, got = a.infer({"x": x}), b.infer({"x": x})
            for name in want:
                np.testing.assert_array_equal(got[name], want[name])

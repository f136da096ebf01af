"""Statistics, FLOPs, batching of inputs, parsing of backends and limits: pure functions, checked against
numpy and hand counts."""

from __future__ import annotations

import numpy as np
import pytest

from converter.bench.backends import parse_backend
from converter.bench.flops import count_flops
from converter.bench.gates import parse_regression
from converter.bench.inputs import read_feeds, rebatch, write_feeds
from converter.bench.stats import summarize, throughput
from converter.errors import InputError
from converter.recipe.bench import BenchConfig


def test_statistics_of_synthetic_timings_match_numpy():
    times = np.random.default_rng(7).lognormal(mean=1.0, sigma=0.6, size=997)
    s = summarize(list(times))
    for name, q in {"median": 50, "p90": 90, "p95": 95, "p99": 99}.items():
        assert getattr(s, name) == pytest.approx(np.percentile(times, q), rel=1e-12)
    assert s.min == times.min() and s.max == times.max()
    assert s.mean == pytest.approx(times.mean()) and s.std == pytest.approx(times.std(ddof=1))


def test_statistics_by_hand_on_1_to_100_ms():
    s = summarize(range(1, 101))
    # linear interpolation between sorted runs: position q/100 * (n - 1)
    assert (s.median, s.p90, s.p95, s.p99) == pytest.approx((50.5, 90.1, 95.05, 99.01))
    assert s.std == pytest.approx(29.011491975882016)
    assert summarize([3.0]).std == 0.0
    with pytest.raises(ValueError):
        summarize([])


def test_throughput_counts_the_batch():
    assert throughput(mean_ms=4.0, batch=8) == pytest.approx(2000.0)  # 8 samples every 4 ms
    assert throughput(mean_ms=20.0, batch=1) == pytest.approx(50.0)


def _tiny_model():
    """Conv (2 groups, stride 2) -> ConvTranspose -> MatMul (batched) -> Gemm (transA); one Relu not counted."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def w(name, *shape):
        return numpy_helper.from_array(np.zeros(shape, np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "wc", "bc"], ["c"], group=2, strides=[2, 2], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("ConvTranspose", ["r", "wt"], ["t"], strides=[2, 2], kernel_shape=[2, 2]),
        helper.make_node("Reshape", ["t", "shape"], ["f"]),
        helper.make_node("MatMul", ["f", "wm"], ["m"]),
        helper.make_node("Reshape", ["m", "shape2"], ["g"]),
        helper.make_node("Gemm", ["g", "wg"], ["y"], transA=1),
    ]
    inits = [w("wc", 8, 2, 3, 3), w("bc", 8), w("wt", 8, 6, 2, 2), w("wm", 16, 5),
             numpy_helper.from_array(np.array([1, 96, 16], np.int64), "shape"),
             numpy_helper.from_array(np.array([96, 5], np.int64), "shape2"), w("wg", 96, 7)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 7])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), onnx


def test_flops_of_a_tiny_model_against_a_hand_count(tmp_path):
    model, onnx = _tiny_model()
    # Conv: x [1,4,8,8] -> c [1,8,4,4] (stride 2, pad 1); each output sums (4/2 channels) x 3x3 = 18 products
    conv = 1 * 8 * 4 * 4 * 18
    # ConvTranspose: r [1,8,4,4] -> t [1,6,8,8]; each input element scatters into 6 x 2x2 = 24 products
    convt = 1 * 8 * 4 * 4 * 24
    # MatMul: f [1,96,16] @ [16,5] -> [1,96,5]; K = 16
    matmul = 96 * 5 * 16
    # Gemm, transA: g [96,5] -> A' [5,96]; [5,96] @ [96,7] -> [5,7]; K = 96
    gemm = 5 * 7 * 96
    count = count_flops(model)
    assert count.by_op == {"Conv": 2 * conv, "ConvTranspose": 2 * convt, "MatMul": 2 * matmul, "Gemm": 2 * gemm}
    assert count.total == 2 * (conv + convt + matmul + gemm) == 32832
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    assert count_flops(path).total == count.total


def test_flops_unknown_when_a_shape_is_dynamic():
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "dyn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
                              [numpy_helper.from_array(np.zeros((4, 3), np.float32), "w")])
    count = count_flops(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    assert count.total is None and count.unknown == ("mm",)


def test_rebatch_takes_rows_in_order_and_wraps(tmp_path):
    feeds = [{"x": np.full((1, 2), i, np.float32), "k": np.full((1,), 10 + i, np.int64)} for i in range(3)]
    four = rebatch(feeds, 4)
    assert len(four) == 1 and four[0]["x"][:, 0].tolist() == [0, 1, 2, 0] and four[0]["k"].tolist() == [10, 11, 12, 10]
    two = rebatch(feeds, 2)
    assert [f["x"][:, 0].tolist() for f in two] == [[0, 1], [2, 0]]
    assert rebatch(feeds, 1)[2]["x"][0, 0] == 2
    back = read_feeds(write_feeds(tmp_path / "f.npz", two))
    assert [list(f) for f in back] == [["x", "k"], ["x", "k"]]
    assert all(np.array_equal(a[n], b[n]) for a, b in zip(two, back) for n in a)


def test_backend_names():
    assert parse_backend("onnx").label == "onnx:cpu" == parse_backend("onnx:CPUExecutionProvider").label
    assert parse_backend("onnx-file:raw.onnx").label == "onnx-file:raw.onnx"
    assert [parse_backend(n).kind for n in ("paddle", "om", "onnx-raw")] == ["paddle", "om", "onnx-raw"]
    for bad in ("tensorflow", "emulate:fp16", "onnx:nosuch", "onnx-file", "paddle:x"):
        with pytest.raises(InputError):
            parse_backend(bad)


def test_max_regression_forms():
    assert parse_regression("10%") == pytest.approx(0.10) == parse_regression("0.1")
    assert parse_regression("0%") == 0.0
    for bad in ("10", "-5%", "fast"):
        with pytest.raises(InputError):
            parse_regression(bad)


def test_bench_section_warmup_and_stop_rule():
    assert BenchConfig().timed_iterations() == 100 and BenchConfig().warmup_runs() == 10
    cfg = BenchConfig(warmup="1.5s", duration_s=3)
    assert (cfg.warmup_runs(), cfg.warmup_seconds(), cfg.timed_iterations()) == (None, 1.5, None)
    with pytest.raises(ValueError, match="either iterations or duration_s"):
        BenchConfig(iterations=5, duration_s=1)

"""What `npuconv bench`'s harness adds to a latency: the engine (worker process, bound call, timed loop,
rounds) against a bare `session.run` loop, on a model of about 1 ms. Target: under 2 %.

Each round runs both, each in a fresh process with its own session, same model, same input, same
threads, same warm-up and run count; the order flips every round (ABBA). Per round each gives its
median; the overhead is median(harness round medians) / median(bare round medians) - 1.

Usage: python bench/harness_overhead.py [--rounds 15] [--runs 1000] [--threads 1] [--check]
Writes build/bench/harness_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
TARGET = 0.02


def make_model(path: Path, layers: int, width: int = 256, batch: int = 64) -> Path:
    """A chain of MatMul + Relu, [batch, width] -> [batch, width]: about 1 ms at 10 layers on one core here."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, weights, current = [], [], "x"
    for i in range(layers):
        weights.append(numpy_helper.from_array((rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32), f"w{i}"))
        nodes += [helper.make_node("MatMul", [current, f"w{i}"], [f"m{i}"]), helper.make_node("Relu", [f"m{i}"], [f"r{i}"])]
        current = f"r{i}"
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, width])],
                              [helper.make_tensor_value_info(current, TensorProto.FLOAT, [batch, width])], weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def feed_for(batch: int = 64, width: int = 256) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(1).random((batch, width), dtype=np.float32)}


def bare_loop(model: str, runs: int, warmup: int, threads: int) -> list[float]:
    """The loop anyone would write: a session, a warm-up, then perf_counter around each run (ms)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    feed = feed_for()
    for _ in range(warmup):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def bare_round(model: Path, runs: int, warmup: int, threads: int) -> float:
    out = subprocess.run([sys.executable, __file__, "--bare", str(model), "--runs", str(runs), "--warmup", str(warmup),
                          "--threads", str(threads)], check=True, capture_output=True, text=True)
    return statistics.median(json.loads(out.stdout))


def harness_round(model: Path, runs: int, warmup: int, threads: int) -> float:
    from converter.bench.backends import BackendSpec
    from converter.bench.engine import Plan, measure

    spec = BackendSpec("onnx:cpu", "onnx", str(model), threads=threads)
    (result,) = measure([spec], [[feed_for()]], Plan(warmup=warmup, iterations=runs))
    return statistics.median(result.times_ms)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--layers", type=int, default=10, help="MatMul layers of the model (10: about 1 ms here)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the overhead reaches the target")
    parser.add_argument("--bare", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        print(json.dumps(bare_loop(args.bare, args.runs, args.warmup, args.threads)))
        return 0
    sys.path.insert(0, str(REPO))
    bare, harness = [], []
    with tempfile.TemporaryDirectory() as tmp:
        model = make_model(Path(tmp) / "chain.onnx", args.layers)
        for r in range(args.rounds):
            for kind in (("bare", "harness") if r % 2 == 0 else ("harness", "bare")):
                if kind == "bare":
                    bare.append(bare_round(model, args.runs, args.warmup, args.threads))
                else:
                    harness.append(harness_round(model, args.runs, args.warmup, args.threads))
            print(f"round {r + 1}: bare session.run {bare[-1]:.4f} ms, harness {harness[-1]:.4f} ms", file=sys.stderr)
    bare_ms, harness_ms = statistics.median(bare), statistics.median(harness)
    overhead = harness_ms / bare_ms - 1
    pairs = sorted(h / b - 1 for h, b in zip(harness, bare))
    paired = statistics.median(pairs)
    q1, _, q3 = statistics.quantiles(pairs, n=4) if len(pairs) > 1 else (paired, paired, paired)
    result = {"rounds": args.rounds, "runs": args.runs, "warmup": args.warmup, "threads": args.threads, "layers": args.layers,
              "cpu_count": os.cpu_count(), "loadavg_1m": os.getloadavg()[0], "bare_round_medians_ms": bare,
              "harness_round_medians_ms": harness, "bare_ms": bare_ms, "harness_ms": harness_ms, "overhead": overhead,
              "paired_overhead_median": paired, "paired_overhead_quartiles": [q1, q3], "target": TARGET}
    out = REPO / "build" / "bench" / "harness_overhead.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    met = overhead < TARGET
    print(f"harness overhead: {overhead:+.2%} (harness {harness_ms:.4f} ms vs bare session.run {bare_ms:.4f} ms, medians of "
          f"{args.rounds} interleaved rounds x {args.runs} runs; per-round pairs: median {paired:+.2%}, quartiles "
          f"{q1:+.2%} .. {q3:+.2%}; target < {TARGET:.0%}: "
          f"{'met' if met else 'MISSED'})")
    print(f"details: {out}")
    return 0 if met or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())

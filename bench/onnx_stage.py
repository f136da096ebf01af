"""Benchmark of the `onnx` stage on the real PP-OCRv4 det model (`make models` first).

1. Cold conversion wall time: `npuconv onnx --force` (export, shapes, onnxsim, checks and the parity check
   against Paddle Inference) vs the bare hand route (paddle2onnx CLI with its defaults, then
   `onnxsim --overwrite-input-shape`), interleaved, same machine, same run. Target: ratio <= 1.0.
2. ONNX Runtime CPU latency of the produced ONNX vs the raw paddle2onnx output: a warm session per model
   and round, rounds in ABBA order, median per round, median of rounds. Target: ratio <= 1.02.

Usage: python bench/onnx_stage.py [--recipe recipes/ppocrv4_det.yaml] [--rounds 5] [--check]
Writes build/bench/onnx_stage.json.
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
BIN = Path(sys.executable).parent


def timed(argv: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    return time.perf_counter() - start


def conversion_round(recipe, work: Path) -> tuple[float, float, Path]:
    src = recipe.source
    shape = ",".join(map(str, recipe.inputs[0].shape))
    raw = work / "hand_raw.onnx"
    hand = timed([str(BIN / "paddle2onnx"), "--model_dir", str(src.model_dir), "--model_filename", src.model_file().name,
                  "--params_filename", src.params_filename, "--save_file", str(raw), "--opset_version", str(recipe.onnx.opset)])
    hand += timed([str(BIN / "onnxsim"), str(raw), str(work / "hand_sim.onnx"), "--overwrite-input-shape",
                   f"{recipe.inputs[0].name}:{shape}"])
    ours = timed([sys.executable, "-m", "converter", "onnx", str(recipe_path), "--force", "--json", "-o", str(work / "out")],
                 env={"NPUCONV_CACHE": str(work / "cache")})
    return hand, ours, raw


def session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def paired_latency(raw: Path, produced: Path, feed: dict, rounds: int, runs: int) -> tuple[list[float], list[float]]:
    """Median latency per round of each model. A round measures one model, then the other, the order
    flipping every round (ABBA), so drift of this noisy machine hits both alike. Each measurement has its
    own warm session: two live sessions' spinning thread pools would slow each other down."""
    paths = {"raw": raw, "produced": produced}
    medians: dict[str, list[float]] = {"raw": [], "produced": []}
    for r in range(rounds):
        for name in (("raw", "produced") if r % 2 == 0 else ("produced", "raw")):
            s = session(paths[name])
            for _ in range(5):
                s.run(None, feed)
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                s.run(None, feed)
                times.append(time.perf_counter() - start)
            del s
            medians[name].append(statistics.median(times))
        print(f"round {r + 1}: ORT raw {medians['raw'][-1] * 1e3:.2f} ms, produced {medians['produced'][-1] * 1e3:.2f} ms",
              file=sys.stderr)
    return medians["raw"], medians["produced"]


def main() -> int:
    global recipe_path
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default=str(REPO / "recipes" / "ppocrv4_det.yaml"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency-runs", type=int, default=30)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    recipe_path = Path(args.recipe)

    from converter.recipe import load_recipe
    from converter.verify.inputs import random_feed

    recipe = load_recipe(recipe_path)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        hands, ours = [], []
        for i in range(args.rounds):
            h, o, raw = conversion_round(recipe, work)
            hands.append(h)
            ours.append(o)
            print(f"round {i + 1}: hand route {h:.2f} s, npuconv onnx {o:.2f} s", file=sys.stderr)
        produced = work / "out" / f"{recipe.name}.onnx"
        feed = random_feed(recipe.inputs, seed=0)
        raw_lat, our_lat = paired_latency(raw, produced, feed, args.rounds, args.latency_runs)
    hand_s, ours_s = statistics.median(hands), statistics.median(ours)
    raw_ms, our_ms = statistics.median(raw_lat) * 1e3, statistics.median(our_lat) * 1e3
    result = {
        "recipe": str(recipe_path), "rounds": args.rounds, "cpu_count": os.cpu_count(),
        "conversion": {"hand_route_s": hands, "npuconv_s": ours, "hand_median_s": hand_s, "npuconv_median_s": ours_s,
                       "ratio": ours_s / hand_s, "target": 1.0},
        "ort_latency": {"raw_ms": [t * 1e3 for t in raw_lat], "produced_ms": [t * 1e3 for t in our_lat],
                        "raw_median_ms": raw_ms, "produced_median_ms": our_ms, "ratio": our_ms / raw_ms, "target": 1.02},
    }
    out = REPO / "build" / "bench" / "onnx_stage.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    ok_conv = result["conversion"]["ratio"] <= 1.0
    ok_lat = result["ort_latency"]["ratio"] <= 1.02
    print(f"cold conversion: npuconv {ours_s:.2f} s vs hand route {hand_s:.2f} s -> ratio {ours_s / hand_s:.2f} "
          f"(target <= 1.0: {'met' if ok_conv else 'MISSED'})")
    print(f"ORT CPU latency: produced {our_ms:.2f} ms vs raw paddle2onnx {raw_ms:.2f} ms -> ratio {our_ms / raw_ms:.3f} "
          f"(target <= 1.02: {'met' if ok_lat else 'MISSED'})")
    print(f"details: {out}")
    return 0 if (ok_conv and ok_lat) or not args.check else 1


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    sys.exit(main())

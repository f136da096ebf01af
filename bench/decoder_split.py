"""Benchmark of the decoder split on the real SLANet-plus (1x3x488x488; `make models` first).

Pipelines, on rendered table images (grid lines, text-like blocks; resized and normalised as the recipe does):
  paddle     Paddle Inference on the source model (oneDNN on, as Paddle deploys on a CPU)
  ort-whole  ONNX Runtime CPU on the whole model with its Loop (repairs + onnxsim applied)
  split-K    the host loop (converter.runners.hostloop) over the static encoder + step graphs, K steps per call

Accuracy vs Paddle on the produced rows (the steps the decoder ran): structure-token agreement, max abs on
probabilities and boxes; split vs ort-whole as well. Latency: rounds in rotating order, a fresh session per
pipeline and round, every image once per round after one warm-up pass; median of the per-round totals.

Usage: python bench/decoder_split.py [--recipe recipes/slanet_plus.yaml] [--rounds 3] [--images 4] [--k 1 8]
Writes build/bench/decoder_split.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
MEAN, STD = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
BANNED = {"Loop", "If", "Scan", "ScatterElements", "ScatterND", "Scatter", "NonZero"}


def render_tables(n: int, seed: int = 0) -> list[np.ndarray]:
    """`n` table images (BGR uint8): a header row, R x C cells with dark text-like blocks, ruled lines."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    images = []
    for i in range(n):
        rows, cols = int(rng.integers(3, 9)), int(rng.integers(2, 6))
        w, h = int(rng.integers(480, 900)), 40 + rows * int(rng.integers(28, 48))
        img = Image.new("RGB", (w, h), "white")
        d = ImageDraw.Draw(img)
        xs = np.linspace(10, w - 10, cols + 1).astype(int)
        ys = np.linspace(10, h - 10, rows + 2).astype(int)
        for y in ys:
            d.line([(xs[0], y), (xs[-1], y)], fill="black", width=2)
        for x in xs:
            d.line([(x, ys[0]), (x, ys[-1])], fill="black", width=2)
        for r in range(rows + 1):
            for c in range(cols):
                x0, y0 = xs[c] + 6, ys[r] + 6
                length = int(rng.integers(8, max(10, xs[c + 1] - xs[c] - 12)))
                d.rectangle([x0, y0, x0 + length, ys[r + 1] - 8], fill=(30, 30, 30) if r else (0, 0, 90))
        images.append(np.asarray(img)[:, :, ::-1].copy())
    return images


def preprocess(bgr: np.ndarray) -> np.ndarray:
    from PIL import Image

    resized = np.asarray(Image.fromarray(bgr).resize((488, 488), Image.BILINEAR), np.float32) / 255.0
    return ((resized - MEAN) / STD).transpose(2, 0, 1)[None].astype(np.float32)


def convert(recipe_path: Path, k: int):
    """The onnx stage, through the pipeline as `npuconv onnx --set onnx.decoder.steps_per_call=K` runs it
    (cached): the onnx artifact (encoder + step graphs, host loop on its card)."""
    from converter.pipeline.plan import execute, onnx_runs
    from converter.recipe.loader import load_recipe

    # published into a folder of its own: the recipe's output_dir keeps what `npuconv onnx` made there
    out = REPO / "build" / "bench" / f"decoder_split_k{k}"
    recipe = load_recipe(recipe_path, [f"onnx.decoder.steps_per_call={k}"], output_dir=out)
    outcome = execute(onnx_runs(recipe))[-1]
    if not outcome.passed:
        sys.exit(f"npuconv onnx failed its parity check for K={k}")
    return recipe, outcome.artifact


def whole_model(recipe, artifact):
    """The comparison point: the artifact's raw paddle2onnx export through the chain's passes before
    decoder_split (input shapes, repairs, onnxsim, constant control flow): the model with its Loop."""
    import onnx

    from converter.passes import registry
    from converter.passes.base import ModelSet
    from converter.pipeline.plan import onnx_runs
    from converter.recipe.passes import ONNX_CHAIN

    section = onnx_runs(recipe)[-1].section
    steps = registry.chain(section, names=ONNX_CHAIN[: ONNX_CHAIN.index("decoder_split")])
    return registry.apply(ModelSet.single(onnx.load(str(artifact.path("raw")))), steps)[0].model


def runners(paddle_dir: Path, whole: bytes, splits: dict):
    from converter.runners.graphs import artifact_runner
    from converter.runners.onnxruntime import OnnxRuntimeRunner
    from converter.runners.paddle import PaddleRunner

    made = {"paddle": lambda: PaddleRunner(paddle_dir / "inference.pdmodel", paddle_dir / "inference.pdiparams"),
            "ort-whole": lambda: OnnxRuntimeRunner(whole)}
    for k, artifact in splits.items():
        made[f"split-{k}"] = lambda artifact=artifact: artifact_runner(artifact)
    return made


def compare(got: dict, want: list, steps: int) -> dict:
    """Over the rows the decoder produced: token agreement, max abs on probabilities and boxes."""
    boxes, probs = list(got.values())
    rows = min(steps, probs.shape[1], want[1].shape[1])
    tokens = np.argmax(probs[0, :rows], -1), np.argmax(want[1][0, :rows], -1)
    return {"rows": rows, "rows_returned": [int(probs.shape[1]), int(want[1].shape[1])],
            "tokens_equal": int((tokens[0] == tokens[1]).sum()),
            "probs_max_abs": float(np.abs(probs[:, :rows] - want[1][:, :rows]).max()),
            "boxes_max_abs": float(np.abs(boxes[:, :rows] - want[0][:, :rows]).max())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", type=Path, default=REPO / "recipes" / "slanet_plus.yaml")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--k", type=int, nargs="+", default=[1, 8])
    args = ap.parse_args()
    import onnx

    splits, report = {}, {"splits": {}}
    for k in args.k:
        started = time.perf_counter()
        recipe, artifact = convert(args.recipe, k)
        splits[k] = artifact
        graphs = {g["role"]: g for g in artifact.card["graphs"]}
        report["splits"][k] = {"seconds": round(time.perf_counter() - started, 2), "cached": artifact.cached,
                               "nodes": {r: g["nodes"] for r, g in graphs.items()},
                               "banned_ops_left": sorted({op for g in graphs.values() for op in g["ops"]} & BANNED)}
        print(f"onnx K={k}: {report['splits'][k]}", file=sys.stderr)
    whole = whole_model(recipe, splits[args.k[0]])
    model_dir = Path(recipe.source.model_dir)
    feeds = [{"x": preprocess(img)} for img in render_tables(args.images)]
    made = runners(model_dir, whole.SerializeToString(), splits)

    outputs: dict = {name: [] for name in made}
    totals: dict = {name: [] for name in made}
    per_graph: dict = {}
    names = list(made)
    for r in range(args.rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            with made[name]() as runner:
                for feed in feeds:
                    runner.infer(feed)  # warm-up pass
                if hasattr(runner, "reset_timings"):
                    runner.reset_timings()
                total, results = 0.0, []
                for feed in feeds:
                    t = time.perf_counter()
                    out = runner.infer(feed)
                    total += time.perf_counter() - t
                    results.append((out, getattr(runner, "steps", None)))
                totals[name].append(total)
                outputs[name] = results
                if hasattr(runner, "timings"):
                    per_graph[name] = {role: {"calls": t["calls"], "ms": round(t["seconds"] * 1e3, 2)} for role, t in runner.timings.items()}
            print(f"round {r + 1} {name}: {total * 1e3:.1f} ms for {len(feeds)} images", file=sys.stderr)

    steps = [s for _, s in outputs[f"split-{args.k[0]}"]]
    accuracy = {}
    for name in names:
        if name == "paddle":
            continue
        per_image = [compare(out, list(outputs["paddle"][i][0].values()), steps[i]) for i, (out, _) in enumerate(outputs[name])]
        whole = [compare(out, list(outputs["ort-whole"][i][0].values()), steps[i]) for i, (out, _) in enumerate(outputs[name])]
        accuracy[name] = {"vs_paddle": per_image, "vs_ort_whole_max_abs": max(max(w["probs_max_abs"], w["boxes_max_abs"]) for w in whole)}
    report.update({
        "images": len(feeds), "steps": steps,
        "latency_ms": {n: {"median_total": round(statistics.median(t) * 1e3, 1),
                           "per_image": round(statistics.median(t) * 1e3 / len(feeds), 1),
                           "rounds": [round(x * 1e3, 1) for x in t]} for n, t in totals.items()},
        "per_graph_last_round": per_graph, "accuracy": accuracy,
        "versions": {"onnx": onnx.__version__},
    })
    out = REPO / "build" / "bench" / "decoder_split.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    ratios = {f"{n}/ort-whole": round(statistics.median(a / b for a, b in zip(totals[n], totals["ort-whole"])), 3)
              for n in names if n.startswith("split")}
    ratios.update({f"paddle/{n}": round(statistics.median(a / b for a, b in zip(totals["paddle"], totals[n])), 2)
                   for n in names if n.startswith("split")})
    report["ratios_per_round_median"] = ratios
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps({"steps": steps, "ratios": ratios,
                      "latency_ms": {n: v["median_total"] for n, v in report["latency_ms"].items()},
                      "accuracy": {n: {"tokens": [f"{x['tokens_equal']}/{x['rows']}" for x in a["vs_paddle"]],
                                       "probs_max_abs": max(x["probs_max_abs"] for x in a["vs_paddle"]),
                                       "boxes_max_abs": max(x["boxes_max_abs"] for x in a["vs_paddle"]),
                                       "vs_ort_whole": a["vs_ort_whole_max_abs"]} for n, a in accuracy.items()}}, indent=1))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()

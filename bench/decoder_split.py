"""Benchmark of the decoder split on the real SLANet-plus (1x3x488x488; `make models` first).

Pipelines, on rendered table images (grid lines, text-like blocks; resized and normalised as the recipe does):
  paddle     Paddle Inference on the source model (oneDNN on, as Paddle deploys on a CPU)
  ort-whole  ONNX Runtime CPU on the whole model with its Loop (repairs + onnxsim applied)
  split-K    the host loop (converter.runners.hostloop) over the static encoder + step graphs, K steps per call

Accuracy vs Paddle on the produced rows (the steps the decoder ran): structure-token agreement, max abs on
probabilities and boxes; split vs ort-whole as well. Latency: rounds in rotating order, a fresh session per
pipeline and round, every image once per round after one warm-up pass; median of the per-round totals.

Usage: python bench/decoder_split.py [--model-dir models/slanet_plus] [--rounds 3] [--images 4] [--k 1 8]
Writes build/bench/decoder_split.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
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


def export(model_dir: Path, work: Path) -> Path:
    from converter.stages.paddle_export import PaddleExport

    job = PaddleExport(model_dir / "inference.pdmodel", model_dir / "inference.pdiparams", 11, work, None)
    try:
        return job.wait_exported()
    finally:
        job.close()


def prepare(raw: Path):
    """The onnx stage's chain up to decoder_split: fixed input, repairs, onnxsim, fold_control_flow."""
    import onnx

    from converter.passes import registry
    from converter.passes.base import ModelSet
    from converter.stages.shapes import fix_input_shapes
    from converter.stages.simplify import simplify_onnx

    model = fix_input_shapes(onnx.load(str(raw)), {"x": [1, 3, 488, 488]})
    steps = [(p, p.configure(None)) for p in (registry.get("repairs"),)]
    model = registry.apply(ModelSet.single(model), steps)[0].model
    model = simplify_onnx(model, check_n=0)
    fold = registry.get("fold_control_flow")
    return registry.apply(ModelSet.single(model), [(fold, fold.configure(None))])[0].model


def split(model, k: int):
    from converter.passes import registry
    from converter.passes.base import ModelSet

    p = registry.get("decoder_split")
    started = time.perf_counter()
    models, records, facts, _ = registry.apply(ModelSet.single(model), [(p, p.configure({"onnx": {"decoder": {"steps_per_call": k}}}))])
    return models, facts, time.perf_counter() - started, records[0]


def runners(paddle_dir: Path, whole: bytes, splits: dict):
    from converter.runners.hostloop import HostLoopRunner
    from converter.runners.onnxruntime import OnnxRuntimeRunner
    from converter.runners.paddle import PaddleRunner

    made = {"paddle": lambda: PaddleRunner(paddle_dir / "inference.pdmodel", paddle_dir / "inference.pdiparams"),
            "ort-whole": lambda: OnnxRuntimeRunner(whole)}
    for k, (models, facts) in splits.items():
        graphs = {role: m.SerializeToString() for role, m in models.graphs.items()}
        made[f"split-{k}"] = lambda graphs=graphs, facts=facts: HostLoopRunner(graphs, json.loads(json.dumps(facts)))
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
    ap.add_argument("--model-dir", type=Path, default=Path(os.environ.get("NPUCONV_MODELS", REPO / "models")) / "slanet_plus")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--k", type=int, nargs="+", default=[1, 8])
    args = ap.parse_args()
    import onnx

    work = Path(tempfile.mkdtemp(prefix="bench-decoder-"))
    started = time.perf_counter()
    prepared = prepare(export(args.model_dir, work))
    prep_s = time.perf_counter() - started
    splits, report = {}, {"prepare_s": round(prep_s, 2), "splits": {}}
    for k in args.k:
        models, facts, seconds, record = split(prepared, k)
        splits[k] = (models, facts)
        report["splits"][k] = {"seconds": round(seconds, 2), "changed": record.changed, "notes": list(record.notes),
                               "nodes": {r: len(m.graph.node) for r, m in models.graphs.items()},
                               "banned_ops_left": sorted({n.op_type for m in models.graphs.values() for n in m.graph.node} & BANNED)}
        print(f"split K={k}: {seconds:.2f} s, {report['splits'][k]['nodes']}", file=sys.stderr)
    feeds = [{"x": preprocess(img)} for img in render_tables(args.images)]
    made = runners(args.model_dir, prepared.SerializeToString(), splits)

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

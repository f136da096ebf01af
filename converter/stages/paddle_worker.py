"""Runs in a subprocess (paddle2onnx aborts the whole process on unsupported input): either export a
Paddle inference model to ONNX, or compute its outputs on a given feed with Paddle Inference (the parent
runs one of each at once).

Usage: python -m converter.stages.paddle_worker JOB.json
JOB: {"mode": "export", "model_file", "params_file", "opset", "save_file"}
     {"mode": "reference", "model_file", "params_file", "feed_npz", "reference_npz"}
Protocol on stdout: `EXPORTED` once the ONNX file is complete, `REFERENCE` once the reference .npz is.
Everything else goes to stderr."""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings

EXPORTED = "EXPORTED"
REFERENCE = "REFERENCE"


def _say(marker: str) -> None:
    sys.stdout.write(marker + "\n")
    sys.stdout.flush()


def export(job: dict) -> None:
    import paddle2onnx

    # onnxsim runs in the parent; paddle2onnx's own optimizer would only repeat part of it.
    paddle2onnx.export(
        job["model_file"],
        job["params_file"],
        job["save_file"] + ".part",
        opset_version=int(job["opset"]),
        auto_upgrade_opset=True,
        enable_onnx_checker=True,
        optimize_tool="None",
    )
    if not os.path.isfile(job["save_file"] + ".part"):
        sys.stderr.write("paddle2onnx wrote no file\n")
        sys.exit(3)
    os.replace(job["save_file"] + ".part", job["save_file"])


def _wait_for_file(path: str, timeout_s: float = 120.0) -> str:
    """The parent writes the feed (atomically) while this process imports paddle and exports."""
    import time

    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.stderr.write(f"reference: feed {path} never appeared\n")
            sys.exit(5)
        time.sleep(0.01)
    return path


def reference(job: dict) -> None:
    import numpy as np
    import paddle.inference as pi

    config = pi.Config(job["model_file"], job["params_file"])
    config.disable_gpu()
    config.disable_glog_info()
    config.set_cpu_math_library_num_threads(os.cpu_count() or 1)
    predictor = pi.create_predictor(config)
    feed = dict(np.load(_wait_for_file(job["feed_npz"])))
    missing = [n for n in predictor.get_input_names() if n not in feed]
    if missing:
        sys.stderr.write(f"reference: feed lacks model inputs {missing}\n")
        sys.exit(4)
    for name in predictor.get_input_names():
        predictor.get_input_handle(name).copy_from_cpu(np.ascontiguousarray(feed[name]))
    predictor.run()
    outputs = {f"{i:04d}": predictor.get_output_handle(n).copy_to_cpu() for i, n in enumerate(predictor.get_output_names())}
    tmp = job["reference_npz"] + ".part.npz"
    np.savez(tmp, **outputs)
    os.replace(tmp, job["reference_npz"])


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    os.environ.setdefault("GLOG_minloglevel", "2")
    with open(sys.argv[1], encoding="utf-8") as f:
        job = json.load(f)
    if job["mode"] == "export":
        export(job)
        _say(EXPORTED)
    else:
        reference(job)
        _say(REFERENCE)


if __name__ == "__main__":
    main()

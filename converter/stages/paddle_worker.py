"""Runs in a subprocess (paddle2onnx aborts the whole process on unsupported input): export a Paddle
inference model to ONNX and, given a feed, compute the model's outputs on it with Paddle Inference. Paddle
is imported once; the reference runs in a thread beside the export (both spend their time in C++), on one
thread of its own so the parent keeps a core for the passes.

Usage: python -m converter.stages.paddle_worker JOB.json
JOB: {"model_file", "params_file", "opset", "save_file", "feed_npz" (or null), "reference_npz"}
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

    # onnxsim runs in the parent and paddle2onnx's own optimizer would only repeat part of it; the parent
    # runs onnx.checker on the result (with a better message for truncated weights).
    paddle2onnx.export(
        job["model_file"],
        job["params_file"],
        job["save_file"] + ".part",
        opset_version=int(job["opset"]),
        auto_upgrade_opset=True,
        enable_onnx_checker=False,
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

    from converter.runners.paddle import PaddleRunner

    feed = dict(np.load(_wait_for_file(job["feed_npz"])))
    with PaddleRunner(job["model_file"], job["params_file"], threads=1) as runner:
        outputs = runner.infer(feed)
    tmp = job["reference_npz"] + ".part.npz"
    np.savez(tmp, **{f"{i:04d}": value for i, value in enumerate(outputs.values())})
    os.replace(tmp, job["reference_npz"])


def main() -> None:
    import threading

    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    os.environ.setdefault("GLOG_minloglevel", "2")
    with open(sys.argv[1], encoding="utf-8") as f:
        job = json.load(f)
    failed: list[BaseException] = []
    thread = None
    if job.get("feed_npz"):
        import paddle.inference  # noqa: F401  (imported here, once, before the threads share it)

        def run_reference() -> None:
            try:
                reference(job)
            except BaseException as exc:  # noqa: BLE001 - reported to the parent below
                failed.append(exc)

        thread = threading.Thread(target=run_reference, daemon=True)
        thread.start()
    export(job)
    _say(EXPORTED)
    if thread is not None:
        thread.join()
        if failed:
            raise failed[0]
        _say(REFERENCE)


if __name__ == "__main__":
    main()

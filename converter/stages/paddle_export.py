"""Drive the Paddle worker subprocess: it exports with paddle2onnx and, beside that, computes the source
model's reference outputs with Paddle Inference (importing paddle, once, dominates both jobs); the parent
runs the passes on the exported ONNX while the reference is still being computed."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from converter import process
from converter.errors import StageFailed
from converter.stages.paddle_worker import EXPORTED, REFERENCE

# Lines of paddle's stderr that carry the reason for a failure; the rest is deprecation noise.
_SIGNAL = ("error", "Error", "ERROR", "Abort", "abort", "Traceback", "Exception", "Check failed", "terminate")
_NOISE = ("C++ Traceback", "  [TimeInfo", "Error Message Summary")
_SIGNALS = {-6: "SIGABRT", -11: "SIGSEGV", -9: "SIGKILL"}


class _Worker:
    """One `python -m converter.stages.paddle_worker JOB` process with its log and a kill timer."""

    def __init__(self, job: dict, workdir: Path, timeout_s: float) -> None:
        job_path = workdir / "paddle.job.json"
        job_path.write_text(json.dumps(job))
        self.log_path = workdir / "paddle.log"
        self._log = self.log_path.open("w")
        self._proc = process.start(
            [sys.executable, "-m", "converter.stages.paddle_worker", str(job_path)],
            stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL, text=True,
        )
        self._timer = threading.Timer(timeout_s, process.stop, (self._proc,), {"grace": 0})
        self._timer.daemon = True
        self._timer.start()

    def wait_for(self, marker: str, what: str) -> None:
        """Block until the worker prints `marker`; a worker that exits first is a StageFailed with the
        reason paddle printed."""
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.strip() == marker:
                return
            self._log.write(line)  # paddle2onnx's C++ side reports errors on stdout
        rc = process.wait(self._proc)
        tail = self.log_tail()
        self.close()
        how = _SIGNALS.get(rc, f"exit code {rc}")
        errors = [ln.strip() for ln in tail.splitlines() if "[ERROR]" in ln]
        reason = next((ln for ln in errors if "[OP:" in ln), errors[0] if errors else "")
        raise StageFailed(
            f"{what} failed ({how})" + (f": {reason}" if reason else ""),
            hint="check that model_dir holds a complete Paddle inference model (program + .pdiparams) "
                 "and that its ops are supported by paddle2onnx; the log is shown below",
            log_tail=tail,
        )

    def log_tail(self, lines: int = 12) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        useful = [ln for ln in text if any(s in ln for s in _SIGNAL) and not ln.startswith(_NOISE)]
        return "\n".join((useful or text)[-lines:])

    def close(self) -> None:
        """Stop the worker (if still running) and release its log."""
        self._timer.cancel()
        process.stop(self._proc)
        if self._proc.stdout:
            self._proc.stdout.close()
        self._log.close()


class PaddleExport:
    """`wait_exported()` returns the raw ONNX path; `wait_reference()` the reference outputs in the source
    model's output order (only when a feed path was given; the parent writes that file, atomically)."""

    def __init__(self, model_file: Path, params_file: Path, opset: int, workdir: Path, feed_npz: Path | None,
                 timeout_s: float = 900.0) -> None:
        self.raw_onnx = workdir / "raw.onnx"
        self.reference_npz = workdir / "reference.npz"
        self._feed = feed_npz
        self._worker = _Worker({"model_file": str(model_file), "params_file": str(params_file), "opset": opset,
                                "save_file": str(self.raw_onnx), "feed_npz": str(feed_npz) if feed_npz else None,
                                "reference_npz": str(self.reference_npz)}, workdir, timeout_s)

    def wait_exported(self) -> Path:
        self._worker.wait_for(EXPORTED, "paddle2onnx export")
        return self.raw_onnx

    def wait_reference(self) -> list:
        import numpy as np

        assert self._feed is not None, "no feed was given"
        self._worker.wait_for(REFERENCE, "Paddle Inference (reference outputs)")
        with np.load(self.reference_npz) as data:
            return [data[k] for k in sorted(data.files)]

    def close(self) -> None:
        self._worker.close()

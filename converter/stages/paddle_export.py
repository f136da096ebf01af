"""Drive the Paddle worker subprocess: export with paddle2onnx, then (while the parent simplifies the
ONNX) compute the source model's reference outputs with Paddle Inference."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from converter.errors import StageFailed
from converter.stages.paddle_worker import EXPORTED, REFERENCE

# Lines of paddle's stderr that carry the reason for a failure; the rest is deprecation noise.
_SIGNAL = ("error", "Error", "ERROR", "Abort", "abort", "Traceback", "Exception", "Check failed", "terminate")
_NOISE = ("C++ Traceback", "  [TimeInfo", "Error Message Summary")
_SIGNALS = {-6: "SIGABRT", -11: "SIGSEGV", -9: "SIGKILL"}


class PaddleExport:
    """One worker subprocess. `wait_exported()` returns the raw ONNX path; `wait_reference()` the
    reference outputs in the source model's output order."""

    def __init__(self, model_file: Path, params_file: Path, opset: int, workdir: Path, feed_npz: Path | None,
                 timeout_s: float = 900.0) -> None:
        self.raw_onnx = workdir / "raw.onnx"
        self.reference_npz = workdir / "reference.npz"
        self.log_path = workdir / "paddle_worker.log"
        job = {"model_file": str(model_file), "params_file": str(params_file), "opset": opset,
               "save_file": str(self.raw_onnx), "feed_npz": str(feed_npz) if feed_npz else None,
               "reference_npz": str(self.reference_npz)}
        job_path = workdir / "job.json"
        job_path.write_text(json.dumps(job))
        self._log = self.log_path.open("w")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "converter.stages.paddle_worker", str(job_path)],
            stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL, text=True,
        )
        self._timer = threading.Timer(timeout_s, self._proc.kill)
        self._timer.daemon = True
        self._timer.start()

    def _wait_for(self, marker: str, what: str) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.strip() == marker:
                return
            self._log.write(line)  # paddle2onnx's C++ side reports errors on stdout
        rc = self._proc.wait()
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

    def wait_exported(self) -> Path:
        self._wait_for(EXPORTED, "paddle2onnx export")
        return self.raw_onnx

    def wait_reference(self) -> list:
        import numpy as np

        self._wait_for(REFERENCE, "Paddle Inference (reference outputs)")
        self._proc.wait()
        self.close()
        with np.load(self.reference_npz) as data:
            return [data[k] for k in sorted(data.files)]

    def log_tail(self, lines: int = 12) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        useful = [ln for ln in text if any(s in ln for s in _SIGNAL) and not ln.startswith(_NOISE)]
        return "\n".join((useful or text)[-lines:])

    def close(self) -> None:
        """Stop the worker (if still running) and release its log."""
        self._timer.cancel()
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout:
            self._proc.stdout.close()
        self._log.close()

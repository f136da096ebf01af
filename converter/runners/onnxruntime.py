"""ONNX Runtime runner: CPU is the reference for every comparison; other providers plug in by name."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

from converter.errors import InputError, ToolNotFound
from converter.runners.base import Runner, TensorInfo


class RewriteRefused(RuntimeError):
    """ONNX Runtime refused a graph that npuconv itself rewrote: a bug in npuconv, not in the user's model."""


class OnnxRuntimeRunner(Runner):
    """ONNX Runtime on one execution provider (default CPU). `model` is a path or serialized bytes;
    `rewritten_by` names the npuconv rewrite that produced it (then a refusal is npuconv's bug)."""

    def __init__(self, model: Path | bytes, provider: str = "CPUExecutionProvider", threads: int | None = None,
                 priority_order: bool = False, rewritten_by: str | None = None) -> None:
        self.model = model
        self.rewritten_by = rewritten_by
        self.provider = provider
        self.threads = threads
        # ORT's default node order can keep many tensors alive when extra consumers (statistics) are
        # attached; the priority-based order runs them as soon as possible (measured on PP-OCRv4 det:
        # 540 -> 183 MB peak).
        self.priority_order = priority_order
        self.name = f"onnxruntime:{provider.removesuffix('ExecutionProvider').lower()}"
        self._session = None

    def activate(self) -> None:
        import onnxruntime as ort

        if self.provider not in ort.get_available_providers():
            raise ToolNotFound(
                f"ONNX Runtime provider {self.provider} is not available here "
                f"(available: {', '.join(ort.get_available_providers())})",
                hint="install the onnxruntime build that carries it (e.g. onnxruntime-gpu, onnxruntime-cann)",
            )
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if self.threads:
            options.intra_op_num_threads = self.threads
        if self.priority_order:
            options.execution_order = ort.ExecutionOrder.PRIORITY_BASED
        model = self.model if isinstance(self.model, bytes) else str(self.model)
        try:
            self._session = ort.InferenceSession(model, options, providers=[self.provider])
        except Exception as exc:  # ORT raises its own exception types for unloadable models
            if self.rewritten_by:
                raise RewriteRefused(
                    f"ONNX Runtime refuses the graph that {self.rewritten_by} produced: {str(exc).splitlines()[0]}. "
                    "This is a bug in npuconv, not in your model: please report it with the model and the command"
                ) from exc
            raise InputError(f"ONNX Runtime cannot load the model: {str(exc).splitlines()[0]}",
                             hint="run `npuconv lint` on the file; re-export it with `npuconv onnx`") from None

    def deactivate(self) -> None:
        self._session = None

    def input_infos(self) -> list[TensorInfo]:
        return [TensorInfo(i.name, tuple(i.shape), i.type) for i in self._session.get_inputs()]

    def output_names(self) -> list[str]:
        return [o.name for o in self._session.get_outputs()]

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = self.output_names()
        return dict(zip(names, self._session.run(names, feed)))

    def _bind(self, feed: dict[str, np.ndarray]) -> Callable[[], object]:
        return partial(self._session.run, self.output_names(), feed)

    def fetch(self, names: list[str], feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once and return only the named graph outputs (a subset keeps memory bounded)."""
        return dict(zip(names, self._session.run(names, feed)))

"""A runner for a model as an onnx artifact describes it: one graph on ONNX Runtime, or an encoder and a
decoder step that the host loop drives (the loop spec comes from the artifact's card, as JSON)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from converter.runners.base import Runner


def graph_runner(graphs: Mapping[str, Path | bytes], loop: Mapping[str, Any] | None = None,
                 provider: str = "CPUExecutionProvider", threads: int | None = None) -> Runner:
    """ONNX Runtime on `graphs["model"]`, or the host loop over `graphs["encoder"]` and `graphs["step"]`."""
    if loop is None:
        from converter.runners.onnxruntime import OnnxRuntimeRunner

        return OnnxRuntimeRunner(graphs["model"], provider=provider, threads=threads)
    from converter.runners.hostloop import HostLoopRunner
    from converter.runners.onnxruntime import OnnxRuntimeRunner

    def ort(role: str, model: Path | bytes) -> Runner:
        # a decoder step is ~1 M MAC: a thread pool's hand-offs cost more than they save
        return OnnxRuntimeRunner(model, provider=provider, threads=1 if role == "step" else threads)

    return HostLoopRunner(dict(graphs), dict(loop), make_runner=ort)


def artifact_runner(artifact, provider: str = "CPUExecutionProvider", threads: int | None = None) -> Runner:
    """The runner for an onnx-stage artifact (its graph files in the cache, its card's host loop)."""
    roles = [g["role"] for g in artifact.card["graphs"]]
    return graph_runner({role: artifact.path(role) for role in roles}, artifact.card.get("host_loop"), provider, threads)

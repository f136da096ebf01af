"""Checks on the stage's ONNX: it parses and passes onnx.checker, uses only the default domain, ONNX
Runtime loads and runs it, and it computes what the source computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from converter.errors import StageFailed


def missing_tensors(model) -> list[str]:
    """Top-level node inputs that no initializer, graph input or node output provides (weights that
    paddle2onnx could not read from the params file)."""
    known = {t.name for t in model.graph.initializer} | {i.name for i in model.graph.input} | {""}
    known |= {o for n in model.graph.node for o in n.output}
    return sorted({i for n in model.graph.node for i in n.input if i not in known})


def load_checked(path: Path, what: str, params_file: Path | None = None):
    """onnx.load + onnx.checker, as StageFailed on any failure."""
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf DecodeError
        raise StageFailed(f"{what} cannot be parsed as ONNX: {exc}", hint="re-export the model") from None
    missing = missing_tensors(model)
    if missing and params_file is not None:
        raise StageFailed(
            f"{what} lacks {len(missing)} weight tensor(s) ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}): "
            f"{params_file} is truncated or belongs to another model",
            hint="re-copy the model directory (program and .pdiparams from the same save)",
        )
    try:
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx ValidationError and friends
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StageFailed(f"{what} is not a valid ONNX model: {first}",
                          hint="re-export it; for Paddle models check the pinned paddle2onnx version (npuconv doctor)") from None
    return model


def check_default_domain(model) -> None:
    """atc parses only standard ONNX ops: any node outside the default domain is an error."""
    custom = sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")})
    if custom:
        raise StageFailed(f"the graph uses ops outside the default ONNX domain: {', '.join(custom)}",
                          hint="atc has no parser for custom-domain ops; export without custom ops")


def run_ort(model: Path | bytes, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One ONNX Runtime CPU run; a model ORT cannot load is a StageFailed."""
    from converter.errors import InputError
    from converter.runners.onnxruntime import OnnxRuntimeRunner

    try:
        with OnnxRuntimeRunner(model) as runner:
            return runner.infer(feed)
    except InputError as exc:
        raise StageFailed(exc.message, hint="the exported graph is broken; check `npuconv doctor` for known-bad versions") from None

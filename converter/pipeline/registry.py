"""The stages the pipeline knows, by name. Adding a stage = one module + one line here."""

from __future__ import annotations

import importlib

from converter.stage import Stage

_STAGES = {
    "export": "converter.stages.export:ExportStage",
    "onnx": "converter.stages.onnx_stage:OnnxStage",
    "om": "converter.stages.atc.stage:OmStage",
    "reference": "converter.stages.reference:ReferenceStage",
    "verify": "converter.stages.verify_stage:VerifyStage",
}
_INSTANCES: dict[str, Stage] = {}


def stage(name: str) -> Stage:
    """The stage called `name` (its module is imported on first use)."""
    if name not in _INSTANCES:
        module, cls = _STAGES[name].split(":")
        _INSTANCES[name] = getattr(importlib.import_module(module), cls)()
    return _INSTANCES[name]


def names() -> list[str]:
    """Every registered stage, in pipeline order."""
    return list(_STAGES)

"""The pass registry: passes register by name; `chain` gives the onnx stage's passes (those the recipe
did not switch off) with their configs; `apply` runs them and records each one's op-count delta."""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from converter.passes.base import ModelSet, Pass, op_delta
from converter.recipe.passes import ONNX_CHAIN

_PASSES: dict[str, type[Pass]] = {}
# module of each registered pass (imported on first use: onnx and onnxsim stay unimported until then)
_MODULES = {
    "fix_shapes": "converter.passes.fix_shapes",
    "repairs": "converter.passes.repairs",
    "simplify": "converter.passes.simplify",
    "fold_control_flow": "converter.passes.control_flow",
    "decoder_split": "converter.passes.decoder_split",
    "int32": "converter.passes.int32",
    "lower_opset": "converter.passes.lower_opset",
    "constants_to_initializers": "converter.passes.constants",
    "emulate_fp16": "converter.passes.emulate_fp16",
}


def register(cls: type[Pass]) -> type[Pass]:
    """Class decorator: make a pass known by its name."""
    _PASSES[cls.name] = cls
    return cls


def get(name: str) -> Pass:
    """An instance of the pass called `name`."""
    if name not in _PASSES:
        if name not in _MODULES:
            raise KeyError(f"unknown pass {name!r}; known: {', '.join(_MODULES)}")
        importlib.import_module(_MODULES[name])
    return _PASSES[name]()


@dataclass(frozen=True)
class PassRecord:
    """One pass as it ran: what it changed (op type -> count delta over every graph), its notes, time."""

    name: str
    changed: dict[str, int]
    notes: tuple[str, ...]
    seconds: float
    graphs: tuple[str, ...]

    @property
    def touched(self) -> bool:
        return bool(self.changed or self.notes)

    def to_json(self) -> dict:
        return {"name": self.name, "changed": self.changed, "notes": list(self.notes),
                "seconds": round(self.seconds, 3), "graphs": list(self.graphs)}


def chain(section: Any, disabled: Iterable[str] = (), names: Iterable[str] = ONNX_CHAIN) -> list[tuple[Pass, Any]]:
    """The passes to run, each with its config built from the stage section."""
    off = set(disabled)
    steps = []
    for name in names:
        if name in off:
            continue
        p = get(name)
        steps.append((p, p.configure(section)))
    return steps


def apply(models: ModelSet, steps: list[tuple[Pass, Any]], on_step: Callable[[str], None] | None = None,
          keep: bool = False) -> tuple[ModelSet, list[PassRecord], dict, list[ModelSet]]:
    """Run `steps` in order. Returns the final models, one record per pass, the card facts the passes
    reported (merged), and (with `keep`) the models after each pass, to find a culprit later."""
    records: list[PassRecord] = []
    facts: dict = {}
    snapshots: list[ModelSet] = []
    for p, config in steps:
        if on_step:
            on_step(f"pass {p.name}")
        before = models.op_counts()
        started = time.perf_counter()
        result = p.run(models, config)
        seconds = time.perf_counter() - started
        changed = op_delta(before, result.models.op_counts()) if result.models is not models else {}
        records.append(PassRecord(p.name, changed, tuple(result.notes), seconds, tuple(result.models.graphs)))
        facts.update(result.card)
        models = result.models
        if keep:
            snapshots.append(models)
    return models, records, facts, snapshots

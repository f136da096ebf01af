"""The `export` stage: the recipe's dygraph builder + `.pdparams` -> a static Paddle inference model
(`inference.json` + `inference.pdiparams`), saved by paddle.jit.to_static + paddle.jit.save in a worker
subprocess (converter/stages/export_worker.py) and checked there against the dygraph model on the
recipe's `inputs:` (seeded data). Artifact roles: `model`, `params`; the `onnx` stage needs nothing else.

Keyed by the section (builder, kwargs, input_spec, and the `inputs:` the check runs on), the sha256 of
the weights, of the builder's Python sources (or the installed distribution's version) and the paddle
version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converter import process
from converter.artifacts import Artifact, file_digest
from converter.errors import InputError, RecipeError, StageFailed, ToolNotFound
from converter.recipe.export import ExportConfig
from converter.recipe.model import InputSpec, Recipe
from converter.stage import Progress, Stage, StageOutput
from converter.stages.export_problem import IMPORT_HINT
from converter.stages.export_sources import locate, source_facts
from converter.stages.export_worker import PROGRESS
from converter.versions import tool_version

PARAMS_FILE = "inference.pdiparams"
PARITY_SEED = 0
TIMEOUT_S = 900.0
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent  # the folder holding `converter`


class ExportError(StageFailed):
    """The dygraph model could not be exported; `details` carries the structured facts (--json)."""

    def __init__(self, message: str, hint: str = "", log_tail: str = "", details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message, hint, log_tail)
        self.details = dict(details or {})

    def to_json(self) -> dict:
        return {**super().to_json(), "details": self.details}


class BuilderImportError(ExportError):
    """The builder's module cannot be imported, or has no such attribute."""


class BuilderFailed(ExportError):
    """The builder raised, or the built model's forward() fails on the recipe's inputs."""


class NotALayer(ExportError):
    """The builder returned something that is not a paddle.nn.Layer."""


class WeightsMismatch(ExportError):
    """The .pdparams does not fit the model: missing, unexpected, mis-shaped or mis-typed keys."""


class ToStaticFailed(ExportError):
    """paddle.jit.to_static cannot convert the dygraph code; the message names the source line."""


_KINDS: dict[str, type[ExportError]] = {
    "import": BuilderImportError, "call": BuilderFailed, "forward": BuilderFailed, "not_layer": NotALayer,
    "weights": WeightsMismatch, "to_static": ToStaticFailed,
}


@dataclass(frozen=True)
class ExportSection:
    """What the stage reads from the recipe: the `export:` section and the fixed `inputs:` it checks on."""

    export: ExportConfig
    inputs: tuple[InputSpec, ...]

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> ExportSection:
        """The section of a recipe with an `export:` section (a RecipeError otherwise)."""
        if recipe.export is None:
            raise RecipeError(f"recipe {recipe.name} has no `export:` section: npuconv export builds a model from "
                              "dygraph code", hint="add `export:` (builder, weights, input_spec); "
                                                   "a `source:` recipe goes straight to npuconv onnx")
        return cls(recipe.export, tuple(recipe.inputs))

    def key_json(self) -> dict[str, Any]:
        return {"export": self.export.key_json(), "inputs": [i.model_dump(mode="json") for i in self.inputs]}


@dataclass(frozen=True)
class ExportVerdict:
    """The saved model (Paddle Inference) against the dygraph model, judged now from the card's metrics
    with the built-in fp32 limits (so a limit never rebuilds the export)."""

    reference: str
    seed: int
    inputs: Mapping[str, list[int]]
    counts: tuple[int, int]   # outputs of the dygraph model, of the saved model
    judged: Any               # converter.compare.Comparison

    def __bool__(self) -> bool:
        return self.counts[0] == self.counts[1] and bool(self.judged)

    def to_json(self) -> dict:
        outputs = {c.output: {"shape": list(c.metrics.target_shape), **c.to_json()} for c in self.judged.checks}
        return {"passed": bool(self), "reference": self.reference, "seed": self.seed, "inputs": dict(self.inputs),
                "outputs_dygraph": self.counts[0], "outputs_saved": self.counts[1], "outputs": outputs}


def export_verdict(artifact: Artifact) -> ExportVerdict:
    """Judge an export artifact's check (the `judge` of its StageRun)."""
    from converter.compare import FP32, rejudge

    parity = artifact.card["parity"]
    return ExportVerdict(parity["reference"], parity["seed"], parity["inputs"],
                         (parity["outputs_dygraph"], parity["outputs_saved"]), rejudge(parity["outputs"], FP32))


def model_filename(paddle_version: str | None) -> str:
    """What paddle.jit.save names the program: Paddle 3 writes PIR JSON, Paddle 2 a .pdmodel."""
    major = int((paddle_version or "3").split(".")[0] or 3)
    return "inference.json" if major >= 3 else "inference.pdmodel"


class ExportStage(Stage):
    name = "export"
    version = 1
    reads = ()

    def published_name(self, role: str, stem: str) -> str | None:
        """`<stem>_static/inference.json` + `inference.pdiparams`: a Paddle inference model directory that a
        `source: {format: paddle}` recipe can read (the paddle version is in the key, so the name fits)."""
        names = {"model": model_filename(tool_version("paddlepaddle")), "params": PARAMS_FILE}
        return f"{stem}_static/{names[role]}" if role in names else None

    def card_name(self, stem: str) -> str:
        return f"{stem}_static/inference.card.json"

    def key_payload(self, section: ExportSection, upstream: Mapping[str, Artifact]) -> Mapping[str, Any]:
        cfg = section.export
        return {"sources": source_facts(cfg.module, cfg.search_path), "weights": file_digest(cfg.weights),
                "paddle": tool_version("paddlepaddle")}

    def check(self, section: ExportSection, upstream: Mapping[str, Artifact]) -> None:
        cfg = section.export
        if tool_version("paddlepaddle") is None:
            raise ToolNotFound("paddlepaddle is not installed: npuconv export runs paddle.jit.to_static",
                               hint="pip install paddlepaddle==3.2.2 (or: make install)")
        if not cfg.weights.is_file():
            raise InputError(f"export.weights: file not found: {cfg.weights}",
                             hint="a .pdparams written by paddle.save(layer.state_dict()); paths are relative to the recipe")
        try:
            locate(cfg.module, cfg.search_path)
        except LookupError as exc:
            details = {"module": cfg.module, "missing": exc.args[1], "search_path": [str(p) for p in cfg.search_path]}
            raise BuilderImportError(exc.args[0], hint=IMPORT_HINT, details=details) from None

    def run(self, section: ExportSection, upstream: Mapping[str, Artifact], scratch: Path,
            progress: Progress) -> StageOutput:
        import numpy as np

        from converter.verify.inputs import random_feed

        cfg = section.export
        with tempfile.TemporaryDirectory(prefix="npuconv-export-") as tmp:
            work = Path(tmp)
            np.savez(work / "feed.npz", **random_feed(section.inputs, PARITY_SEED))
            job = {"builder": cfg.builder, "kwargs": cfg.kwargs, "weights": str(cfg.weights),
                   "search_path": [str(p) for p in cfg.search_path],
                   "input_spec": [s.model_dump(mode="json") for s in cfg.input_spec or ()],
                   "feed_npz": str(work / "feed.npz"), "save_prefix": str(scratch / "inference"),
                   "result": str(work / "result.json")}
            result = _run_worker(job, work, progress)
        expected = model_filename(tool_version("paddlepaddle"))
        if result["model_file"] != expected:
            raise StageFailed(f"paddle.jit.save wrote {result['model_file']}, expected {expected}",
                              hint="check FLAGS_enable_pir_api and the installed paddlepaddle (npuconv doctor)")
        card = {
            "builder": cfg.builder, "kwargs": cfg.kwargs, "module_file": result["module_file"],
            "weights": {"file": str(cfg.weights), "sha256": file_digest(cfg.weights), "tensors": result["tensors"]},
            "input_spec": [s.model_dump(mode="json") for s in cfg.input_spec or ()],
            "outputs": result["outputs"],
            "format": "paddle-pir" if expected.endswith(".json") else "paddle-program",
            "paddle": result["paddle"],
            "parity": {**result["parity"], "seed": PARITY_SEED,
                       "inputs": {i.name: list(i.shape) for i in section.inputs}},  # metrics; judged by export_verdict
        }
        return StageOutput({"model": result["model_file"], "params": result["params_file"]}, card)


def _run_worker(job: dict, work: Path, progress: Progress) -> dict:
    """Run the worker; its structured failure becomes the matching ExportError, a crash a StageFailed."""
    job_path, log_path = work / "job.json", work / "worker.log"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    pythonpath = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "GLOG_minloglevel": "2", "PYTHONPATH": pythonpath}
    progress("starting paddle (subprocess)")
    with log_path.open("w", encoding="utf-8") as log:
        # cwd: the builder runs in its first search_path folder (the recipe's), whatever npuconv's cwd is.
        proc = process.start([sys.executable, "-m", "converter.stages.export_worker", str(job_path)],
                             cwd=job["search_path"][0], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=log, text=True)
        timer = threading.Timer(TIMEOUT_S, process.stop, (proc,), {"grace": 0})
        timer.daemon = True
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith(PROGRESS):
                    progress(line[len(PROGRESS):].strip())
                else:
                    log.write(line)
            rc = process.wait(proc)
        finally:
            timer.cancel()
            process.stop(proc)
            if proc.stdout is not None:
                proc.stdout.close()
    result_path = Path(job["result"])
    if not result_path.is_file():
        how = {-6: "SIGABRT", -9: "SIGKILL (killed, or over the time limit)", -11: "SIGSEGV"}.get(rc, f"exit code {rc}")
        raise StageFailed(f"the export worker stopped ({how}) before reporting a result",
                          hint="paddle failed while building or saving the model; its last lines are below",
                          log_tail=_tail(log_path))
    result = json.loads(result_path.read_text(encoding="utf-8"))
    if not result["ok"]:
        cls = _KINDS.get(result["kind"], ExportError)
        raise cls(result["message"], hint=result["hint"], log_tail=result.get("context", ""), details=result["details"])
    return result


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(text[-lines:])

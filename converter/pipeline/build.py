"""`build_unit`: one unit of `npuconv build` (a recipe x om variant), run step by step through `run_stage`
(the cache, the per-key locks and the atomic publishing are the runner's), recording one row per step:

    {"stage", "label", "status": built|cached|failed|skipped, "seconds", "artifacts": [{role, path, sha256,
     size}], "reason" (skipped/failed), "verdict" (stages with a check), "tools", "key"}

A failed step (an error, or its check failed) makes the steps after it `skipped: <label> failed`. The unit's
rows go into `<output_dir>/<name>.manifest.json` (build_manifest.py) once it ends; an interruption
(`Interrupted`) leaves the last manifest as it was."""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from converter.artifacts import Artifact, file_digest
from converter.errors import NpuconvError, ToolNotFound
from converter.pipeline.build_plan import Step, Unit, load_unit_recipe, plan_unit
from converter.pipeline.runner import run_stage, stage_key
from converter.stage import Progress, quiet

OnRow = Callable[[dict], None]


def artifact_files(artifact: Artifact) -> list[dict[str, Any]]:
    """Every file of an artifact where it was published (else in its cache entry), with sha256 and size;
    the published card too."""
    files = []
    for role in artifact.files:
        path = Path(artifact.published.get(role) or artifact.path(role))
        files.append({"role": role, "path": str(path), "sha256": artifact.digests[role],
                      "size": artifact.path(role).stat().st_size})
    card = artifact.published.get("card")
    if card and Path(card).is_file():
        files.append({"role": "card", "path": card, "sha256": file_digest(Path(card)), "size": Path(card).stat().st_size})
    return files


def _tools(artifact: Artifact) -> dict[str, Any] | None:
    card = artifact.card
    if artifact.stage == "om":
        return {"cann_version": card.get("cann_version"), "soc_version": card.get("soc_version"),
                "precision": card.get("precision"), "precision_mode_v2": card.get("precision_mode_v2"),
                "atc": (card.get("atc") or {}).get("path")}
    return card.get("tool_versions") or card.get("tools")


def _error_json(exc: BaseException) -> dict[str, Any]:
    """An exception as a row's `error` (a bug keeps its traceback in the unit's log)."""
    from converter.errors import path_error
    from converter.versions import convert_tool_missing

    known = exc if isinstance(exc, NpuconvError) else None
    if isinstance(exc, OSError):
        known = path_error(exc)
    elif isinstance(exc, ImportError):
        known = convert_tool_missing(exc)
    if known is not None:
        data = known.to_json()
        data.pop("log_tail", None)
        return data
    traceback.print_exception(exc, file=sys.stderr)
    return {"type": "InternalError", "message": f"{type(exc).__name__}: {exc}",
            "hint": "a bug in npuconv: the traceback is in this unit's build log; please report it"}


VERDICT_KEYS = ("max_abs", "max_rel", "cosine", "passed", "failures")
CHECK_FAILED = {"export": "check failed: the saved model does not compute what the dygraph model computes",
                "onnx": "parity check failed: the ONNX does not compute what the source model computes",
                "verify": "parity check failed: the target is out of tolerance against the reference"}


def _verdict(data: dict[str, Any]) -> dict[str, Any]:
    """A stage's verdict for rows and manifests: per output only the headline metrics and the verdict."""
    outputs = data.get("outputs")
    if isinstance(outputs, dict):
        data = {**data, "outputs": {name: {k: o[k] for k in VERDICT_KEYS if k in o} for name, o in outputs.items()}}
    return data


def _row(step: Step, status: str, seconds: float = 0.0, **extra: Any) -> dict[str, Any]:
    row = {"stage": step.stage, "label": step.label, "status": status, "seconds": round(seconds, 3), "artifacts": []}
    if step.target:
        row["target"] = step.target
    row.update({k: v for k, v in extra.items() if v is not None})
    return row


def _om_runtime_missing(om: Artifact) -> str | None:
    """Why the OM cannot run here (no ais_bench / pyACL), or None."""
    from converter.runners.om import OmRunner

    path = Path(om.published.get("model") or om.path(next(iter(om.files))))
    try:
        OmRunner(path).check()
    except ToolNotFound as exc:
        return exc.message
    return None


def _claim(forced: Path, key: str) -> bool:
    """Whether this unit rebuilds `key` for --force: only the first unit of a build that gets to it does
    (variants share their ONNX; the others then wait for it and find it in the cache)."""
    forced.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(forced / key, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _run_step(step: Step, done: dict[str, Artifact], force: bool, forced: Path | None, progress: Progress,
              warn) -> dict[str, Any]:
    run = step.run
    missing = [label for label in run.upstream.values() if label not in done]
    if missing:
        return _row(step, "skipped", reason=f"needs {', '.join(missing)}, which did not run")
    upstream: Mapping[str, Artifact] = {name: done[label] for name, label in run.upstream.items()}
    if step.target == "om":
        absent = _om_runtime_missing(upstream["om"])
        if absent:
            return _row(step, "skipped", reason=absent)
    started = time.perf_counter()
    warnings: list[str] = []

    def note(message: str) -> None:
        warnings.append(message)
        warn(message)

    try:
        if force and forced is not None:
            force = _claim(forced, stage_key(run, upstream))
        artifact = run_stage(run, upstream, force=force, progress=progress, warn=note)
        report = run.judge(artifact) if run.judge is not None else None
    except Exception as exc:  # noqa: BLE001 - every failure becomes the row's reason; Interrupted passes
        error = _error_json(exc)
        return _row(step, "failed", time.perf_counter() - started, reason=error["message"], error=error)
    done[run.label] = artifact
    seconds = time.perf_counter() - started
    verdict = None if report is None else _verdict(report.to_json())
    warnings += [w for w in artifact.card.get("warnings", []) if w not in warnings] if artifact.stage == "om" else []
    row = _row(step, "cached" if artifact.cached else "built", seconds, verdict=verdict, tools=_tools(artifact),
               key=artifact.key, built_seconds=artifact.card.get("seconds"), warnings=warnings or None)
    row["artifacts"] = artifact_files(artifact)
    if report is not None and not report:
        row.update(status="failed", cached=artifact.cached, reason=CHECK_FAILED.get(step.stage, f"{step.stage} check failed"))
    return row


def build_unit(unit: Unit, *, until: str | None = None, force: frozenset[str] = frozenset(),
               forced: Path | None = None, bundle_dir: Path | None = None, on_row: OnRow = quiet,
               progress: Progress = quiet, warn: Progress = quiet) -> dict[str, Any]:
    """Run one unit and record it in its recipe's manifest; returns the unit's JSON (`stages`: its rows).
    `force`: stage names to rebuild ("all": every one); `forced`: a directory the units of one build share,
    so that each forced content key is rebuilt once per build, not once per unit."""
    started = time.perf_counter()
    result = {**unit.to_json(), "stages": []}
    rows: list[dict] = result["stages"]

    def add(row: dict) -> None:
        rows.append(row)
        on_row(row)

    try:
        recipe = load_unit_recipe(unit.recipe) if unit.error is None else None
        steps = plan_unit(recipe, unit.variant, until, bundle=bundle_dir is not None) if recipe is not None else []
    except Exception as exc:  # noqa: BLE001 - the unit is one failed `load` row, the others go on
        recipe, steps, unit_error = None, [], _error_json(exc)
    else:
        unit_error = unit.error
    if recipe is None:
        error = unit_error or {"message": "the recipe did not load"}
        add({"stage": "load", "label": "load", "status": "failed", "seconds": 0.0, "artifacts": [],
             "reason": error["message"], "error": error})
        return {**result, "passed": False, "seconds": round(time.perf_counter() - started, 3)}
    done: dict[str, Artifact] = {}
    failed: str | None = None
    for step in steps:
        progress(f"{step.label}")
        if failed is not None:
            row = _row(step, "skipped", reason=f"{failed} failed")
        elif step.error is not None:
            row = _row(step, "failed", reason=step.error["message"], error=step.error)
        elif step.skip is not None:
            row = _row(step, "skipped", reason=step.skip)
        elif step.stage == "bundle":
            row = _bundle_row(step, recipe, unit, done, _labels(steps), bundle_dir, progress)
        elif step.stage == "bench":
            row = _bench_row(step, recipe, unit, done, _labels(steps), progress)
        else:
            row = _run_step(step, done, "all" in force or step.stage in force, forced, progress, warn)
        if row["status"] == "failed" and failed is None:
            failed = step.label
        add(row)
    result.update(passed=failed is None, seconds=round(time.perf_counter() - started, 3))
    from converter.pipeline.build_manifest import record_unit

    result["manifest"] = str(record_unit(recipe, unit, result))
    return result


def _labels(steps: list[Step]) -> dict[str, str]:
    """Stage name -> the label of the unit's run of it (verify aside: one per target)."""
    return {s.stage: s.label for s in steps if s.run is not None}


def _bench_row(step: Step, recipe, unit: Unit, done: dict[str, Artifact], labels: dict[str, str],
               progress: Progress) -> dict[str, Any]:
    from converter.pipeline.build_bench import bench_unit, report_files

    started = time.perf_counter()
    try:
        report, verdict, path = bench_unit(recipe, unit.variant, unit.stem, done[labels["onnx"]],
                                           done.get(labels.get("om", "")), progress)
    except Exception as exc:  # noqa: BLE001
        error = _error_json(exc)
        return _row(step, "failed", time.perf_counter() - started, reason=error["message"], error=error)
    row = _row(step, "built", time.perf_counter() - started, verdict=verdict)
    row["artifacts"] = report_files(path)
    if not report:
        row.update(status="failed", reason="; ".join(g.message for g in report.gates if not g.passed))
    return row


def _bundle_row(step: Step, recipe, unit: Unit, done: dict[str, Artifact], labels: dict[str, str],
                bundle_dir: Path, progress: Progress) -> dict[str, Any]:
    from converter.pipeline.bundle_contents import write_unit_bundle

    started = time.perf_counter()
    try:
        written = write_unit_bundle(recipe, unit, done, labels, bundle_dir, progress)
    except Exception as exc:  # noqa: BLE001
        error = _error_json(exc)
        return _row(step, "failed", time.perf_counter() - started, reason=error["message"], error=error)
    row = _row(step, "cached" if written.unchanged else "built", time.perf_counter() - started,
               files=written.files)
    row["artifacts"] = [{"role": "bundle", "path": str(written.path), "sha256": written.sha256, "size": written.size}]
    return row

"""Worker processes for `npuconv build`: up to `jobs` units at a time, each in `build_worker` started through
converter.process (its own process group; a signal to npuconv stops every worker, and each worker stops
its own children first). One unit failing, or its worker dying, does not stop the others.

The parent reads each worker's events (progress, rows, the result) from its stdout; the worker's stderr
goes to `<output_dir>/<stem>.build.log`."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from converter import process
from converter.pipeline.build_plan import Unit

# A worker stops its own children on SIGTERM (SIGKILL after process.GRACE_S): it needs longer than they do.
WORKER_GRACE_S = 2 * process.GRACE_S + 1.0
OnEvent = Callable[[int, dict], None]


@dataclass
class _Worker:
    index: int
    unit: Unit
    proc: subprocess.Popen
    log: Path
    buffer: bytes = b""
    rows: list[dict] = field(default_factory=list)
    result: dict | None = None


def build_log(unit: Unit, workdir: Path) -> Path:
    """Where a unit's worker writes its stderr: beside the unit's outputs, else in `workdir`."""
    if unit.output_dir is not None:
        try:
            unit.output_dir.mkdir(parents=True, exist_ok=True)
            return unit.output_dir / f"{unit.stem}.build.log"
        except OSError:
            pass
    return workdir / f"{unit.stem}.build.log"


def _start(index: int, unit: Unit, job: dict[str, Any], workdir: Path) -> _Worker:
    job_path = workdir / f"job-{index}.json"
    job_path.write_text(json.dumps({**job, "unit": unit.job(), "forced": str(workdir / "forced")}), encoding="utf-8")
    log = build_log(unit, workdir)
    with log.open("w", encoding="utf-8") as stderr:
        proc = process.start([sys.executable, "-m", "converter.pipeline.build_worker", str(job_path)],
                             grace=WORKER_GRACE_S, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr)
    return _Worker(index, unit, proc, log)


def _read(worker: _Worker, chunk: bytes, on_event: OnEvent) -> None:
    worker.buffer += chunk
    *lines, worker.buffer = worker.buffer.split(b"\n")
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "row":
            worker.rows.append(event["row"])
        elif event.get("event") == "result":
            worker.result = event["result"]
        on_event(worker.index, event)


def _finish(worker: _Worker) -> dict[str, Any]:
    """The unit's result; a worker that died without one is a failed unit with the rows it reported."""
    rc = process.wait(worker.proc)
    worker.proc.stdout.close()
    if worker.log.is_file() and worker.log.stat().st_size == 0:
        worker.log.unlink()  # nothing was said: no log file beside the outputs
    if worker.result is not None:
        return {**worker.result, "log": str(worker.log) if worker.log.is_file() else None}
    row = {"stage": "worker", "label": "worker", "status": "failed", "seconds": 0.0, "artifacts": [],
           "reason": f"the build worker exited with code {rc} before the unit finished (see {worker.log})"}
    return {**worker.unit.to_json(), "passed": False, "stages": [*worker.rows, row], "log": str(worker.log)}


def run_units(units: Sequence[Unit], *, jobs: int, job: dict[str, Any], on_event: OnEvent) -> list[dict[str, Any]]:
    """Build every unit (`job`: until, force, bundle_dir) with at most `jobs` workers at once; the results
    in the order of `units`. `on_event(index, event)` sees every event of every unit as it arrives."""
    from converter.pipeline.build import build_unit

    results: list[dict[str, Any] | None] = [None] * len(units)
    pending = deque(enumerate(units))
    running: dict[int, _Worker] = {}
    from converter.pipeline.runner import cache_root

    scratch = cache_root() / ".scratch"  # job files: removed when the build ends, however it ends
    scratch.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="build-", dir=scratch))
    selector = selectors.DefaultSelector()
    try:
        while pending or running:
            while pending and len(running) < jobs:
                index, unit = pending.popleft()
                if unit.error is not None:  # nothing to run: its one failed `load` row
                    results[index] = build_unit(unit, on_row=lambda row, i=index: on_event(i, {"event": "row", "row": row}))
                    on_event(index, {"event": "result", "result": results[index]})
                    continue
                worker = _start(index, unit, job, workdir)
                selector.register(worker.proc.stdout, selectors.EVENT_READ, worker)
                running[index] = worker
            for key, _ in selector.select(timeout=1.0) if running else ():
                worker = key.data
                chunk = os.read(key.fd, 1 << 16)
                if chunk:
                    _read(worker, chunk, on_event)
                    continue
                selector.unregister(key.fileobj)
                del running[worker.index]
                results[worker.index] = _finish(worker)
                if worker.result is None:
                    on_event(worker.index, {"event": "result", "result": results[worker.index]})
    finally:
        selector.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return [r for r in results if r is not None]

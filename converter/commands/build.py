"""`npuconv build`: the whole pipeline for many recipes (x om variants), each unit in a worker process;
manifests per recipe, bundles for the device box, one JUnit report, a summary. `--list-jobs` prints the
units for a CI system's matrix instead of building them."""

from __future__ import annotations

import shlex
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from converter.commands.common import JsonOpt, finish


STAGES = ("export", "onnx", "om", "reference", "verify", "bench")  # build_plan.STAGES, without importing it
StageName = Enum("StageName", {s: s for s in STAGES}, type=str)
ForceName = Enum("ForceName", {"all": "all", **{s: s for s in STAGES}}, type=str)


RecipesArg = Annotated[list[Path], typer.Argument(metavar="RECIPE...", help="Recipe YAML files (recipes/*.yaml).", show_default=False)]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Units built at once, each in a worker process.")]
UntilOpt = Annotated[StageName | None, typer.Option("--until", help="Stop after this stage.")]
ForceOpt = Annotated[list[ForceName] | None, typer.Option(
    "--force", metavar="STAGE", help="Rebuild this stage even when the cache holds its result (repeatable; all: every stage).")]
BundleOpt = Annotated[Path | None, typer.Option(
    "--bundle", metavar="DIR", help="Write DIR/<name>[_<variant>].tar.gz per unit: ONNX, OM, build script, saved reference.")]
JunitOpt = Annotated[Path | None, typer.Option("--junit", metavar="FILE", help="One JUnit XML report: every unit's stages and verify checks.")]
VariantOpt = Annotated[str | None, typer.Option("--variant", help="Only the units of this om variant (what a CI matrix job builds).")]
ListJobsOpt = Annotated[bool, typer.Option("--list-jobs", help="Print the units (recipe x om variant) and exit; with --json, a CI matrix.")]


def build_command(
    recipes: RecipesArg,
    jobs: JobsOpt = 1,
    until: UntilOpt = None,
    force: ForceOpt = None,
    bundle: BundleOpt = None,
    junit: JunitOpt = None,
    variant: VariantOpt = None,
    list_jobs: ListJobsOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Build every recipe: export -> onnx -> om -> reference -> verify -> bench (up to --until), one unit per
    recipe x om variant, in parallel worker processes (--jobs). Stages that nothing changed come from the
    cache; a stage this machine cannot run (no atc, no NPU) is skipped with the reason. Writes
    <output_dir>/<name>.manifest.json per recipe. Exit 1 when any unit failed."""
    from converter.console import emit_json
    from converter.pipeline.build_plan import list_units

    units = list_units(recipes, variant)
    if list_jobs:
        matrix = {"include": [_job(u) for u in units]}
        if json_:
            emit_json(matrix)
        else:
            for job in matrix["include"]:  # tab-separated: unit, then the arguments that build it
                print(f"{job['unit']}\t{job['args']}" + (f"\t(does not load: {job['error']})" if job.get("error") else ""))
        return
    results = _run(units, jobs, until, force, bundle)
    data = {"passed": all(r["passed"] for r in results), "recipes": results}
    if junit is not None:
        from converter.pipeline.build_junit import write_build_junit

        write_build_junit(results, junit)
        data["junit"] = str(junit)
    finish(data, data["passed"], lambda console: _summary(results, console), json_)


def _job(unit) -> dict:
    """One matrix entry: what a CI job needs to build exactly this unit (`npuconv build $args`)."""
    args = [str(unit.recipe), *(["--variant", unit.variant] if unit.variant else [])]
    job = {"unit": unit.stem, "recipe": str(unit.recipe), "name": unit.name, "variant": unit.variant,
           "args": shlex.join(args)}
    if unit.error is not None:
        job["error"] = unit.error["message"]
    return job


def _run(units, jobs: int, until, force, bundle: Path | None) -> list[dict]:
    from converter.pipeline.build_pool import run_units

    job = {"until": until.value if until else None, "force": sorted({f.value for f in force or ()}),
           "bundle_dir": str(bundle.absolute()) if bundle is not None else None}
    with _Progress(units) as progress:
        return run_units(units, jobs=jobs, job=job, on_event=progress.event)


class _Progress:
    """One line per unit on stderr: a live rich line on a terminal, else one plain line per finished stage."""

    def __init__(self, units) -> None:
        from converter.console import err

        self.units = units
        self.live = None
        if err.is_terminal:
            from rich.progress import (
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.live = Progress(SpinnerColumn(), TimeElapsedColumn(), TextColumn("{task.description}"), console=err)
            self.tasks = [self.live.add_task(f"{u.stem}: waiting", start=False) for u in units]

    def __enter__(self) -> _Progress:  # noqa: PYI034
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.stop()

    def event(self, index: int, event: dict) -> None:
        from rich.markup import escape

        from converter.console import err

        stem = self.units[index].stem
        kind = event.get("event")
        if self.live is None:
            if kind == "row":
                err.print(f"{escape(stem)}: {_row_text(event['row'])}", soft_wrap=True)
            elif kind == "warning":
                err.print(f"[yellow]warning:[/] {escape(stem)}: {escape(event['text'])}", soft_wrap=True)
            return
        task = self.tasks[index]
        self.live.start_task(task)
        if kind == "progress":
            self.live.update(task, description=f"{escape(stem)}: {escape(event['text'][:100])}")
        elif kind == "row":
            self.live.update(task, description=f"{escape(stem)}: {_row_text(event['row'])}")
        elif kind == "result":
            verdict = "[green]ok[/]" if event["result"]["passed"] else "[bold red]FAILED[/]"
            self.live.update(task, description=f"{escape(stem)}: {verdict}")
            self.live.stop_task(task)


STYLE = {"built": "green", "cached": "cyan", "failed": "bold red", "skipped": "yellow"}


def _row_text(row: dict) -> str:
    from rich.markup import escape

    text = f"{escape(row.get('label', row['stage']))} [{STYLE[row['status']]}]{row['status']}[/] ({row['seconds']:.1f}s)"
    return text + (f": {escape(row['reason'])}" if row.get("reason") else "")


def _summary(results: list[dict], console) -> None:
    """The summary table, then the reason of every failed or skipped stage."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="npuconv build", title_justify="left")
    for column in ("unit", "result", "stages", "seconds"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for r in results:
        stages = " ".join(f"{escape(s.get('label', s['stage']))}:[{STYLE[s['status']]}]{s['status']}[/]" for s in r["stages"])
        table.add_row(escape(r["unit"]), "[green]ok[/]" if r["passed"] else "[bold red]FAILED[/]", stages,
                      f"{r.get('seconds', 0.0):.1f}")
    console.print(table)
    for r in results:
        for s in r["stages"]:
            if s["status"] in ("failed", "skipped"):
                console.print(f"{escape(r['unit'])}: {escape(s.get('label', s['stage']))} {s['status']}: "
                              f"{escape(s.get('reason', ''))}", soft_wrap=True)
        if not r["passed"] and r.get("log"):
            console.print(f"{escape(r['unit'])}: log {escape(r['log'])}", soft_wrap=True)
    manifests = sorted({r["manifest"] for r in results if r.get("manifest")})
    for path in manifests:
        console.print(f"manifest: {escape(path)}", soft_wrap=True)

"""`npuconv bench`: latency, throughput, cold start and memory of the recipe's model on one or more
backends, interleaved, gated by the recipe's SLOs and by an earlier run."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated

import typer

from converter.commands.common import (
    ForceOpt,
    JsonOpt,
    ModelDirOpt,
    SetOpt,
    VariantOpt,
    default_om,
    finish,
    load,
)

RecipesArg = Annotated[list[Path], typer.Argument(
    help="Recipe YAML(s), or bundles (.tar.gz) from `build --bundle` to time what they carry; several give one report.",
    show_default=False)]
BackendOpt = Annotated[list[str] | None, typer.Option(
    "--backend", "-b", help="onnx[:provider] | onnx-raw | onnx-file:PATH | paddle | om (repeatable; default onnx).")]
BatchOpt = Annotated[str | None, typer.Option("--batch", help="Batch sizes, e.g. 1,4,8 (an ONNX per size; default the recipe's).")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", min=1, help="Intra-op threads for ONNX Runtime and Paddle alike.")]
BaselineOpt = Annotated[str | None, typer.Option("--baseline", help="Backend the ratios refer to (default: the first).")]
BaselineFileOpt = Annotated[Path | None, typer.Option("--baseline-file", help="An earlier `bench --json`: fail on regressions.")]
MaxRegressionOpt = Annotated[str, typer.Option("--max-regression", help="Allowed slow-down of median and p99, e.g. 10%.")]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help="Write the latency distributions as a PNG here.")]
CsvOpt = Annotated[Path | None, typer.Option("--csv", help="Write one CSV row per recipe, batch and backend here.")]
OmOpt = Annotated[Path | None, typer.Option("--om", help="OM file for --backend om (default: the om stage's output).")]


def bench_command(
    recipes: RecipesArg,
    backend: BackendOpt = None,
    batch: BatchOpt = None,
    threads: ThreadsOpt = None,
    baseline: BaselineOpt = None,
    baseline_file: BaselineFileOpt = None,
    max_regression: MaxRegressionOpt = "10%",
    plot: PlotOpt = None,
    csv: CsvOpt = None,
    om: OmOpt = None,
    variant: VariantOpt = None,
    set_: SetOpt = None,
    model_dir: ModelDirOpt = None,
    force: ForceOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Measure latency (min, mean, median, p90, p95, p99, max, std), throughput, cold start and peak RSS
    of the recipe's ONNX, the Paddle source, another ONNX or the OM, each backend in its own process, in
    interleaved rounds. Exit 1 when an SLO (`bench.slo`) or the regression check (--baseline-file) fails."""
    from converter.bench.backends import parse_backend
    from converter.bench.gates import parse_regression
    from converter.bench.suite import Comparison, run_suite
    from converter.commands.bench_bundle import bundle_groups
    from converter.errors import InputError
    from converter.pipeline.bundle import is_bundle

    backends = [parse_backend(b) for b in (backend or ["onnx"])]
    labels = [b.label for b in backends]
    if len(set(labels)) != len(labels):
        raise InputError(f"a backend is named twice: {', '.join(labels)}", hint="name each backend once")
    base = parse_backend(baseline).label if baseline else labels[0]
    if base not in labels:
        raise InputError(f"--baseline {baseline}: not among the backends ({', '.join(labels)})", hint="name one of the --backend values")
    if om is not None and len(recipes) > 1:
        raise InputError("--om names one OM file but several recipes are given", hint="bench one recipe with --om")
    bundles = [p for p in recipes if is_bundle(p)]
    if bundles and (batch or variant or set_ or model_dir or force):
        raise InputError("--batch, --variant, --set, --model-dir and --force apply to a recipe; a bundle is timed "
                         "as it was built", hint="drop those options, or bench the recipe on the build server")
    limit = parse_regression(max_regression)
    comparison = Comparison(_read_baseline(baseline_file), limit, str(baseline_file)) if baseline_file else None
    batches = _parse_batches(batch)
    with contextlib.ExitStack() as unpacked:  # bundles stay unpacked until measured
        groups = [*_prepare([p for p in recipes if p not in bundles], backends, base, batches, threads, om, variant,
                            set_ or [], model_dir, force),
                  *bundle_groups(bundles, backends, base, threads, om, unpacked)]
        with _progress_bar(groups) as on_progress:
            report = run_suite(groups, threads, comparison, on_progress)
    data = report.to_json()
    if csv is not None:
        from converter.bench.csvfile import write_csv

        data["csv"] = str(write_csv(report, csv))
    if plot is not None:
        from converter.bench.plot import write_plot

        data["plot"] = str(write_plot(report, plot))
    finish(data, bool(report), lambda console: _render(report, data, console), json_)


def obtain_onnx(recipe_path: Path, overrides: list[str], model_dir: Path | None, batch: int | None, force: bool, step):
    """The recipe (at `batch`, when given), its onnx artifact and the Paddle files a `paddle` backend runs,
    from the pipeline (export? -> onnx). Another batch size is the recipe with every input's first dimension
    overridden (`--set inputs.N.shape=[...]`) and its own output directory."""
    from converter.console import warn
    from converter.pipeline.plan import execute, onnx_runs
    from converter.stages.verify_stage import paddle_files

    recipe = load(recipe_path, overrides, model_dir)
    if batch is not None and batch != recipe.inputs[0].shape[0]:
        shapes = [f"inputs.{i}.shape={[batch, *spec.shape[1:]]}" for i, spec in enumerate(recipe.inputs)]
        recipe = load(recipe_path, [*overrides, *shapes], model_dir, Path(recipe.output_dir) / f"batch{batch}")
    outcomes = execute(onnx_runs(recipe), force=force, keep_going=True, progress=step, warn=warn)
    export = next((o.artifact for o in outcomes if o.run.stage.name == "export"), None)
    return recipe, outcomes[-1].artifact, paddle_files(recipe, export)


def _prepare(recipes, backends, base, batches, threads, om, variant, overrides, model_dir, force):
    """Check every backend can run here, then per recipe and batch: the ONNX, FLOPs, feeds and specs."""
    from converter.artifacts import file_digest
    from converter.bench.engine import Plan
    from converter.bench.flops import count_flops
    from converter.bench.backends import spec_for
    from converter.bench.inputs import rebatch
    from converter.bench.report import ModelEntry
    from converter.bench.suite import Group
    from converter.console import steps
    from converter.recipe.om import select_variant
    from converter.runners.factory import Target, TargetContext, check_available
    from converter.stages.verify_stage import paddle_files
    from converter.verify.inputs import load_samples

    loaded = [load(p, overrides, model_dir) for p in recipes]
    om_paths = {}
    for path, r in zip(recipes, loaded):
        om_paths[path] = om or (default_om(r, variant) if any(b.kind == "om" for b in backends) else None)
        ctx = TargetContext(paddle=paddle_files(r, None), om=om_paths[path])
        for b in backends:
            if b.kind == "paddle" and getattr(r, "export", None) is not None:
                continue  # the export stage makes the Paddle model
            if b.kind != "onnx-raw":  # fail before building anything: no runtime, no file, no Paddle source
                check_available(Target(b.kind, b.arg), ctx)
    groups = []
    with steps("bench: preparing models") as step:
        for path, first in zip(recipes, loaded):
            cfg = first.bench
            plan = Plan(cfg.warmup_runs(), cfg.warmup_seconds(), cfg.timed_iterations(), cfg.duration_s)
            aipp = getattr(select_variant(first.om, variant), "aipp", None)
            samples = load_samples(first, raw_images=getattr(aipp, "source_order", None) if aipp else None)
            for size in batches or [None]:
                step(f"{first.name}: ONNX{f' at batch {size}' if size else ''}")
                recipe, onnx, paddle = obtain_onnx(path, overrides, model_dir, size, force, step)
                graphs = {g["role"]: Path(onnx.published[g["role"]]) for g in onnx.card["graphs"]}
                onnx_path = graphs.get("model") or graphs["encoder"]  # a split decoder: its FLOPs are the encoder's
                n = recipe.inputs[0].shape[0]
                feeds = rebatch([s.feed for s in samples], n)
                target_feeds = rebatch([s.target_feed or s.feed for s in samples], n)
                step(f"{first.name}: counting FLOPs")
                model = ModelEntry(recipe.name, n, str(onnx_path), file_digest(Path(onnx_path)), recipe.input_shapes(),
                                   count_flops(onnx_path), str(onnx.path("raw")))
                specs = [spec_for(b, recipe.name, graphs, onnx.card.get("host_loop"), model.raw_onnx, om_paths[path],
                                      threads, paddle) for b in backends]
                raw_fed = [s.kind == "om" or s.options.get("om") for s in specs]
                groups.append(Group(model, tuple(specs), tuple(target_feeds if r else feeds for r in raw_fed),
                                    plan, cfg.slo, base))
    return groups


def _parse_batches(text: str | None) -> list[int]:
    from converter.errors import InputError

    if not text:
        return []
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise InputError(f"--batch {text!r}: expected batch sizes such as 1,4,8", hint="comma-separated integers >= 1")
    return list(dict.fromkeys(sizes))


def _read_baseline(path: Path) -> dict:
    from converter.errors import InputError

    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"--baseline-file {path}: cannot read it as JSON ({exc})", hint="pass the output of an earlier `npuconv bench --json`") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise InputError(f"--baseline-file {path}: not a `npuconv bench --json` report (no results list)",
                         hint="pass the output of an earlier `npuconv bench --json`")
    return data


@contextlib.contextmanager
def _progress_bar(groups):
    """A progress bar on stderr (a log line per recipe and batch when stderr is not a terminal), redrawn
    only between timed blocks: auto-refresh is off, so no thread redraws it while a backend is timed."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from converter.console import err

    if not err.is_terminal:  # logs: one line per recipe and batch, printed between blocks
        seen = set()

        def log(group, label: str, done: int, total: int) -> None:
            if id(group) not in seen:
                seen.add(id(group))
                err.print(f"measuring {group.model.recipe} batch {group.model.batch}: "
                          f"{', '.join(s.label for s in group.specs)} ({total} steps)", soft_wrap=True)

        yield log
        return
    sizes = [len(g.specs) * (len(g.plan.blocks()) + 2) for g in groups]
    offsets = {id(g): sum(sizes[:i]) for i, g in enumerate(groups)}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, auto_refresh=False, transient=True) as progress:
        task = progress.add_task("bench", total=sum(sizes))

        def update(group, label: str, done: int, _total: int) -> None:
            progress.update(task, completed=offsets[id(group)] + done,
                            description=f"{group.model.recipe} batch {group.model.batch}: {label}")
            progress.refresh()

        yield update


def _render(report, data: dict, console) -> None:
    """The results table, then gates that failed (with both numbers) and notes."""
    from rich.markup import escape
    from rich.table import Table

    env = data["environment"]
    verdict = "[bold green]PASS[/]" if data["passed"] else "[bold red]FAIL[/]"
    gates = f"{len(report.gates)} gate(s)" if report.gates else "no gates"
    console.print(f"bench: {env['cpu_model']}, {env['usable_cpus']} CPUs, threads {env['threads'] or 'backend default'}, "
                  f"load {env['loadavg_1m']}: {gates} {verdict}", soft_wrap=True)
    regions = sorted({f"{r.backend}: {r.timed_region}" for r in report.results})
    table = Table(caption="latency in ms; samples/s = batch / mean latency; ratio = median / the baseline backend's; "
                  "cold start = session creation + first run; RSS = the backend process's peak\n"
                  + "\n".join(f"timed: {escape(t)}" for t in regions), caption_justify="left")
    columns = ("recipe", "batch", "backend", "median", "p90", "p99", "max", "mean ± std", "samples/s", "ratio",
               "GFLOP/s", "cold start", "RSS MB", "runs")
    for col in columns:
        table.add_column(col, justify="left" if col in ("recipe", "backend") else "right")
    for r in report.results:
        s = r.latency_ms
        table.add_row(r.recipe, str(r.batch), escape(r.backend), f"{s.median:.3f}", f"{s.p90:.3f}", f"{s.p99:.3f}",
                      f"{s.max:.3f}", f"{s.mean:.3f}±{s.std:.3f}", f"{r.throughput:.1f}",
                      f"{r.ratio_to_baseline:.3f}" if r.ratio_to_baseline else "-",
                      f"{r.gflops_per_s:.1f}" if r.gflops_per_s else "-", f"{r.cold_start_ms:.0f} ms",
                      f"{r.peak_rss_mb:.0f}", str(r.iterations))
    console.print(table)
    for r in report.results:
        for g in r.graphs:
            console.print(f"  {r.recipe} {escape(r.backend)} graph {escape(g.role)}: {g.calls:g} call(s) per run, "
                          f"median {g.latency_ms.median:.3f} ms, p99 {g.latency_ms.p99:.3f} ms per call", soft_wrap=True)
    for gate in report.gates:
        mark = "[green]pass[/]" if gate.passed else "[bold red]FAIL[/]"
        console.print(f"{gate.kind} {mark}: {escape(gate.message)}", soft_wrap=True)
    for note in report.notes:
        console.print(f"note: {escape(note)}", soft_wrap=True)
    for key in ("csv", "plot"):
        if key in data:
            console.print(f"{key}: {escape(data[key])}", soft_wrap=True)

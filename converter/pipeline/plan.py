"""`plan`: the ordered stage runs a command needs, and `execute`: run them in order, each through
`run_stage`, feeding every run the artifacts of the runs it reads.

    export? -> onnx (static) ........................ `npuconv onnx`, `lint`, `verify` (the reference)
    export? -> onnx[<gears>] -> om[<variant>] ........ `npuconv om` (one ONNX per gear set, named for it)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from converter.artifacts import Artifact
from converter.pipeline.runner import Warn, run_stage
from converter.recipe.model import Recipe
from converter.stage import Progress, StageRun, quiet


def gear_tag(option: str | None, value: str) -> str:
    """A file-name tag for a gear set: `b1-4-8`, `hw48x320-48x640`, `dims1x320-4x640`; '' when static."""
    if not option:
        return ""
    if option == "dynamic_batch_size":
        return "b" + "-".join(value.split(","))
    prefix = "hw" if option == "dynamic_image_size" else "dims"
    return prefix + "-".join(p.replace(",", "x") for p in value.split(";"))


def _judge_parity(recipe: Recipe) -> Callable[[Artifact], object]:
    def judge(artifact: Artifact):
        from converter.stages.onnx_verdict import parity_report

        return parity_report(artifact.card, recipe.verify)

    return judge


def export_runs(recipe: Recipe) -> list[StageRun]:
    """The export run when the recipe builds its model from dygraph code (`export:`), else nothing."""
    if getattr(recipe, "export", None) is None:
        return []
    from converter.pipeline.registry import stage
    from converter.stages.export import ExportSection, export_verdict

    return [StageRun("export", stage("export"), ExportSection.from_recipe(recipe), out_dir=Path(recipe.output_dir),
                     stem=recipe.name, judge=export_verdict)]


def onnx_runs(recipe: Recipe, dynamic=None) -> list[StageRun]:
    """export? -> onnx, with the input axes of `dynamic` (a gear plan) kept symbolic."""
    from converter.pipeline.registry import stage
    from converter.stages.onnx_stage import OnnxSection

    runs = export_runs(recipe)
    axes = {k: tuple(v) for k, v in (dynamic.axes if dynamic else {}).items()}
    tag = gear_tag(dynamic.option, dynamic.value) if dynamic else ""
    section = OnnxSection(recipe.name, None if runs else recipe.source, tuple(recipe.inputs), recipe.onnx, axes)
    label = f"onnx[{tag}]" if tag else "onnx"
    runs.append(StageRun(label, stage("onnx"), section, upstream={"export": "export"} if runs else {},
                         out_dir=Path(recipe.output_dir), stem=f"{recipe.name}_{tag}" if tag else recipe.name,
                         judge=_judge_parity(recipe)))
    return runs


def om_runs(recipe: Recipe, variant: str | None = None) -> list[StageRun]:
    """export? -> onnx[gears of the variant] -> om[variant]."""
    from converter.pipeline.registry import stage
    from converter.stages.atc.stage import OmSection, check_recipe, om_stem

    cfg, _, dynamic = check_recipe(recipe, variant)
    runs = onnx_runs(recipe, dynamic)
    stem = om_stem(recipe, cfg)
    out_dir = Path(recipe.output_dir)
    section = OmSection(recipe, cfg, dynamic, stem, out_dir / f"{stem}.atc.log")
    runs.append(StageRun(f"om[{cfg.variant or 'default'}]", stage("om"), section, upstream={"onnx": runs[-1].label},
                         out_dir=out_dir, stem=stem))
    return runs


def reference_runs(recipe: Recipe, variant: str | None = None, *, for_om: bool = False,
                   samples: int | None = None) -> list[StageRun]:
    """export? -> onnx -> reference: the verification samples and ONNX Runtime's outputs on them. For an
    OM (`for_om`), on the ONNX the variant's OM is built from, keeping raw images when it has AIPP."""
    from converter.pipeline.registry import stage
    from converter.recipe.om import select_variant
    from converter.stages.reference import ReferenceSection

    raw_images = None
    if for_om:
        runs = om_runs(recipe, variant)[:-1]
        aipp = select_variant(recipe.om, variant).aipp
        raw_images = aipp.source_order if aipp is not None else None
    else:
        runs = onnx_runs(recipe)
    runs.append(StageRun("reference", stage("reference"), ReferenceSection(recipe, samples, raw_images),
                         upstream={"onnx": runs[-1].label}))
    return runs


@dataclass(frozen=True)
class Outcome:
    """One executed run: its artifact and, for a stage with a check, the judged report."""

    run: StageRun
    artifact: Artifact
    report: object | None

    @property
    def passed(self) -> bool:
        return self.report is None or bool(self.report)


def execute(runs: Iterable[StageRun], *, force: bool | Iterable[str] = False, keep_going: bool = False,
            progress: Progress = quiet, warn: Warn = quiet) -> list[Outcome]:
    """Run `runs` in order. `force`: True rebuilds every run, a set of stage names rebuilds those. A run
    whose check fails stops the runs after it (they are left out of the result) unless `keep_going`."""
    forced = (lambda name: True) if force is True else (lambda name, names=set(force or ()): name in names)
    done: dict[str, Artifact] = {}
    outcomes: list[Outcome] = []
    for run in runs:
        upstream: Mapping[str, Artifact] = {name: done[label] for name, label in run.upstream.items()}
        artifact = run_stage(run, upstream, force=forced(run.stage.name), progress=progress, warn=warn)
        done[run.label] = artifact
        report = run.judge(artifact) if run.judge is not None else None
        outcomes.append(Outcome(run, artifact, report))
        if report is not None and not report and not keep_going:
            break
    return outcomes

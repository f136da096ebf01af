"""What `npuconv build` runs: the units of work (one recipe x om variant; one unit per recipe without `om:`)
and, for one unit, its steps in pipeline order, planned with plan.py's functions:

    export? -> onnx[gears] -> om[variant] -> reference -> verify[target]... -> bench? -> bundle?

A stage the recipe does not configure is left out (bench: without a `bench:` section); one that needs what this machine lacks (atc) is planned
as skipped with the reason; one whose planning fails (a broken om rule) is planned as failed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converter.errors import InputError, NpuconvError
from converter.recipe.model import Recipe
from converter.stage import StageRun

STAGES = ("export", "onnx", "om", "reference", "verify", "bench")


@dataclass(frozen=True)
class Unit:
    """One unit of work. `error`: the recipe failed to load (the unit is then one failed `load` row)."""

    recipe: Path
    name: str
    variant: str | None = None
    output_dir: Path | None = None
    variants: tuple[str, ...] = ()  # every variant of the recipe (the manifest keeps only these)
    error: dict | None = None

    @property
    def stem(self) -> str:
        """`<name>` or `<name>_<variant>`: file names of the unit's OM and bundle."""
        return f"{self.name}_{self.variant}" if self.variant else self.name

    def to_json(self) -> dict[str, Any]:
        return {"recipe": str(self.recipe), "name": self.name, "variant": self.variant, "unit": self.stem,
                "output_dir": str(self.output_dir) if self.output_dir else None}

    def job(self) -> dict[str, Any]:
        """Every field, JSON-able (a worker process gets its unit this way)."""
        return {**self.to_json(), "variants": list(self.variants), "error": self.error}

    @classmethod
    def from_job(cls, data: dict[str, Any]) -> Unit:
        return cls(Path(data["recipe"]), data["name"], data["variant"],
                   Path(data["output_dir"]) if data["output_dir"] else None, tuple(data["variants"]), data["error"])


def _load_error(exc: BaseException) -> dict:
    if isinstance(exc, NpuconvError):
        return exc.to_json()
    from converter.errors import path_error

    bad = path_error(exc) if isinstance(exc, OSError) else None
    if bad is not None:
        return bad.to_json()
    return {"type": type(exc).__name__, "message": str(exc), "hint": ""}


def load_unit_recipe(path: Path) -> Recipe:
    """Load a recipe as `npuconv build` does (no overrides)."""
    from converter.recipe.loader import load_recipe

    if path.is_dir():
        raise InputError(f"cannot read recipe {path}: it is a directory", hint="pass recipe YAML files")
    return load_recipe(path)


def list_units(paths: Sequence[Path], variant: str | None = None) -> list[Unit]:
    """Every unit of `paths`, in order (only the units of om variant `variant` when given). A recipe that
    fails to load is one unit named by its file's stem, carrying the error."""
    from converter.recipe.om import OmConfig, select_variant

    units: list[Unit] = []
    for path in paths:
        path = Path(path)
        try:
            recipe = load_unit_recipe(path)
            builds = [] if recipe.om is None else [recipe.om] if isinstance(recipe.om, OmConfig) else list(recipe.om)
            names = tuple(b.variant or "default" for b in builds) or ("default",)
            if variant is not None:
                chosen = [select_variant(recipe.om, variant).variant]
            elif len(set(names)) == len(names) and (len(builds) < 2 or all(b.variant for b in builds)):
                chosen = [b.variant for b in builds] or [None]
            else:  # unnamed or repeated variants: one unit, whose om step names the broken rule
                chosen = [None]
        except (NpuconvError, OSError) as exc:
            units.append(Unit(path, path.name.split(".")[0], error=_load_error(exc)))
            continue
        units += [Unit(path, recipe.name, v, Path(recipe.output_dir), names) for v in chosen]
    return units


@dataclass(frozen=True)
class Step:
    """One planned row: a stage run, or why it will not run (`skip`) or failed to plan (`error`)."""

    stage: str
    label: str
    run: StageRun | None = None
    skip: str | None = None
    error: dict | None = None
    target: str | None = None


def default_targets(recipe: Recipe) -> list[str]:
    """`verify.targets`, else: paddle when the model comes from Paddle, om when the recipe builds an OM."""
    if recipe.verify.targets is not None:
        return list(recipe.verify.targets)
    paddle = recipe.export is not None or getattr(recipe.source, "format", None) == "paddle"
    return (["paddle"] if paddle else []) + (["om"] if recipe.om is not None else [])


def _verify_judge(artifact):
    return VerifyVerdict(artifact.card)


@dataclass(frozen=True)
class VerifyVerdict:
    """The verify stage's verdict, as its card records it (its tolerances are part of its key)."""

    card: dict

    def __bool__(self) -> bool:
        return bool(self.card.get("passed"))

    def to_json(self) -> dict:
        outputs = {o["name"]: {k: o.get(k) for k in ("max_abs", "cosine", "passed")} for o in self.card.get("outputs", [])}
        data = {"passed": bool(self), "target": self.card.get("target"), "precision": self.card.get("precision"),
                "samples": len(self.card.get("samples", [])), "outputs": outputs}
        if "task" in self.card:
            data["task"] = self.card["task"]
        return data


def plan_unit(recipe: Recipe, variant: str | None, until: str | None = None, bundle: bool = False) -> list[Step]:
    """The steps of one unit, up to `until` (a stage name), plus the bundle step when `bundle`."""
    from converter.pipeline.plan import om_runs, onnx_runs, reference_runs
    from converter.pipeline.registry import stage
    from converter.stages.atc.run import ATC_ABSENT, find_atc
    from converter.stages.verify_stage import VerifySection

    last = STAGES.index(until) if until else len(STAGES) - 1
    wanted = {name for name in STAGES if STAGES.index(name) <= last}
    steps: list[Step] = []
    om_step: Step | None = None
    if recipe.om is not None:
        try:
            runs = om_runs(recipe, variant)
            om_run = runs.pop()
            om_step = Step("om", om_run.label, om_run, skip=None if find_atc() else ATC_ABSENT)
        except NpuconvError as exc:
            runs = onnx_runs(recipe)
            om_step = Step("om", f"om[{variant or 'default'}]", error=exc.to_json())
    else:
        runs = onnx_runs(recipe)
    steps += [Step(run.stage.name, run.label, run) for run in runs if run.stage.name in wanted]
    if om_step is not None and "om" in wanted:
        steps.append(om_step)
    onnx_label = runs[-1].label
    targets = default_targets(recipe)
    if "reference" in wanted and (targets or bundle):
        for_om = om_step is not None and om_step.error is None
        steps.append(Step("reference", "reference", reference_runs(recipe, variant, for_om=for_om)[-1]))
        upstream = {"reference": "reference", "onnx": onnx_label}
        if recipe.export is not None:
            upstream["export"] = "export"
        for target in targets if "verify" in wanted else ():
            label = f"verify[{target}]"
            if target == "om" and om_step is None:
                error = InputError("verify.targets lists om, but the recipe has no `om:` section",
                                   hint="add an om section, or drop om from verify.targets")
                steps.append(Step("verify", label, error=error.to_json(), target=target))
                continue
            if target == "om" and (om_step.skip or om_step.error or "om" not in wanted):
                why = om_step.skip or "the om stage could not be planned"
                steps.append(Step("verify", label, skip=f"no OM was built ({why})", target=target))
                continue
            extra = {"om": om_step.label} if target == "om" else {}
            run = StageRun(label, stage("verify"), VerifySection(recipe, target, variant), upstream={**upstream, **extra},
                           judge=_verify_judge)
            steps.append(Step("verify", label, run, target=target))
    if "bench" in wanted and "bench" in recipe.model_fields_set:  # measured only where the recipe asks
        steps.append(Step("bench", "bench"))
    if bundle:
        skip = None if "reference" in wanted else f"a bundle carries the saved reference: --until {until} stops before it"
        steps.append(Step("bundle", "bundle", skip=skip))
    return steps

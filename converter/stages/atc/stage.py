"""The `om` stage: the onnx artifact (one graph, or encoder + step) -> validated atc plan -> OM per graph.

    recipe rules (before anything runs) -> ONNX facts from the onnx artifact (its card and file) ->
    argv + cfg files per graph (the plan; what --dry-run prints) -> atc in scratch -> success = exit 0,
    the marker and the .om -> the OM, its log and `<stem>.om.card.json` (ONNX sha256, SoC, precision,
    CANN version, atc argv)

The key covers the ONNX bytes (through the upstream artifact), atc's options and generated cfg files (the
section), and the atc executable with its CANN version however atc was found ("unknown" plus the
executable's digest when the version cannot be read)."""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converter import ascend as opt
from converter.artifacts import Artifact, file_digest
from converter.compare import precision_of
from converter.errors import RecipeError, StageFailed
from converter.recipe.model import Recipe
from converter.recipe.om import OmConfig, select_variant
from converter.stage import Progress, Stage, StageOutput
from converter.stages.atc.argv import AtcPaths, build_argv, input_shape_arg
from converter.stages.atc.errors import parse_log
from converter.stages.atc.files import AIPP, KEEP_DTYPE, MIXLIST, generated_files
from converter.stages.atc.host import cann_mismatch
from converter.stages.atc.run import (
    AtcFailed,
    atc_env,
    cann_version_of,
    require_atc,
    run_logged,
)
from converter.stages.atc.validate import (
    DynamicPlan,
    check_against_onnx,
    check_config,
    check_variants,
)

OM_EXAMPLE = textwrap.dedent("""\
    om:
      soc_version: Ascend310P3
      precision_mode_v2: origin""")
UNKNOWN_CANN_WARNING = ("the CANN version of {atc} cannot be read (no version.cfg or *_install.info next to it): "
                        "the OM cache keys on the atc executable's digest instead, and the card says 'unknown'")


def resolve_config(recipe: Recipe, variant: str | None) -> OmConfig:
    """The om build to use; RecipeError when the recipe has no `om` or no such variant."""
    if recipe.om is None:
        raise RecipeError("the recipe has no `om` section (key `om` is missing), so there is nothing to compile",
                          hint=f"add a minimal om section:\n{OM_EXAMPLE}")
    check_variants(recipe.om)
    return select_variant(recipe.om, variant)


def om_stem(recipe: Recipe, cfg: OmConfig) -> str:
    """`<name>` or `<name>_<variant>`: the OM file name without `.om`."""
    return f"{recipe.name}_{cfg.variant}" if cfg.variant else recipe.name


def check_recipe(recipe: Recipe, variant: str | None = None) -> tuple[OmConfig, list[str], DynamicPlan]:
    """Resolve the variant and check every rule that needs only the recipe."""
    cfg = resolve_config(recipe, variant)
    warnings, dynamic = check_config(recipe, cfg)
    return cfg, warnings, dynamic


@dataclass(frozen=True)
class OmSection:
    """One om build of one recipe: its config, the gear plan and the file stem."""

    recipe: Recipe
    cfg: OmConfig
    dynamic: DynamicPlan
    stem: str
    log: Path  # atc's output streams here while it runs (not part of the key)

    def key_json(self) -> dict:
        files = generated_files(self.recipe, self.cfg)
        cfg = self.cfg.model_dump(mode="json", exclude={"paddlex_model_name", "cann_version"})
        return {"cfg": cfg, "files": files, "input_shape": input_shape_arg(self.recipe.input_shapes(), self.dynamic.axes),
                "dynamic": [self.dynamic.option, self.dynamic.value]}


@dataclass(frozen=True)
class OmPlan:
    """Everything atc will be given, per graph, decided before it starts (what --dry-run prints)."""

    stem: str
    variant: str | None
    soc_version: str
    onnx: Mapping[str, Path]           # graph role -> ONNX atc reads
    argv: Mapping[str, tuple[str, ...]]  # graph role -> atc argv
    files: Mapping[str, str]           # cfg file path -> content
    warnings: tuple[str, ...]
    dynamic: DynamicPlan
    input_shape: str
    precision: str

    def to_json(self) -> dict:
        roles = list(self.argv)
        single = roles == ["model"]
        return {
            "argv": list(self.argv["model"]) if single else None,
            "graphs": [{"role": r, "onnx": str(self.onnx[r]), "argv": list(self.argv[r])} for r in roles],
            "files": dict(self.files), "warnings": list(self.warnings), "variant": self.variant,
            "soc_version": self.soc_version, "input_shape": self.input_shape, "precision": self.precision,
            "onnx": str(self.onnx["model"]) if single else None,
            "dynamic": {"option": self.dynamic.option, "value": self.dynamic.value,
                        "axes": {k: list(v) for k, v in self.dynamic.axes.items()}},
        }


def om_name(stem: str, role: str) -> str:
    """`<stem>.om` for a one-graph model, `<stem>.<role>.om` for each graph of a split one."""
    return f"{stem}.om" if role == "model" else f"{stem}.{role}.om"


def plan_atc(section: OmSection, onnx: Artifact, onnx_paths: Mapping[str, Path], out_dir: Path,
             cfg_dir: Path) -> OmPlan:
    """Check the ONNX against the rules and build atc's argv for each graph: atc reads `onnx_paths`,
    writes `<out_dir>/<stem>[.<role>].om`, and finds its cfg files in `cfg_dir`."""
    recipe, cfg, dynamic = section.recipe, section.cfg, section.dynamic
    warnings, _ = check_config(recipe, cfg)
    graphs = [g["role"] for g in onnx.card.get("graphs", [{"role": "model"}])]
    for role in graphs:
        inputs, opset, nodes = read_onnx_facts(onnx.path(role))
        if role == "model":
            warnings += check_against_onnx(recipe, cfg, dynamic, inputs, opset, nodes)
    contents = generated_files(recipe, cfg)
    paths = {name: str(cfg_dir / name) for name in contents}
    argv = {}
    for role in graphs:
        atc_paths = AtcPaths(model=str(onnx_paths[role]), output=str(out_dir / om_name(section.stem, role)[:-3]),
                             keep_dtype=paths.get(KEEP_DTYPE), modify_mixlist=paths.get(MIXLIST),
                             insert_op_conf=paths.get(AIPP) if role in ("model", "encoder") else None)
        argv[role] = tuple(build_argv(recipe, cfg, dynamic if role in ("model", "encoder") else DynamicPlan(),
                                      atc_paths, graph_shapes=_graph_shapes(onnx, role)))
    return OmPlan(section.stem, cfg.variant, cfg.soc_version, dict(onnx_paths), argv,
                  {str(cfg_dir / n): t for n, t in contents.items()}, tuple(dict.fromkeys(warnings)), dynamic,
                  input_shape_arg(recipe.input_shapes(), dynamic.axes),
                  precision_of(cfg.precision_mode_v2, cfg.precision_mode))


def _graph_shapes(onnx: Artifact, role: str) -> dict[str, list[int]] | None:
    """Input shapes of a graph other than the model's own inputs (a decoder step's state inputs)."""
    if role == "model":
        return None
    graph = next(g for g in onnx.card["graphs"] if g["role"] == role)
    return {i["name"]: i["shape"] for i in graph.get("inputs", [])} or None


def read_onnx_facts(path: Path) -> tuple[dict[str, list], int, frozenset[str]]:
    """Graph inputs (name -> dims, symbolic dims as strings), the ai.onnx opset and the node names."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    inputs: dict[str, list] = {}
    for value in model.graph.input:
        if value.name in inits:
            continue
        dims = value.type.tensor_type.shape.dim
        inputs[value.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in dims]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return inputs, opset, frozenset(n.name for n in model.graph.node if n.name)


class OmStage(Stage):
    name = "om"
    version = 2
    reads = ("onnx",)
    code = ("converter.stages.atc",)

    def check(self, section: OmSection, upstream: Mapping[str, Artifact]) -> None:
        check_config(section.recipe, section.cfg)

    def key_payload(self, section: OmSection, upstream: Mapping[str, Artifact]) -> Mapping[str, Any]:
        tool = require_atc()
        version = cann_version_of(tool)
        return {"atc": {"digest": file_digest(tool.path), "cann": version or "unknown"}}

    def published_name(self, role: str, stem: str) -> str | None:
        if role == "log":
            return f"{stem}.atc.log"
        if role == "sha256":
            return f"{stem}.om.sha256"
        return om_name(stem, role)

    def card_name(self, stem: str) -> str:
        return f"{stem}.om.card.json"

    def run(self, section: OmSection, upstream: Mapping[str, Artifact], scratch: Path, progress: Progress) -> StageOutput:
        onnx = upstream["onnx"]
        tool = require_atc()
        version = cann_version_of(tool)
        cfg_dir = scratch / "cfg"
        roles = [g["role"] for g in onnx.card.get("graphs", [{"role": "model"}])]
        plan = plan_atc(section, onnx, {r: onnx.path(r) for r in roles}, scratch, cfg_dir)
        for path, text in plan.files.items():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text, encoding="utf-8")
        warnings = list(plan.warnings)
        if version is None:
            warnings.append(UNKNOWN_CANN_WARNING.format(atc=tool.path))
        mismatch = cann_mismatch(section.cfg.cann_version, version)
        if mismatch:
            warnings.append(mismatch)
        files: dict[str, str] = {}
        seconds = 0.0
        section.log.unlink(missing_ok=True)
        for role, argv in plan.argv.items():
            progress(f"atc {plan.soc_version} ({role}; log: {section.log})")
            rc, text, took = run_logged([str(tool.path), *argv[1:]], section.log, atc_env(tool), progress, append=True)
            seconds += took
            _check_atc(rc, text, scratch / om_name(section.stem, role), section.log)
            os.replace(scratch / om_name(section.stem, role), scratch / f"{role}.om")
            files[role] = f"{role}.om"
        shutil.copyfile(section.log, scratch / "atc.log")
        files["log"] = "atc.log"
        sums = "".join(f"{file_digest(scratch / files[r])}  {om_name(section.stem, r)}\n" for r in plan.argv)
        (scratch / "om.sha256").write_text(sums, encoding="utf-8")
        files["sha256"] = "om.sha256"
        shutil.rmtree(cfg_dir, ignore_errors=True)
        card = {
            "stem": section.stem, "variant": section.cfg.variant, "soc_version": section.cfg.soc_version,
            "precision_mode_v2": section.cfg.precision_mode_v2, "precision_mode": section.cfg.precision_mode,
            "precision": plan.precision, "cann_version": version or "unknown",
            "atc": {"path": str(tool.path), "found_via": tool.found_via, "digest": file_digest(tool.path)},
            "onnx_sha256": {role: onnx.digests[role] for role in plan.argv},
            "onnx_key": onnx.key, "input_shape": plan.input_shape,
            "dynamic": plan.to_json()["dynamic"], "argv": {r: list(a[1:]) for r, a in plan.argv.items()},
            "atc_seconds": round(seconds, 3), "warnings": warnings, "graphs": list(plan.argv),
            "host_loop": onnx.card.get("host_loop"), "outputs": onnx.card.get("outputs"), "inputs": onnx.card.get("inputs"),
            "graph_outputs": {g["role"]: [o["name"] for o in g.get("outputs", [])] for g in onnx.card["graphs"]},
        }
        return StageOutput(files, card)


def _check_atc(rc: int, log: str, produced: Path, log_path: Path) -> None:
    """Success = exit 0, the success marker in the log, and the .om on disk."""
    if rc != 0 or opt.SUCCESS_MARKER not in log:
        diagnosis = parse_log(log)
        why = f"exit code {rc}" if rc != 0 else f"exit code 0 but no '{opt.SUCCESS_MARKER}' in its output"
        codes = ", ".join(e.code for e in diagnosis.errors)
        raise AtcFailed(f"atc failed ({why}){': ' + codes if codes else ''}",
                        hint=diagnosis.summary() or "read the atc log (npuconv explain LOG translates it)",
                        log_tail=_tail(log), log_path=str(log_path), diagnosis=diagnosis)
    if not produced.is_file():
        raise StageFailed(f"atc reported success but wrote no {produced.name}",
                          hint="check free disk space and the atc log", log_tail=_tail(log), log_path=str(log_path))


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])

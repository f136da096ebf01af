"""The `om` stage: recipe -> validated atc plan (argv + cfg files) -> OM, written atomically.

    resolve the om variant -> recipe rules -> onnx stage (gear axes kept symbolic) -> ONNX rules
    -> argv + cfg files (the plan; what --dry-run prints) -> atc -> marker + .om check -> <name>.om"""

from __future__ import annotations

import os
import shutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from converter import ascend as opt
from converter.artifacts import StageCache, content_key, copy_atomic, file_digest, write_bytes_atomic, write_json_atomic
from converter.errors import RecipeError, StageFailed
from converter.recipe.model import Recipe
from converter.recipe.om import OmConfig, select_variant
from converter.stages.atc.argv import AtcPaths, build_argv, input_shape_arg
from converter.stages.atc.errors import parse_log
from converter.stages.atc.files import AIPP, KEEP_DTYPE, MIXLIST, generated_files
from converter.stages.atc.run import AtcFailed, AtcTool, atc_env, cann_version, require_atc, run_logged
from converter.stages.atc.validate import DynamicPlan, check_against_onnx, check_config, check_variants

OM_EXAMPLE = textwrap.dedent("""\
    om:
      soc_version: Ascend310P3
      precision_mode_v2: origin""")


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


@dataclass(frozen=True)
class OmPlan:
    """Everything atc will be given, decided before it starts (what --dry-run prints)."""

    recipe_name: str
    variant: str | None
    soc_version: str
    onnx: Path
    om: Path
    log: Path
    cfg_dir: Path
    argv: tuple[str, ...]
    files: dict[str, str]
    warnings: tuple[str, ...]
    dynamic: DynamicPlan
    input_shape: str
    onnx_cached: bool = False

    def to_json(self) -> dict:
        return {
            "argv": list(self.argv), "files": dict(self.files), "warnings": list(self.warnings),
            "recipe": self.recipe_name, "variant": self.variant, "soc_version": self.soc_version,
            "onnx": str(self.onnx), "onnx_cached": self.onnx_cached, "om": str(self.om), "log": str(self.log),
            "input_shape": self.input_shape,
            "dynamic": {"option": self.dynamic.option, "value": self.dynamic.value,
                        "axes": {k: list(v) for k, v in self.dynamic.axes.items()}},
        }


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


def check_recipe(recipe: Recipe, variant: str | None = None) -> tuple[OmConfig, list[str], DynamicPlan]:
    """Resolve the variant and check every rule that needs only the recipe."""
    cfg = resolve_config(recipe, variant)
    warnings, dynamic = check_config(recipe, cfg)
    return cfg, warnings, dynamic


def plan_om(recipe: Recipe, variant: str | None = None, *, force: bool = False,
            on_step: Callable[[str], None] | None = None) -> OmPlan:
    """Validate the om section, run (or reuse) the onnx stage with the gear axes symbolic, check the ONNX
    against the rules and return the plan. Never starts atc."""
    from converter.stages.onnx_stage import build_onnx

    cfg, warnings, dynamic = check_recipe(recipe, variant)
    onnx_result = build_onnx(recipe, force=force, dynamic_axes={k: list(v) for k, v in dynamic.axes.items()},
                             on_step=on_step)
    inputs, opset, nodes = read_onnx_facts(onnx_result.onnx)
    warnings += check_against_onnx(recipe, cfg, dynamic, inputs, opset, nodes)
    out_dir = Path(recipe.output_dir)
    stem = om_stem(recipe, cfg)
    cfg_dir = out_dir / "atc" / (cfg.variant or "default")
    contents = generated_files(recipe, cfg)
    files = {str(cfg_dir / name): text for name, text in contents.items()}
    paths = AtcPaths(
        model=str(onnx_result.onnx), output=str(out_dir / stem),
        keep_dtype=str(cfg_dir / KEEP_DTYPE) if KEEP_DTYPE in contents else None,
        modify_mixlist=str(cfg_dir / MIXLIST) if MIXLIST in contents else None,
        insert_op_conf=str(cfg_dir / AIPP) if AIPP in contents else None,
    )
    return OmPlan(
        recipe_name=recipe.name, variant=cfg.variant, soc_version=cfg.soc_version, onnx=onnx_result.onnx,
        om=out_dir / f"{stem}.om", log=out_dir / (f"atc.{cfg.variant}.log" if cfg.variant else "atc.log"),
        cfg_dir=cfg_dir, argv=tuple(build_argv(recipe, cfg, dynamic, paths)), files=files,
        warnings=tuple(dict.fromkeys(warnings)), dynamic=dynamic,
        input_shape=input_shape_arg(recipe.input_shapes(), dynamic.axes), onnx_cached=onnx_result.cached,
    )


def write_cfg_files(plan: OmPlan) -> None:
    """Write the generated cfg files (atomically) where the argv points."""
    for path, text in plan.files.items():
        write_bytes_atomic(Path(path), text.encode())


@dataclass(frozen=True)
class OmResult:
    """An atc run (now, or measured earlier and reused from the cache): the OM, its size and sha256, the
    log and how long atc took."""

    om: Path
    sha256: str
    size_bytes: int
    log: Path
    seconds: float
    argv: tuple[str, ...]
    atc: str
    warnings: tuple[str, ...] = field(default_factory=tuple)
    cached: bool = False

    def to_json(self) -> dict:
        return {"passed": True, "om": str(self.om), "sha256": self.sha256, "size_bytes": self.size_bytes,
                "log": str(self.log), "atc_seconds": round(self.seconds, 3), "argv": list(self.argv),
                "atc": self.atc, "warnings": list(self.warnings), "cached": self.cached}


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def om_key(plan: OmPlan, tool: AtcTool) -> str:
    """What the OM depends on: the ONNX bytes, atc's options (paths replaced by what they point to: the
    generated cfg files' text), the atc executable and its CANN version. Not where the files live."""
    files = {Path(path).name: text for path, text in plan.files.items()}
    options = [a for a in plan.argv[1:] if not a.startswith(("--model=", "--output="))]
    options = [a.split("=", 1)[0] + "=" + Path(a.split("=", 1)[1]).name if a.split("=", 1)[1] in plan.files else a
               for a in options]
    return content_key({
        "stage": "om", "version": 1, "onnx": file_digest(plan.onnx), "options": options, "files": files,
        "atc": {"path": str(tool.path), "digest": file_digest(tool.path), "cann": cann_version(tool.home)},
    })


def build_om(plan: OmPlan, *, force: bool = False, on_step: Callable[[str], None] | None = None) -> OmResult:
    """Compile the plan with atc (or reuse the OM the same inputs produced before) and place it atomically
    at `plan.om`. atc writes into a scratch directory; success = exit 0, the success marker and the .om
    present. Anything else raises AtcFailed/StageFailed and leaves an earlier OM untouched."""
    import json

    tool = require_atc()
    write_cfg_files(plan)
    key = om_key(plan, tool)
    cache = StageCache("om")
    entry = None if force else cache.lookup(key)
    cached = entry is not None
    if entry is None:
        with cache.building(key) as scratch:
            write_json_atomic(scratch / "card.json", _run_atc(plan, tool, scratch, on_step))
        entry = cache.entry(key)
    card = json.loads((entry / "card.json").read_text())
    copy_atomic(entry / "model.om", plan.om)
    if cached:
        copy_atomic(entry / "atc.log", plan.log)  # the log of the run that produced this OM
    write_bytes_atomic(plan.om.with_name(plan.om.name + ".sha256"), f"{card['sha256']}  {plan.om.name}\n".encode())
    return OmResult(om=plan.om, sha256=card["sha256"], size_bytes=card["size_bytes"], log=plan.log,
                    seconds=card["seconds"], argv=tuple(card["argv"]), atc=str(tool.path), warnings=plan.warnings,
                    cached=cached)


def _run_atc(plan: OmPlan, tool: AtcTool, scratch: Path, on_step: Callable[[str], None] | None) -> dict:
    stem = scratch / plan.om.stem
    argv = [str(tool.path)] + [f"--output={stem}" if a.startswith("--output=") else a for a in plan.argv[1:]]
    if on_step:
        on_step(f"atc {plan.soc_version} (log: {plan.log})")
    rc, log, seconds = run_logged(argv, plan.log, atc_env(tool), on_step)
    produced = stem.with_suffix(".om")
    marker = opt.SUCCESS_MARKER in log
    if rc != 0 or not marker:
        diagnosis = parse_log(log)
        why = f"exit code {rc}" if rc != 0 else f"exit code 0 but no '{opt.SUCCESS_MARKER}' in its output"
        codes = ", ".join(e.code for e in diagnosis.errors)
        raise AtcFailed(f"atc failed ({why}){': ' + codes if codes else ''}",
                        hint=diagnosis.summary() or f"read the full log: {plan.log}",
                        log_tail=_tail(log), log_path=str(plan.log), diagnosis=diagnosis)
    if not produced.is_file():
        raise StageFailed(f"atc reported success but wrote no {produced.name}",
                          hint=f"check free disk space and the log: {plan.log}", log_tail=_tail(log),
                          log_path=str(plan.log))
    os.replace(produced, scratch / "model.om")
    shutil.copyfile(plan.log, scratch / "atc.log")
    return {"sha256": file_digest(scratch / "model.om"), "size_bytes": (scratch / "model.om").stat().st_size,
            "seconds": seconds, "argv": argv}

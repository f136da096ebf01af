"""`npuconv om`: compile the recipe's ONNX to an Ascend OM with atc, or print/emit the atc command."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from converter.commands.common import ForceOpt, JsonOpt, ModelDirOpt, OutputDirOpt, RecipeArg, SetOpt, VariantOpt, load
from converter.console import emit_json, err, out, steps, warn


def om_command(
    recipe: RecipeArg,
    variant: VariantOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and print the exact atc argv; never runs atc.")] = False,
    emit_script: Annotated[Path | None, typer.Option(
        "--emit-script", metavar="FILE", help="Write a standalone sh script that runs atc (for a build server).")] = None,
    paddlex: Annotated[bool, typer.Option(
        "--paddlex", help="Also lay out inference.om + inference.yml for PaddleX (backend: om).")] = False,
    set_: SetOpt = None,
    model_dir: ModelDirOpt = None,
    output_dir: OutputDirOpt = None,
    json_: JsonOpt = False,
    force: ForceOpt = False,
) -> None:
    """ONNX -> OM through CANN's atc. Every option is checked before atc starts; the onnx stage runs (or is
    reused) first, with the gear axes of om.dynamic kept symbolic."""
    from converter.stages.atc.paddlex import check_paddlex, layout_paddlex
    from converter.stages.atc.run import require_atc
    from converter.stages.atc.stage import build_om, check_recipe, plan_om, write_cfg_files

    r = load(recipe, set_, model_dir, output_dir)
    cfg, _, dynamic = check_recipe(r, variant)
    px_shape = check_paddlex(r, dynamic) if paddlex else None
    if not dry_run and emit_script is None:
        require_atc()
    with steps("om", quiet=False) as step:
        plan = plan_om(r, variant, force=force, on_step=step)
    warnings = list(plan.warnings)
    if dry_run or emit_script is None:  # atc runs here (or would): the recipe's CANN should be this one
        from converter.stages.atc.host import cann_mismatch, probe_atc

        mismatch = cann_mismatch(cfg.cann_version, probe_atc()["cann_version"])
        warnings += [mismatch] if mismatch else []
    for message in warnings:
        warn(message)
    payload: dict = {**plan.to_json(), "warnings": warnings}
    if dry_run or emit_script is not None:
        if dry_run:
            write_cfg_files(plan)
        if emit_script is not None:
            from converter.stages.atc.script import render_script, write_script

            text = render_script(plan, r, cfg, emit_script.name, str(recipe))
            write_script(emit_script, text)
            payload["script"] = str(emit_script)
            err.print(f"wrote {emit_script} (run it where atc is installed: sh {shlex.quote(str(emit_script))})")
        payload["dry_run"] = dry_run
        if json_:
            emit_json(payload)
        elif dry_run:
            print(shlex.join(plan.argv))
        return
    with steps(f"atc {plan.soc_version}") as step:
        result = build_om(plan, force=force, on_step=step)
    payload.update(result.to_json(), warnings=warnings)
    if px_shape is not None:
        layout = layout_paddlex(r, cfg, result.om, plan.input_shape, px_shape)
        payload["paddlex"] = layout.to_json()
    if json_:
        emit_json(payload)
    else:
        how = "reused from the cache: nothing changed since atc built it" if result.cached else "built now"
        out.print(f"[green]ok[/] {result.om} ({result.size_bytes} bytes, sha256 {result.sha256[:16]}..., "
                  f"atc {result.seconds:.1f}s, log {result.log}; {how})")
        if px_shape is not None:
            out.print(f"PaddleX model dir: {payload['paddlex']['dir']}")

"""`npuconv om`: compile the recipe's ONNX to an Ascend OM with atc, or print/emit the atc command."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from converter.commands.common import (
    ForceOpt,
    JsonOpt,
    KeepGoingOpt,
    ModelDirOpt,
    OutputDirOpt,
    RecipeArg,
    SetOpt,
    VariantOpt,
    load,
    require_stage,
)
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
    keep_going: KeepGoingOpt = False,
) -> None:
    """ONNX -> OM through CANN's atc. Every option is checked before atc starts; the onnx stage runs (or is
    reused) first, with the gear axes of om.dynamic kept symbolic in an ONNX of its own."""
    from converter.errors import CheckFailed
    from converter.pipeline.plan import execute, om_runs
    from converter.pipeline.runner import run_stage
    from converter.stages.atc.paddlex import check_paddlex, layout_paddlex
    from converter.stages.atc.run import require_atc
    from converter.stages.atc.stage import plan_atc

    r = load(recipe, set_, model_dir, output_dir)
    runs = om_runs(r, None if variant is None else variant)
    om_run = runs[-1]
    section = om_run.section
    px_shape = check_paddlex(r, section.dynamic) if paddlex else None
    if not dry_run and emit_script is None:
        require_atc()
    with steps("om") as step:
        onnx_outcome = execute(runs[:-1], force=force, keep_going=keep_going, progress=step, warn=warn)[-1]
    require_stage(onnx_outcome, "onnx", recipe, "; --keep-going compiles anyway")
    if not onnx_outcome.passed and not keep_going:
        raise CheckFailed(f"the onnx stage's parity check failed for {onnx_outcome.artifact.published.get('model')}: "
                          "atc was not run", hint="see `npuconv onnx RECIPE` for the numbers; --keep-going compiles anyway")
    onnx = onnx_outcome.artifact
    out_dir = Path(r.output_dir)
    roles = [g["role"] for g in onnx.card["graphs"]]
    if px_shape is not None and roles != ["model"]:
        from converter.stages.atc.validate import rule_error

        raise rule_error("paddlex-one-graph", f"PaddleX's OM backend runs one OM; this model is {' + '.join(roles)} "
                         "driven by npuconv's host loop", "drop --paddlex for this recipe")
    plan = plan_atc(section, onnx, {role: Path(onnx.published[role]) for role in roles}, out_dir,
                    out_dir / "atc" / (section.cfg.variant or "default"))
    warnings = list(plan.warnings)
    if dry_run:  # atc would run here: the recipe's CANN should be this machine's (the script runs elsewhere)
        from converter.stages.atc.host import cann_mismatch, probe_atc

        mismatch = cann_mismatch(section.cfg.cann_version, probe_atc()["cann_version"])
        warnings += [mismatch] if mismatch else []
    for message in warnings:
        warn(message)
    payload: dict = {"passed": True, **plan.to_json(), "warnings": warnings, "om": str(out_dir / f"{section.stem}.om"),
                     "card": str(om_run.card_path()), "log": str(section.log), "onnx_cached": onnx.cached}
    if dry_run or emit_script is not None:
        _plan_only(r, plan, section, onnx, recipe, dry_run, emit_script, px_shape, payload)
        if json_:
            emit_json(payload)
        elif dry_run:
            for role, argv in plan.argv.items():
                print(shlex.join(argv))
        return
    with steps(f"atc {plan.soc_version}") as step:
        artifact = run_stage(om_run, {"onnx": onnx}, force=force, progress=step, warn=warn)
    card = artifact.card
    payload.update({
        "om": artifact.published.get("model") or artifact.published.get(roles[0]),
        "oms": {role: artifact.published[role] for role in roles},
        "sha256": artifact.digests.get("model") or artifact.digests[roles[0]],
        "size_bytes": Path(artifact.path(roles[0])).stat().st_size,
        "atc_seconds": card["atc_seconds"], "atc": card["atc"]["path"], "cann_version": card["cann_version"],
        "cached": artifact.cached, "warnings": list(dict.fromkeys([*warnings, *card["warnings"]])),
    })
    for message in card["warnings"]:
        if message not in warnings:
            warn(message)
    if px_shape is not None:
        layout = layout_paddlex(r, section.cfg, artifact.path(roles[0]), plan.input_shape, px_shape)
        payload["paddlex"] = layout.to_json()
    if json_:
        emit_json(payload)
    else:
        how = "reused from the cache: nothing changed since atc built it" if artifact.cached else "built now"
        for role in roles:
            out.print(f"[green]ok[/] {artifact.published[role]} (sha256 {artifact.digests[role][:16]}..., "
                      f"atc {card['atc_seconds']:.1f}s, CANN {card['cann_version']}, log {section.log}; {how})")
        out.print(f"card: {payload['card']}")
        if px_shape is not None:
            out.print(f"PaddleX model dir: {payload['paddlex']['dir']}")


def _plan_only(r, plan, section, onnx, recipe: Path, dry_run: bool, emit_script: Path | None, px_shape, payload: dict):
    """--dry-run / --emit-script: write the cfg files (and, for --dry-run, the PaddleX yml) so the printed
    argv or the script runs as shown; never start atc."""
    from converter.artifacts import write_bytes_atomic
    from converter.stages.atc.paddlex import inference_yml, layout_paddlex, paddlex_dir

    for path, text in plan.files.items():
        write_bytes_atomic(Path(path), text.encode())
    if px_shape is not None and emit_script is None:
        layout = layout_paddlex(r, section.cfg, None, plan.input_shape, px_shape)
        payload["paddlex"] = {**layout.to_json(), "om_from": "atc's --output"}
    if emit_script is not None:
        from converter.stages.atc.script import render_script, write_script

        paddlex = None
        if px_shape is not None:  # the script lays it out beside the OM it builds, in its own output dir
            paddlex = (str(paddlex_dir(r, section.cfg).relative_to(Path(r.output_dir))),
                       inference_yml(r, section.cfg, plan.input_shape, px_shape))
            payload["paddlex"] = {"dir": paddlex[0], "written_by": "the script, under its OUTPUT_DIR"}
        write_script(emit_script, render_script(plan, section, onnx, emit_script.name, str(recipe), paddlex))
        payload["script"] = str(emit_script)
        err.print(f"wrote {emit_script} (run it where atc is installed: sh {shlex.quote(str(emit_script))})")
    payload["dry_run"] = dry_run

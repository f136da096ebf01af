"""`npuconv verify`: does the converted model still compute what the reference computes, and if not,
where does it go wrong? Reference: ONNX Runtime CPU on the onnx stage's ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from converter.commands.common import (ForceOpt, JsonOpt, ModelDirOpt, OutputDirOpt, RecipeArg, SetOpt, VariantOpt, default_om,
                                       load)

TargetOpt = Annotated[str, typer.Option(
    "--target", "-t",
    help="What to compare with the reference: om | paddle | onnx:<provider> | onnx-file:<path> | emulate:fp16 | emulate:mixed_float16.")]
OmOpt = Annotated[Path | None, typer.Option("--om", help="OM file for --target om (default: the om stage's <output_dir>/<name>.om).")]
SamplesOpt = Annotated[int | None, typer.Option("--samples", "-n", min=1, help="Number of samples (overrides verify.samples).")]
LayerwiseOpt = Annotated[bool, typer.Option("--layerwise", help="Name the first node whose output breaks tolerance.")]
JunitOpt = Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here (one testcase per output and sample).")]
SaveOpt = Annotated[Path | None, typer.Option("--save", help="Save inputs, reference and target outputs as .npz under DIR (replay: --set verify.data=DIR).")]


def verify_command(
    recipe: RecipeArg,
    target: TargetOpt = "om",
    om: OmOpt = None,
    variant: VariantOpt = None,
    samples: SamplesOpt = None,
    layerwise: LayerwiseOpt = False,
    junit: JunitOpt = None,
    save: SaveOpt = None,
    set_: SetOpt = None,
    model_dir: ModelDirOpt = None,
    output_dir: OutputDirOpt = None,
    force: ForceOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Compare a target (the OM, the Paddle source, another ONNX, an ONNX Runtime provider, or fp16
    emulation on the CPU) with ONNX Runtime CPU on the recipe's ONNX: per output and sample metrics
    against tolerances, optional task checks, --layerwise localisation. Exit 1 on a parity failure."""
    from converter.artifacts import write_bytes_atomic
    from converter.console import emit_json, err, out, steps
    from converter.runners.factory import check_available, parse_target
    from converter.stages.onnx_stage import build_onnx
    from converter.verify.junit import write_junit
    from converter.verify.keep_dtype import cfg_text
    from converter.verify.parity import verify

    parsed = parse_target(target)
    r = load(recipe, set_, model_dir, output_dir)
    om_path = om or (default_om(r, variant) if parsed.kind == "om" else None)
    check_available(parsed, r, om_path)
    with steps(f"verify {r.name} against {parsed}") as step:
        onnx = build_onnx(r, force=force, on_step=step)
        report = verify(r, parsed, onnx.onnx, card=onnx.card, om_path=om_path, variant=variant, samples=samples,
                        layerwise=layerwise, save_dir=save, on_step=step)
    data = report.to_json()
    suggestion = data.get("keep_dtype_suggestion")
    if suggestion:
        cfg_file = Path(r.output_dir) / f"{r.name}.keep_dtype.suggested.cfg"
        write_bytes_atomic(cfg_file, cfg_text(suggestion["entries"]).encode())
        suggestion["cfg_file"] = str(cfg_file)
    if junit is not None:
        write_junit(report, junit)
        data["junit"] = str(junit)
    if json_:
        emit_json(data)
    _render(data, err if json_ else out)
    if not report:
        raise typer.Exit(1)


def _fmt(value: float) -> str:
    return f"{value:.3g}" if value == value and abs(value) != float("inf") else str(value)


def _render(data: dict, console) -> None:
    """Tables for people: per output verdicts, then task, layerwise and emulation findings."""
    from rich.markup import escape
    from rich.table import Table

    verdict = "[bold green]PASS[/]" if data["passed"] else "[bold red]FAIL[/]"
    console.print(f"verify {data['recipe']}: {escape(data['target'])} vs {escape(data['reference'])} "
                  f"({len(data['samples'])} sample(s), {data['precision']} tolerances): {verdict}", soft_wrap=True)
    table = Table(caption="tolerance: max abs / min cosine and where it came from", caption_justify="left")
    for col in ("output", "max abs", "max rel", "rmse", "cosine", "nan/inf", "tolerance", "verdict"):
        table.add_column(col, justify="right" if col in ("max abs", "max rel", "rmse", "cosine") else "left")
    for o in data["outputs"]:
        tol = o["tolerance"]
        table.add_row(escape(o["name"]), _fmt(o["max_abs"]), _fmt(o["max_rel"]), _fmt(o["rmse"]), f"{o['cosine']:.7f}",
                      f"{o['nan']}/{o['inf']}", f"{tol['max_abs']:g} / {tol['cosine']:g} {tol['source']}",
                      "[green]pass[/]" if o["passed"] else f"[bold red]FAIL[/] {o['failed_samples']}")
    console.print(table)
    for check in data["checks"]:
        if check["failures"] or check.get("compared"):
            extra = "; ".join(check["failures"]) or check["compared"]
            console.print(f"  {escape(check['output'])} sample {check['sample']}: {escape(extra)}", soft_wrap=True)
    task = data.get("task")
    if task:
        for t in task["results"]:
            mark = "[green]pass[/]" if t["passed"] else "[bold red]FAIL[/]"
            text = f" ref={t['reference_text']!r} target={t['target_text']!r}" if t["kind"] == "ctc" else ""
            console.print(f"task {t['kind']} sample {t['sample']}: agreement {t['agreement']:.3f} "
                          f"(>= {t['min_agreement']:g}) {mark}{escape(text)}", soft_wrap=True)
    lw = data.get("layerwise")
    if lw:
        first = lw["first_divergent_node"]
        if not lw["available"]:
            console.print(f"layerwise: not available: {escape(lw['reason'])}", soft_wrap=True)
        elif first:
            console.print(f"layerwise ({escape(lw['via'])}): first divergent node [bold]{escape(first['node'])}[/] "
                          f"({first['op_type']}, output {escape(first['output'])}, #{first['index']}): max abs "
                          f"{_fmt(first['max_abs'])} (reference max {_fmt(first['reference_max_abs'])}), cosine "
                          f"{first['cosine']:.6f}; {lw['compared']} tensors compared", soft_wrap=True)
        else:
            console.print(f"layerwise ({escape(lw['via'])}): all {lw['compared']} shared tensors within tolerance", soft_wrap=True)
        if lw["skipped"]:
            console.print(f"layerwise: skipped {len(lw['skipped'])} tensor(s) over verify.layer_max_tensor_mb")
    emu = data.get("emulation")
    if emu:
        for o in emu["overflow_nodes"]:
            console.print(f"fp16 overflow starts at [bold]{escape(o['node'])}[/] ({o['op_type']}, {o['kind']} "
                          f"{escape(o['tensor'])}: max |x| {_fmt(o['max_abs'])}, fp32 reference {_fmt(o['reference_max_abs'])})",
                          soft_wrap=True)
        suggestion = emu["keep_dtype_suggestion"]
        if suggestion:
            state = "passes" if suggestion["passes_with_suggestion"] else "still fails"
            console.print(f"keep_dtype suggestion ({state} with it; {escape(emu['stopped'])}): add to the recipe\n"
                          f"  om:\n    keep_dtype: {escape(str(suggestion['entries']))}\n"
                          f"  atc cfg written to {escape(suggestion.get('cfg_file', ''))}", soft_wrap=True)
    for note in data.get("notes", []):
        console.print(f"note: {escape(note)}", soft_wrap=True)

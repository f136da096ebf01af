"""`npuconv verify`: does the converted model still compute what the reference computes, and if not,
where does it go wrong? Reference: ONNX Runtime CPU on the onnx stage's ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from converter.commands.common import (
    ForceOpt,
    JsonOpt,
    ModelDirOpt,
    OutputDirOpt,
    SetOpt,
    VariantOpt,
    finish,
    load,
)

TargetOpt = Annotated[str, typer.Option(
    "--target", "-t",
    help="What to compare with the reference: om | paddle | onnx:<provider> | onnx-file:<path> | emulate:fp16 | emulate:mixed_float16.")]
OmOpt = Annotated[Path | None, typer.Option("--om", help="OM file for --target om (default: the om stage's <output_dir>/<name>[_<variant>].om); its card must sit beside it.")]
SamplesOpt = Annotated[int | None, typer.Option("--samples", "-n", min=1, help="Number of samples (overrides verify.samples).")]
LayerwiseOpt = Annotated[bool, typer.Option("--layerwise", help="Name the first node whose output breaks tolerance.")]
JunitOpt = Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here (one testcase per output and sample).")]
SaveOpt = Annotated[Path | None, typer.Option("--save", metavar="DIR", help="Save the reference (inputs, outputs, tolerances) and the target's outputs under DIR; replay: npuconv verify DIR --target T.")]
ReferenceOpt = Annotated[Path | None, typer.Option("--reference", metavar="DIR", help="Compare with a saved reference (from --save or a bundle) instead of computing one.")]


def verify_command(
    recipe: Annotated[Path, typer.Argument(
        help="Recipe YAML; or a bundle (.tar.gz) or saved reference (DIR) to replay.", show_default=False)],
    target: TargetOpt = "om",
    om: OmOpt = None,
    variant: VariantOpt = None,
    samples: SamplesOpt = None,
    layerwise: LayerwiseOpt = False,
    junit: JunitOpt = None,
    save: SaveOpt = None,
    reference: ReferenceOpt = None,
    set_: SetOpt = None,
    model_dir: ModelDirOpt = None,
    output_dir: OutputDirOpt = None,
    force: ForceOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Compare a target (the OM, the Paddle source, another ONNX, an ONNX Runtime provider, or fp16
    emulation on the CPU) with the reference (ONNX Runtime CPU on the recipe's ONNX, or a saved reference):
    per output and sample metrics against tolerances, optional task checks, --layerwise localisation.
    Exit 1 on a parity failure."""
    from converter.artifacts import write_bytes_atomic
    from converter.console import steps
    from converter.pipeline.bundle import is_bundle
    from converter.runners.factory import parse_target
    from converter.verify.junit import write_junit
    from converter.verify.keep_dtype import cfg_text

    parsed = parse_target(target)
    replay = is_bundle(recipe) or recipe.is_dir()
    if replay and (set_ or model_dir or output_dir or variant or reference or samples):
        from converter.errors import InputError

        raise InputError("--set, --model-dir, -o, --variant, --reference and --samples apply to a recipe; a bundle or "
                         "saved reference replays what was saved", hint="drop those options")
    with steps(f"verify {recipe.name} against {parsed}") as step:
        if replay:
            report, out_dir = _replay(recipe, parsed, om, layerwise, save, step), None
        else:
            report, out_dir = _from_recipe(recipe, parsed, om, variant, samples, layerwise, save, reference, set_, model_dir,
                                  output_dir, force, step)
    data = report.to_json()
    suggestion = data.get("keep_dtype_suggestion")
    if suggestion and out_dir is not None:
        cfg_file = out_dir / f"{report.recipe}.keep_dtype.suggested.cfg"
        write_bytes_atomic(cfg_file, cfg_text(suggestion["entries"]).encode())
        suggestion["cfg_file"] = str(cfg_file)
    if junit is not None:
        write_junit(report, junit)
        data["junit"] = str(junit)
    finish(data, bool(report), lambda console: _render(data, console), json_)


def _from_recipe(recipe_path: Path, target, om_path, variant, samples, layerwise, save, reference, set_, model_dir,
                 output_dir, force, step):
    """Plan the reference on this machine (export? -> onnx -> reference), or read a saved one (--reference
    DIR); returns (report, output_dir)."""
    from converter.console import warn
    from converter.pipeline.plan import execute, om_runs, reference_runs
    from converter.recipe.om import select_variant
    from converter.stages.verify_stage import verify_artifacts

    r = load(recipe_path, set_, model_dir, output_dir)
    rebuild = f"rebuild it: npuconv om {recipe_path}" + (f" --variant {variant}" if variant else "")
    if target.kind == "om" and om_path is None:
        om_path = Path(r.output_dir) / f"{om_runs(r, variant)[-1].stem}.om"
    if reference is not None:
        return _replay(reference, target, om_path, layerwise, save, step, rebuild), Path(r.output_dir)
    outcomes = execute(reference_runs(r, variant, for_om=target.kind == "om", samples=samples), force=force,
                       keep_going=True, progress=step, warn=warn)
    export = next((o.artifact for o in outcomes if o.run.stage.name == "export"), None)
    report = verify_artifacts(r, target, outcomes[-2].artifact, outcomes[-1].artifact, export=export, om_path=om_path,
                              om_cfg=select_variant(r.om, variant), rebuild_hint=rebuild, layerwise=layerwise,
                              save=save, step=step)
    return report, Path(r.output_dir)


def _replay(source: Path, target, om_path, layerwise, save, step,
            rebuild: str = "rebuild the OM from this bundle's ONNX (atc/build_om.sh)"):
    """A bundle (unpacked into a temporary directory, removed afterwards) or a saved reference: the saved
    reference against the target; nothing is converted."""
    from converter.pipeline.bundle import Bundle, is_bundle, open_bundle
    from converter.runners.factory import TargetContext
    from converter.runners.om_card import saved_reference_om
    from converter.verify.parity import VerifyRun, target_precision, verify
    from converter.verify.reference import load_saved

    graphs: dict = {}
    if not isinstance(source, Bundle) and is_bundle(source):
        import shutil
        import tempfile

        step(f"unpacking {source.name}")
        workdir = Path(tempfile.mkdtemp(prefix="npuconv-bundle-"))
        try:
            return _replay(open_bundle(source, workdir), target, om_path, layerwise, save, step, rebuild)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    if isinstance(source, Bundle):  # unpacked above
        bundle = source
        saved, verify_config = load_saved(bundle.reference)
        graphs = bundle.onnx_graphs()
        om_path = om_path or bundle.om()
        where = "the bundle"
    else:
        saved, verify_config = load_saved(source)
        where = str(source)
    om_card = None
    if target.kind == "om":
        om_path, om_card = saved_reference_om(om_path, where, saved.facts["onnx_sha256"], rebuild)
    ctx = TargetContext(graphs, saved.facts.get("host_loop"), None, om_path, om_card)
    run = VerifyRun(saved.facts.get("recipe", Path(where).name), saved, verify_config)
    return verify(run, target, ctx, target_precision(target, om_card), layerwise=layerwise, save_dir=save, on_step=step)


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

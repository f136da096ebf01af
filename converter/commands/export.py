"""`npuconv export`: dygraph code + .pdparams -> a static Paddle inference model, checked against the
dygraph model."""

from __future__ import annotations

from pathlib import Path

import typer

from converter.commands.common import ForceOpt, JsonOpt, OutputDirOpt, RecipeArg, SetOpt, load


def export_command(
    recipe: RecipeArg,
    set_: SetOpt = None,
    output_dir: OutputDirOpt = None,
    force: ForceOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Build the recipe's `export:` model (builder + weights), save it with paddle.jit.to_static +
    paddle.jit.save into <output_dir>/<name>_static/, and check the saved model against the dygraph one
    on the recipe's inputs. Exit 1 when that check fails."""
    from converter.console import emit_json, steps, warn
    from converter.pipeline.runner import run_stage
    from converter.pipeline.stage import StageRun
    from converter.stages.export import ExportStage, publish_paths, section_for

    r = load(recipe, set_, output_dir=output_dir)
    stage = ExportStage()
    section = section_for(r)
    files, card_path = publish_paths(r)
    run = StageRun("export", stage, section, publish=files, card_path=card_path)
    with steps(f"export {r.name}") as step:
        artifact = run_stage(run, {}, force=force, progress=step, warn=warn)
    passed = stage.verdict(artifact, section)
    if json_:
        emit_json(_to_json(artifact, passed))
    else:
        _render(r.name, artifact, passed)
    if not passed:
        raise typer.Exit(1)


def _to_json(artifact, passed: bool) -> dict:
    card = artifact.card
    published = artifact.published
    return {
        "passed": passed, "cached": artifact.cached, "key": artifact.key,
        "model_dir": str(Path(published["model"]).parent),
        "model": published["model"], "params": published["params"], "card": published.get("card"),
        "builder": card["builder"], "input_spec": card["input_spec"], "outputs": card["outputs"],
        "paddle": card["paddle"], "parity": card["parity"], "seconds": card.get("seconds"),
    }


def _render(name: str, artifact, passed: bool) -> None:
    from rich.table import Table

    from converter.console import out

    card = artifact.card
    summary = Table(title=f"export: {name}", show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("model", artifact.published["model"])
    summary.add_row("params", artifact.published["params"])
    summary.add_row("cached", "yes (nothing changed)" if artifact.cached else "no (built now)")
    summary.add_row("builder", card["builder"] + (f" {card['kwargs']}" if card["kwargs"] else ""))
    summary.add_row("weights", f"{card['weights']['file']} ({card['weights']['tensors']} tensors)")
    summary.add_row("input spec", ", ".join(f"{s['name']} {s['shape']} {s['dtype']}" for s in card["input_spec"]))
    summary.add_row("outputs", ", ".join(f"{o['name']} {o['shape']} {o['dtype']}" for o in card["outputs"]))
    summary.add_row("paddle", card["paddle"])
    summary.add_row("time", f"{card.get('seconds', 0):.2f} s" + (" (when built)" if artifact.cached else ""))
    out.print(summary)
    parity = card["parity"]
    tol = parity["tolerance"]
    shapes = ", ".join(f"{k} {v}" for k, v in parity["inputs"].items())
    table = Table(title="saved model (Paddle Inference) vs dygraph", title_justify="left", caption_justify="left",
                  caption=f"inputs {shapes}, seed {parity['seed']}; pass: max abs <= {tol['max_abs']:g} "
                          f"and cosine >= {tol['cosine']}")
    for col in ("output", "shape", "max abs", "cosine", "verdict"):
        table.add_column(col, justify="right" if col in ("max abs", "cosine") else "left")
    for out_name, o in parity["outputs"].items():
        verdict = "[green]pass[/]" if o["passed"] else "[bold red]FAIL[/]"
        table.add_row(out_name, str(o["shape"]), f"{o['max_abs']:.3g}", f"{o['cosine']:.9f}", verdict)
    out.print(table)
    if parity["outputs_dygraph"] != parity["outputs_saved"]:
        out.print(f"[bold red]FAIL[/]: the dygraph model returns {parity['outputs_dygraph']} tensors, "
                  f"the saved model {parity['outputs_saved']}")
    if not passed:
        out.print("[bold red]the saved model does not compute what the dygraph model computes[/]")

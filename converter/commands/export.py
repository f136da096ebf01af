"""`npuconv export`: dygraph code + .pdparams -> a static Paddle inference model, checked against the
dygraph model."""

from __future__ import annotations

import dataclasses

from converter.commands.common import (
    ForceOpt,
    JsonOpt,
    OutputDirOpt,
    RecipeArg,
    SetOpt,
    finish,
    load,
)


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
    from converter.console import steps, warn
    from converter.pipeline.plan import execute, export_runs
    from converter.stages.export import ExportSection, export_verdict

    r = load(recipe, set_, output_dir=output_dir)
    ExportSection.from_recipe(r)  # a `source:` recipe is refused with its own message
    runs = [run if run.judge is not None else dataclasses.replace(run, judge=export_verdict) for run in export_runs(r)]
    with steps(f"export {r.name}") as step:
        outcome = execute(runs, force=force, progress=step, warn=warn)[-1]
    data = export_json(outcome)
    finish(data, data["passed"], lambda console: _render(r.name, data, console), json_)


def export_json(outcome) -> dict:
    """The export stage's result as the command prints it (`--json`)."""
    artifact = outcome.artifact
    card = artifact.card
    published = artifact.published
    return {
        "passed": outcome.passed, "cached": artifact.cached, "key": artifact.key,
        "model": published.get("model"), "params": published.get("params"), "card": published.get("card"),
        "builder": card["builder"], "kwargs": card["kwargs"], "weights": card["weights"],
        "input_spec": card["input_spec"], "outputs": card["outputs"], "paddle": card["paddle"],
        "parity": outcome.report.to_json() if outcome.report is not None else None, "seconds": card.get("seconds"),
    }


def _render(name: str, data: dict, out) -> None:
    from rich.markup import escape
    from rich.table import Table

    from converter.commands.render import comparison_table

    summary = Table(title=f"export: {name}", show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column()
    rows = [
        ("model", data["model"]), ("params", data["params"]),
        ("cached", "yes (nothing changed)" if data["cached"] else "no (built now)"),
        ("builder", data["builder"] + (f" {data['kwargs']}" if data["kwargs"] else "")),
        ("weights", f"{data['weights']['file']} ({data['weights']['tensors']} tensors)"),
        ("input spec", ", ".join(f"{s['name']} {s['shape']} {s['dtype']}" for s in data["input_spec"])),
        ("outputs", ", ".join(f"{o['name']} {o['shape']} {o['dtype']}" for o in data["outputs"])),
        ("paddle", data["paddle"]),
        ("time", f"{data['seconds'] or 0:.2f} s" + (" (when built)" if data["cached"] else "")),
    ]
    for key, value in rows:
        summary.add_row(key, escape(str(value)))
    out.print(summary)
    check = data["parity"]
    if check is None:
        return
    shapes = ", ".join(f"{k} {v}" for k, v in check["inputs"].items())
    table = comparison_table(check["outputs"], f"saved model (Paddle Inference) vs dygraph, seed {check['seed']}")
    table.caption, table.caption_justify = f"on {shapes}", "left"
    out.print(table)
    if check["outputs_dygraph"] != check["outputs_saved"]:
        out.print(f"[bold red]FAIL[/]: the dygraph model returns {check['outputs_dygraph']} tensors, "
                  f"the saved model {check['outputs_saved']}")
    if not check["passed"]:
        out.print("[bold red]the saved model does not compute what the dygraph model computes[/]")

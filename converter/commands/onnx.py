"""`npuconv onnx`: Paddle (or any ONNX) to a static, simplified ONNX checked against the source."""

from __future__ import annotations

import typer

from converter.commands.common import ForceOpt, JsonOpt, ModelDirOpt, OutputDirOpt, RecipeArg, SetOpt, load


def onnx_command(
    recipe: RecipeArg,
    set_: SetOpt = None,
    model_dir: ModelDirOpt = None,
    output_dir: OutputDirOpt = None,
    force: ForceOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Export the recipe's model to a fully static, simplified ONNX ready for atc, and check that it still
    computes what the source model computes. Exit 1 when that parity check fails."""
    from converter.console import emit_json, steps
    from converter.stages.onnx_stage import build_onnx

    r = load(recipe, set_, model_dir, output_dir)
    with steps(f"onnx {r.name}") as step:
        result = build_onnx(r, force=force, on_step=step)
    if json_:
        emit_json(result.to_json())
    else:
        _render(result)
    if not result:
        raise typer.Exit(1)


def _render(result) -> None:
    from rich.table import Table

    from converter.console import out

    card = result.card
    summary = Table(title=f"onnx: {card['name']}", show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("onnx", str(result.onnx))
    summary.add_row("cached", "yes (nothing changed)" if result.cached else "no (built now)")
    requested = card["opset_requested"]
    written = card["opset_written"]
    raised = f" (requested {requested}; paddle2onnx raised it)" if requested and requested != written else ""
    summary.add_row("opset", f"{written}{raised}")
    for kind in ("inputs", "outputs"):
        summary.add_row(kind, ", ".join(f"{t['name']} {t['shape']} {t['dtype']}" for t in card[kind]))
    summary.add_row("nodes", f"{card['nodes_before']} -> {card['nodes_after']}")
    summary.add_row("dynamic dims", ", ".join(card["dynamic_dims"]) or "none")
    summary.add_row("time", f"{card['timings_s']['total']:.2f} s" + (" (when built)" if result.cached else ""))
    out.print(summary)
    parity = card.get("parity")
    if not parity:
        out.print("parity: not checked (onnx.parity is false)")
        return
    tol = parity["tolerance"]
    table = Table(title=f"parity vs {parity['reference']}, seed {parity['seed']}", title_justify="left",
                  caption=f"pass: max abs <= {tol['max_abs']:g} and cosine >= {tol['cosine']}", caption_justify="left")
    for col in ("output", "shape", "max abs", "cosine", "verdict"):
        table.add_column(col, justify="right" if col in ("max abs", "cosine") else "left")
    for name, o in parity["outputs"].items():
        verdict = "[green]pass[/]" if o["passed"] else "[bold red]FAIL[/]"
        table.add_row(name, str(o["shape"]), f"{o['max_abs']:.3g}", f"{o['cosine']:.9f}", verdict)
    out.print(table)

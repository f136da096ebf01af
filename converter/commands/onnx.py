"""`npuconv onnx`: Paddle (or any ONNX) to static, simplified ONNX graph(s) checked against the source."""

from __future__ import annotations

from converter.commands.common import (
    ForceOpt,
    JsonOpt,
    ModelDirOpt,
    OutputDirOpt,
    RecipeArg,
    SetOpt,
    finish,
    load,
    require_stage,
)


def onnx_command(
    recipe: RecipeArg,
    set_: SetOpt = None,
    model_dir: ModelDirOpt = None,
    output_dir: OutputDirOpt = None,
    force: ForceOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Export the recipe's model to fully static ONNX ready for atc (rewriting what an NPU cannot run), and
    check that it still computes what the source model computes. Exit 1 when that parity check fails."""
    from converter.console import steps, warn
    from converter.pipeline.plan import execute, onnx_runs

    r = load(recipe, set_, model_dir, output_dir)
    with steps(f"onnx {r.name}") as step:
        outcome = execute(onnx_runs(r), force=force, progress=step, warn=warn)[-1]
    require_stage(outcome, "onnx", recipe)
    data = onnx_json(outcome)
    finish(data, data["passed"], lambda console: _render(data, console), json_)


def onnx_json(outcome) -> dict:
    """The onnx stage's result as the command prints it (`--json`)."""
    artifact = outcome.artifact
    card = artifact.card
    published = artifact.published
    graphs = [{"role": g["role"], "path": published.get(g["role"], str(artifact.path(g["role"]))), "nodes": g["nodes"],
               "static": g["static"]} for g in card["graphs"]]
    parity = outcome.report.to_json() if outcome.report is not None else None
    return {
        "passed": outcome.passed, "onnx": published.get("model"), "card": published.get("card"),
        "cached": artifact.cached, "opset": card["opset"], "opset_written": card["opset_written"],
        "opset_requested": card["opset_requested"], "inputs": card["inputs"], "outputs": card["outputs"],
        "graphs": graphs, "passes": [{"name": p["name"], "changed": p["changed"], "notes": p["notes"]} for p in card["passes"]],
        "dynamic_dims": card["dynamic_dims"], "dynamic_ops_left": card["dynamic_ops_left"], "parity": parity,
        "nodes": {"before": card["nodes_before"], "after": card["nodes_after"]}, "timings_s": card["timings_s"],
        "raw_onnx": str(artifact.path("raw")),
    }


def _render(data: dict, out) -> None:
    from rich.markup import escape
    from rich.table import Table

    summary = Table(title="onnx", show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column()
    for g in data["graphs"]:
        summary.add_row("onnx" if g["role"] == "model" else f"onnx ({g['role']})", escape(g["path"]))
    summary.add_row("cached", "yes (nothing changed)" if data["cached"] else "no (built now)")
    requested, written, final = data["opset_requested"], data["opset_written"], data["opset"]
    raised = f" (requested {requested}; paddle2onnx raised it)" if requested and requested != written else ""
    lowered = f", lowered to {final}" if final != written else ""
    summary.add_row("opset", f"{written}{raised}{lowered}")
    for kind in ("inputs", "outputs"):
        summary.add_row(kind, ", ".join(f"{t['name']} {t['shape']} {t['dtype']}" for t in data[kind]))
    summary.add_row("nodes", f"{data['nodes']['before']} -> {data['nodes']['after']}")
    changed = [p for p in data["passes"] if p["changed"] or p["notes"]]
    summary.add_row("passes", ", ".join(_pass_summary(p) for p in changed) or "nothing changed")
    summary.add_row("dynamic dims", ", ".join(data["dynamic_dims"]) or "none")
    summary.add_row("dynamic ops left", ", ".join(data["dynamic_ops_left"]) or "none")
    summary.add_row("time", f"{data['timings_s']['total']:.2f} s" + (" (when built)" if data["cached"] else ""))
    out.print(summary)
    parity = data["parity"]
    if parity is None or parity["outputs"] is None:
        out.print("parity: not checked (onnx.parity is false and no pass changed the graph)")
        return
    from converter.commands.render import comparison_table

    out.print(comparison_table(parity["outputs"], title=f"parity vs {parity['reference']}, seed {parity['seed']}"))
    culprit = parity.get("culprit")
    if culprit:
        out.print(f"[bold red]culprit:[/] {escape(culprit['step'])}: {escape(culprit['reason'])}", soft_wrap=True)


def _pass_summary(record: dict) -> str:
    """`simplify -790 nodes`; the op-by-op delta and the notes are in --json and the card."""
    delta = sum(record["changed"].values())
    notes = f", {len(record['notes'])} note(s)" if record["notes"] else ""
    return f"{record['name']} {delta:+d} nodes{notes}" if delta else f"{record['name']}{notes}"

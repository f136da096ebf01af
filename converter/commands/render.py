"""Rich tables shared by the commands (results for people; `--json` carries the same data)."""

from __future__ import annotations


def fmt(value: float) -> str:
    """A metric for a table: 3 significant digits, NaN/inf spelled out."""
    return f"{value:.3g}" if value == value and abs(value) != float("inf") else str(value)


def comparison_table(outputs: dict, title: str):
    """One row per output of a judged comparison (check JSON by output name)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left",
                  caption="an element passes when |a-b| <= max_abs + rtol*|b|; cosine is judged unless both sides are ~0",
                  caption_justify="left")
    for col in ("output", "shape", "max abs", "cosine", "limits (max_abs / rtol / cosine)", "verdict"):
        table.add_column(col, justify="right" if col in ("max abs", "cosine") else "left")
    for name, o in outputs.items():
        tol = o["tolerance"]
        cosine = f"{o['cosine']:.9f}" + ("" if o.get("cosine_judged", True) else " (not judged)")
        verdict = "[green]pass[/]" if o["passed"] else "[bold red]FAIL[/] " + escape("; ".join(o["failures"]))
        table.add_row(escape(name), str(o.get("shape", o.get("target_shape"))), fmt(o["max_abs"]), cosine,
                      f"{tol['max_abs']:g} / {tol['rtol']:g} / {tol['cosine']:g} ({escape(tol['source'])})", verdict)
    return table

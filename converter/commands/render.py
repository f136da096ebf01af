"""Rich tables shared by the commands (results for people; `--json` carries the same data)."""

from __future__ import annotations


def fmt(value: float) -> str:
    """A metric for a table: 3 significant digits, NaN/inf spelled out."""
    return f"{value:.3g}" if value == value and abs(value) != float("inf") else str(value)


def comparison_table(outputs: dict, title: str):
    """One row per output of a judged comparison."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for col in ("output", "shape", "max abs", "cosine", "verdict"):
        table.add_column(col, justify="right" if col in ("max abs", "cosine") else "left")
    for name, o in outputs.items():
        verdict = "[green]pass[/]" if o.get("passed", True) else "[bold red]FAIL[/]"
        table.add_row(escape(name), str(o.get("shape")), fmt(o["max_abs"]), f"{o['cosine']:.9f}", verdict)
    return table

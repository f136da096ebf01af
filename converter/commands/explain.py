"""`npuconv explain`: what went wrong in an atc run, from its log or a failed build script's output."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from converter.commands.common import JsonOpt, finish

_NOT_ATC = ("pass the atc log: `npuconv om` and the emitted build script write it to "
            "<output_dir>/<name>[_<variant>].atc.log, or the captured output of `sh build_om.sh`")


def explain_command(
    log: Annotated[Path, typer.Argument(help="An atc log, or the captured output of a build script from "
                                             "--emit-script; - reads stdin.", show_default=False)],
    json_: JsonOpt = False,
) -> None:
    """Translate an atc log: error codes with their meaning and fix, unsupported ops with node names and
    types, refused option values with what is allowed (for --soc_version the closest known chips), and what
    to change in the recipe. Exit 0 when atc succeeded, 1 when the log shows a failure, 2 when the file
    cannot be read or shows no atc run."""
    from converter.errors import InputError
    from converter.stages.atc.explain import explain

    text = _read(log)
    result = explain(text)
    if result is None:
        raise InputError(f"{_name(log)} shows no atc run (no 'ATC run success', no 'ATC run failed', no error code)",
                         hint=_NOT_ATC)
    finish({"log": _name(log), **result.to_json()}, bool(result), lambda console: _render(result, _name(log), console),
           json_)


def _name(log: Path) -> str:
    return "<stdin>" if str(log) == "-" else str(log)


def _read(log: Path) -> str:
    """The log's text (undecodable bytes replaced); an InputError for a missing, unreadable or binary file."""
    from converter.errors import InputError

    try:
        data = sys.stdin.buffer.read() if str(log) == "-" else log.read_bytes()
    except FileNotFoundError:
        raise InputError(f"no such file: {log}", hint=_NOT_ATC) from None
    except OSError as exc:
        raise InputError(f"cannot read {log}: {exc.strerror or exc}", hint=_NOT_ATC) from None
    if b"\x00" in data[:1 << 16]:
        raise InputError(f"{_name(log)} is not a text log (it contains NUL bytes)", hint=_NOT_ATC)
    return data.decode("utf-8", errors="replace")


def _render(result, name: str, console) -> None:
    """The explanation for people: verdict, codes, ops, refused values, problems, recipe changes."""
    from rich.markup import escape
    from rich.table import Table

    soc = f", {result.soc_version}" if result.soc_version else ""
    if result:
        console.print(f"[bold green]atc succeeded[/] ({escape(name)}{escape(soc)}): nothing to explain")
        return
    console.print(f"[bold red]atc failed[/] ({escape(name)}{escape(soc)})", soft_wrap=True)
    if result.diagnosis.errors:
        table = Table(title="error codes", title_justify="left")
        for column in ("code", "atc says", "meaning", "fix"):
            table.add_column(column, overflow="fold")
        for e in result.diagnosis.errors:
            table.add_row(f"[bold]{e.code}[/]", escape(e.message), escape(e.meaning), escape(e.fix))
        console.print(table)
    ops = result.diagnosis.unsupported_ops
    if ops:
        table = Table(title="unsupported ops", title_justify="left")
        for column in ("node", "type", "as atc names it", "kernel / reason"):
            table.add_column(column, overflow="fold")
        for o in ops:
            detail = " / ".join(x for x in (o.get("kernel"), o.get("reason")) if x)
            table.add_row(escape(o["name"] or "-"), f"[bold]{escape(o['type'])}[/]", escape(o["raw_type"]),
                          escape(detail))
        console.print(table)
    for o in result.options:
        value = f" {o['value']!r}" if o["value"] else ""
        line = f"--{o['option']}{value} refused ({o['code']})"
        if o["closest"]:
            line += f"; closest known chips: {', '.join(o['closest'])}"
        elif o["closest"] is not None and o["option"] == "soc_version":
            line += "; no known chip is close: use `Ascend` + the Name `npu-smi info` prints"
        if o["allowed"]:
            line += f"; allowed: {', '.join(o['allowed'])}"
        console.print(escape(line), soft_wrap=True)
    for p in result.problems:
        console.print(f"[bold]{p['kind']}:[/] {escape(p['message'])}\n  fix: {escape(p['fix'])}", soft_wrap=True)
    if result.changes:
        console.print("[bold]change in the recipe:[/]")
        for c in result.changes:
            console.print(f"  [bold]{escape(c.key)}[/]: {escape(c.advice)} [dim]({', '.join(c.because)})[/]",
                          soft_wrap=True)

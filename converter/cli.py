"""The `npuconv` command line. Commands live in converter/commands/ and import heavy backends inside
their bodies, so `npuconv --help` never imports paddle, onnx or onnxruntime."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from converter import __version__, console
from converter.commands import bench, doctor, lint, om, onnx, schema, verify
from converter.console import emit_json, err
from converter.errors import NpuconvError

app = typer.Typer(
    name="npuconv",
    help="PaddlePaddle models to Ascend NPU OM files: one YAML recipe per model, one command per stage.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        print(f"npuconv {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Stages: onnx -> om -> verify -> bench. Each takes a recipe (recipes/*.yaml)."""


app.command("schema")(schema.schema_command)
app.command("onnx")(onnx.onnx_command)
app.command("om")(om.om_command)
app.command("lint")(lint.lint_command)
app.command("verify")(verify.verify_command)
app.command("doctor")(doctor.doctor_command)
app.command("bench")(bench.bench_command)


def main() -> None:
    """Console entry point: expected errors become `error:`/`hint:` lines (or one JSON object with
    --json) and exit code 2 (1 for failed checks); anything else is a bug and keeps its traceback."""
    want_json = "--json" in sys.argv[1:]
    if want_json:
        console.reserve_stdout_for_json()
    try:
        app()
    except NpuconvError as exc:
        if want_json:
            emit_json({"passed": False, "error": exc.to_json()})
        err.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
        if exc.hint:
            err.print(f"[bold]hint:[/] {escape(exc.hint)}", soft_wrap=True)
        log_tail = getattr(exc, "log_tail", "")
        if log_tail and not want_json:
            err.print(log_tail, markup=False, soft_wrap=True, style="dim")
        sys.exit(exc.exit_code)
    except SystemExit as exc:
        # Usage errors are printed by the parser; --json still promises one object on stdout.
        if want_json and exc.code not in (0, None) and not console.json_emitted():
            emit_json({"passed": False, "error": {"type": "UsageError", "message": "invalid command line", "hint": "see --help"}})
        raise

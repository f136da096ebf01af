"""The `npuconv` command line. Commands live in converter/commands/ and import heavy backends inside
their bodies, so `npuconv --help` never imports paddle, onnx or onnxruntime."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable

import typer
from rich.markup import escape

from converter import __version__, console, process
from converter.commands import bench, build, doctor, explain, export, lint, om, onnx, schema, verify
from converter.console import emit_json, err
from converter.errors import Interrupted, NpuconvError, path_error
from converter.versions import convert_tool_missing

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
app.command("export")(export.export_command)
app.command("onnx")(onnx.onnx_command)
app.command("om")(om.om_command)
app.command("lint")(lint.lint_command)
app.command("verify")(verify.verify_command)
app.command("doctor")(doctor.doctor_command)
app.command("explain")(explain.explain_command)
app.command("bench")(bench.bench_command)
app.command("build")(build.build_command)


def entry() -> None:
    """The `npuconv` executable: `main`, then out without tearing the interpreter down. Every file is
    complete and every child stopped by then; unloading onnxruntime, onnxsim and protobuf costs ~0.2 s of
    every run and decides nothing."""
    import atexit
    import os

    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    atexit._run_exitfuncs()  # what a normal exit would run (stopping children included)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing left to say
            pass
    console.close()
    os._exit(code)


def main() -> None:
    """Console entry point; the exit code and stream contract of the README's "Conventions":

    0 ok, 1 a check failed, 2 bad input or a failed tool (`error:` + `hint:` lines; an OS error on a
    user's path counts), 3 a bug (traceback plus a line asking to report it), 128 + N for signal N
    (SIGINT 130, SIGTERM 143, SIGHUP 129: one line, every child process stopped first). With --json, stdout
    carries exactly one JSON object on every one of these paths."""
    want_json = "--json" in sys.argv[1:]
    if want_json:
        console.reserve_stdout_for_json()
    restore = process.install_signal_handlers()
    try:
        try:
            code = _run(want_json)
        except Interrupted as exc:
            line = f"npuconv: {exc}: child processes stopped, temporary files removed"
            code = _report(exc.to_json(), exc.exit_code, want_json,
                           lambda: err.print(line, markup=False, soft_wrap=True))
    finally:
        process.exiting()
        process.stop_all()
        restore()
    sys.exit(code)


def _run(want_json: bool) -> int:
    try:
        rv = app(standalone_mode=False)
    except Interrupted:
        raise
    except BaseException as exc:
        _raise_if_interrupted(exc)
        return _failure(exc, want_json)
    _raise_if_interrupted(None)
    code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
    return _report(_exit_error(code), code, want_json) if code else 0


def _raise_if_interrupted(cause: BaseException | None) -> None:
    # A signal decides the outcome even when its exception was lost on the way (pybind11 turns an exception
    # raised while a module initialises into "ImportError: initialization failed"): the children are stopped
    # by then, so whatever failed next failed because of the signal.
    signum = process.interrupted()
    if signum:
        raise Interrupted(signum) from cause


def _failure(exc: BaseException, want_json: bool) -> int:
    """Exit code for what escaped the command, said on stderr and, with --json, as the one object."""
    if isinstance(exc, NpuconvError):
        return _expected(exc, want_json)
    if isinstance(exc, typer.TyperException):  # usage errors: the parser's message and exit code (2)
        _show_usage_error(exc)
        return _report({"type": "UsageError", "message": exc.format_message(), "hint": _usage_hint(exc)},
                       exc.exit_code, want_json)
    if isinstance(exc, typer.Abort):  # EOF on a prompt
        return _report({"type": "Aborted", "message": "aborted", "hint": ""}, 1, want_json,
                       lambda: err.print("Aborted!", markup=False))
    if isinstance(exc, SystemExit):
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return _report(_exit_error(code), code, want_json) if code else 0
    if isinstance(exc, OSError):
        bad_input = path_error(exc, _cache_dir())
        if bad_input is not None:
            return _expected(bad_input, want_json)
    if isinstance(exc, ImportError):  # paddle, paddle2onnx or onnxsim: the `convert` extra is not installed
        missing = convert_tool_missing(exc)
        if missing is not None:
            return _expected(missing, want_json)
    return _bug(exc, want_json)


def _report(error: dict, code: int, want_json: bool, say: Callable[[], None] | None = None) -> int:
    """Say it on stderr (when `say` is given) and, with --json, as the one object on stdout unless a
    command already printed its own."""
    if say is not None:
        say()
    if want_json and not console.json_emitted():
        emit_json({"passed": False, "error": error})
    return code


def _expected(exc: NpuconvError, want_json: bool) -> int:
    def say() -> None:
        err.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
        if exc.hint:
            err.print(f"[bold]hint:[/] {escape(exc.hint)}", soft_wrap=True)
        log_tail = getattr(exc, "log_tail", "")
        if log_tail and not want_json:
            err.print(log_tail, markup=False, soft_wrap=True, style="dim")

    return _report(exc.to_json(), exc.exit_code, want_json, say)


BUG_LINE = "npuconv bug: please report it with the command and the traceback above"


def _bug(exc: BaseException, want_json: bool) -> int:
    def say() -> None:
        traceback.print_exception(exc, file=sys.stderr)
        sys.stderr.flush()
        err.print(BUG_LINE, markup=False, soft_wrap=True)

    return _report({"type": "InternalError", "message": f"{type(exc).__name__}: {exc}",
                    "hint": "this is a bug in npuconv: please report it with the command and the traceback "
                            "printed on stderr"}, 3, want_json, say)


def _exit_error(code: int) -> dict:
    # A command that exits non-zero prints its own JSON; this covers one that exits before it could.
    return {"type": "Exit", "message": f"exit code {code}", "hint": "see the messages on stderr"}


def _show_usage_error(exc: typer.TyperException) -> None:
    # What typer prints in its own standalone mode (`npuconv` alone has printed the help already).
    try:
        from typer import rich_utils

        rich_utils.rich_format_error(exc)
    except Exception:  # typer without rich
        exc.show()


def _usage_hint(exc) -> str:
    ctx = getattr(exc, "ctx", None)
    return f"see `{ctx.command_path} --help`" if ctx is not None else "see `npuconv --help`"


def _cache_dir():
    try:
        from converter.pipeline.runner import cache_root

        return cache_root()
    except Exception:
        return None

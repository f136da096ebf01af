"""Where output goes: machine-readable JSON on stdout, everything for people (logs, progress, tables)
on stderr, so `--json` output can be piped as is."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

from rich.console import Console


def _width(stream) -> int | None:
    # Rich falls back to 80 columns when not writing to a terminal (CI logs, pipes): tables of metrics then
    # truncate their numbers. Logs are read in wide viewers; COLUMNS still wins.
    return None if stream.isatty() or "COLUMNS" in os.environ else 160


err = Console(stderr=True, highlight=False, width=_width(sys.stderr))
out = Console(highlight=False, width=_width(sys.stdout))


_emitted = False


def emit_json(obj: Any) -> None:
    """Write exactly one JSON object to stdout."""
    global _emitted
    _emitted = True
    stream = _json_stream or sys.stdout
    stream.write(json.dumps(obj, indent=2, default=str) + "\n")
    stream.flush()


_json_stream: Any = None


def reserve_stdout_for_json() -> None:
    """From now on stdout (fd 1, so C-level prints of onnxsim or paddle too) goes to stderr; only
    `emit_json` writes to the real stdout."""
    global _json_stream
    if _json_stream is not None:
        return
    sys.stdout.flush()
    _json_stream = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)


def close() -> None:
    """Flush the JSON stream (npuconv may leave without the interpreter's own teardown)."""
    if _json_stream is not None:
        try:
            _json_stream.flush()
        except (OSError, ValueError):
            pass


def json_emitted() -> bool:
    return _emitted


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {message}", soft_wrap=True)


@contextlib.contextmanager
def steps(title: str, quiet: bool = False) -> Iterator[Callable[[str], None]]:
    """A spinner with elapsed time on stderr; yields `step(text)` to say what is running now."""
    if quiet or not err.is_terminal:
        start = time.perf_counter()

        def plain(text: str) -> None:
            if not quiet:
                err.print(f"[dim]{time.perf_counter() - start:6.1f}s[/] {text}", soft_wrap=True)

        yield plain
        return
    with err.status(title) as status:
        start = time.perf_counter()

        def update(text: str) -> None:
            status.update(f"{title}: {text} [dim]({time.perf_counter() - start:.1f}s)[/]")

        yield update

"""What the export worker reports when the user's code is at fault: a `Problem` (kind, message, hint,
structured details) and the helpers that find and show the user's source line."""

from __future__ import annotations

import linecache
import os
import sys
import traceback
from pathlib import Path
from typing import Any

IMPORT_HINT = ("put the module beside the recipe, list its folder in export.search_path, "
               "or pip install the package that provides it")


class Problem(Exception):
    """A failure the user can act on; `kind` picks the parent's error class."""

    def __init__(self, kind: str, message: str, hint: str = "", context: str = "", **details: Any) -> None:
        super().__init__(message)
        self.report = {"ok": False, "kind": kind, "message": message, "hint": hint, "context": context,
                       "details": details}


def not_found_message(module: str, missing: str, search_path: list[str]) -> str:
    """The one wording of 'the builder module is not there' (the parent says it before starting paddle)."""
    where = ", ".join(search_path)
    return (f"cannot import the builder module {module!r}: no module named {missing!r} in {where} (export.search_path) "
            f"nor among the installed packages of {sys.executable}")


def first_line(exc: BaseException) -> str:
    """`Type: first line of the message`, at most 300 characters."""
    text = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    text = text.removesuffix("Suggestions:").strip()  # paddle's suggestions follow on the next lines
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def user_frame(tb, search_path: list[str]) -> tuple[str, int, str] | None:
    """The innermost frame in the user's code: under a search_path folder, else outside paddle and npuconv."""
    frames = traceback.extract_tb(tb)
    ours = (str(Path(__file__).resolve().parent.parent), "paddle" + os.sep, "importlib")
    picks = ([f for f in frames if any(f.filename.startswith(d + os.sep) for d in search_path)]
             or [f for f in frames if not any(o in f.filename for o in ours)])
    if not picks:
        return None
    frame = picks[-1]
    return frame.filename, frame.lineno or 0, (frame.line or "").strip()


def at(where: tuple[str, int, str] | None) -> str:
    """` at FILE:LINE: CODE`, or nothing when the user's frame is unknown."""
    return f" at {where[0]}:{where[1]}: {where[2]}" if where else ""


def source_context(path: str, lineno: int, around: int = 2) -> str:
    """The source lines around `lineno`, the offending one marked."""
    lines = []
    for n in range(max(1, lineno - around), lineno + around + 1):
        text = linecache.getline(path, n).rstrip()
        if text or n <= lineno:
            lines.append(f"{'>' if n == lineno else ' '} {n:5d} | {text}")
    return "\n".join(lines)


def describe(obj: Any) -> str:
    """What a value is, for a message: `a tuple of 2 (Net, dict)`, `a numpy.ndarray`, `None`."""
    kind = type(obj)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    if isinstance(obj, (tuple, list)):
        items = ", ".join(type(o).__name__ for o in obj[:4]) + (", ..." if len(obj) > 4 else "")
        return f"a {name} of {len(obj)} ({items})"
    return "None" if obj is None else f"a {name}"

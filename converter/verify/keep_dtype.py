"""The keep_dtype suggestion as atc reads it (the rules themselves: converter.passes.keep_dtype)."""

from __future__ import annotations

from collections.abc import Sequence


def cfg_text(entries: Sequence[str]) -> str:
    """The `--keep_dtype` cfg file atc reads: one entry per line."""
    return "".join(f"{entry}\n" for entry in entries)

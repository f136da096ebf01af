"""`npuconv lint` (being built)."""

from __future__ import annotations

from converter.errors import NpuconvError


def lint_command() -> None:
    """Not available yet."""
    raise NpuconvError("npuconv lint is not available in this build")

"""`npuconv doctor` (being built)."""

from __future__ import annotations

from converter.errors import NpuconvError


def doctor_command() -> None:
    """Not available yet."""
    raise NpuconvError("npuconv doctor is not available in this build")

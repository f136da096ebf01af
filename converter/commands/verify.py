"""`npuconv verify` (being built)."""

from __future__ import annotations

from converter.errors import NpuconvError


def verify_command() -> None:
    """Not available yet."""
    raise NpuconvError("npuconv verify is not available in this build")

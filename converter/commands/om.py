"""`npuconv om` (being built)."""

from __future__ import annotations

from converter.errors import NpuconvError


def om_command() -> None:
    """Not available yet."""
    raise NpuconvError("npuconv om is not available in this build")

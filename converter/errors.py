"""The error hierarchy. Every expected failure is an `NpuconvError` with a `hint`; the CLI prints
`error:` and `hint:` lines for these and exits with `exit_code`. Anything else is a bug and keeps its
traceback."""

from __future__ import annotations


class NpuconvError(Exception):
    """An expected failure the user can act on."""

    exit_code = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_json(self) -> dict:
        return {"type": type(self).__name__, "message": self.message, "hint": self.hint}


class RecipeError(NpuconvError):
    """The recipe file (or a CLI override of it) is invalid."""


class InputError(NpuconvError):
    """A model file, data file or path given by the user is missing or unusable."""


class ToolNotFound(NpuconvError):
    """An external tool or runtime (atc, ACL, ais_bench, an ORT provider) is not installed here."""


class VersionConflict(NpuconvError):
    """Installed tool versions are a combination known to produce broken models."""


class StageFailed(NpuconvError):
    """An external tool or a stage's own check failed; `log_tail` carries the tool's last lines."""

    def __init__(self, message: str, hint: str = "", log_tail: str = "", log_path: str | None = None) -> None:
        super().__init__(message, hint)
        self.log_tail = log_tail
        self.log_path = log_path

    def to_json(self) -> dict:
        return {**super().to_json(), "log_tail": self.log_tail, "log_path": self.log_path}


class CheckFailed(NpuconvError):
    """A numeric or performance check failed (parity, SLO): exit code 1, not 2."""

    exit_code = 1

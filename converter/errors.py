"""The error hierarchy. Every expected failure is an `NpuconvError` with a `hint`; the CLI prints
`error:` and `hint:` lines for these and exits with `exit_code`. An OSError on a user's path becomes an
`InputError` through `path_error`; `Interrupted` is a signal. Anything else is a bug: the CLI keeps its
traceback and exits 3."""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path


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


class Interrupted(BaseException):
    """SIGINT, SIGTERM or SIGHUP reached npuconv. Raised in the main thread once every child process has
    been stopped (converter.process), so `finally` blocks remove temporary files on the way out; a
    BaseException, so that no `except Exception` swallows it. The CLI exits with 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {self.signal_name}")

    def to_json(self) -> dict:
        return {"type": "Interrupted", "message": f"interrupted by {self.signal_name}",
                "hint": "run the command again: stages that completed are reused from the cache"}


# OS errors that say something about a path (or the disk) rather than about npuconv's code.
_PATH_ERRNOS = {errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.EROFS,
                errno.ENAMETOOLONG, errno.ELOOP, errno.ENOSPC, errno.EDQUOT}
_DISK_FULL = {errno.ENOSPC, errno.EDQUOT}
_DISK_HINT = "free disk space, or write elsewhere (-o/--output-dir, NPUCONV_CACHE)"


def path_error(exc: OSError, cache_dir: Path | None = None) -> InputError | None:
    """The InputError for an OS error on a user's path (permissions, a file where a directory is needed
    or the reverse, a read-only or full disk): the path, the OS's reason and what to do. None for any other
    OSError (a missing file nobody checked for is a bug, not bad input). `cache_dir` is the stage cache,
    so that an unusable NPUCONV_CACHE is named as such."""
    if exc.errno not in _PATH_ERRNOS or (exc.filename is None and exc.errno not in _DISK_FULL):
        return None
    reason = exc.strerror or os.strerror(exc.errno)
    if exc.filename is None:
        return InputError(f"cannot write: {reason}", hint=_DISK_HINT)
    # A rename (the last step of every atomic write) names the temporary file first: the destination is
    # the path the user chose.
    path = Path(os.fsdecode(exc.filename2 if exc.filename2 is not None else exc.filename))
    blocker = _file_in_the_way(path) if exc.errno in (errno.ENOTDIR, errno.EEXIST) else None
    message = f"cannot use {path}: {reason}" + (f" ({blocker} is a file, not a directory)" if blocker else "")
    if cache_dir is not None and _within(path, cache_dir):
        hint = f"the stage cache ({cache_dir}) must be a writable directory: point NPUCONV_CACHE at one"
    elif exc.errno in _DISK_FULL:
        hint = _DISK_HINT
    elif exc.errno == errno.EISDIR:
        hint = f"a file is expected at {path}, not a directory: remove the directory or choose another path"
    elif blocker is not None:
        hint = (f"a directory is needed where the file {blocker} is: move it, or choose another path "
                "(-o/--output-dir for outputs)")
    else:
        hint = "choose a path you can write to (-o/--output-dir for outputs), or fix its permissions"
    return InputError(message, hint=hint)


def _file_in_the_way(path: Path) -> Path | None:
    """The first existing non-directory on the way to `path` (itself included)."""
    for candidate in reversed([path, *path.parents]):
        if candidate.exists() and not candidate.is_dir():
            return candidate
    return None


def _within(path: Path, root: Path) -> bool:
    path, root = path.absolute(), root.absolute()
    return path == root or root in path.parents

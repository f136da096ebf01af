"""Finding and running atc: PATH first, then ASCEND_TOOLKIT_HOME / ASCEND_HOME_PATH / the default install
locations with the environment CANN's set_env.sh would export; argv lists only, the log streamed to a file."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from converter import process
from converter.errors import StageFailed, ToolNotFound
from converter.stages.atc.errors import AtcDiagnosis

HOME_VARS = ("ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH")
DEFAULT_HOMES = ("/usr/local/Ascend/ascend-toolkit/latest", "~/Ascend/ascend-toolkit/latest")
_BIN_DIRS = ("bin", "compiler/bin", "atc/bin")

ATC_ABSENT = "atc (CANN toolkit) is not installed here: not on PATH, nor under ASCEND_TOOLKIT_HOME or ASCEND_HOME_PATH"
ATC_ABSENT_HINT = ("get the exact command anyway with `npuconv om RECIPE --dry-run --json`, or a script for a build "
                   "server with `npuconv om RECIPE --emit-script FILE`")


@dataclass(frozen=True)
class AtcTool:
    """An atc executable and the CANN home it belongs to (None when found on PATH)."""

    path: Path
    home: Path | None
    found_via: str

    def to_json(self) -> dict:
        return {"path": str(self.path), "home": str(self.home) if self.home else None, "found_via": self.found_via}


def _homes(env: Mapping[str, str]) -> list[tuple[str, Path]]:
    homes = [(var, Path(env[var]).expanduser()) for var in HOME_VARS if env.get(var)]
    homes += [("default location", Path(p).expanduser()) for p in DEFAULT_HOMES]
    return homes


def find_atc(env: Mapping[str, str] | None = None) -> AtcTool | None:
    """atc on PATH, else under a CANN home; None when there is none."""
    env = os.environ if env is None else env
    on_path = shutil.which("atc", path=env.get("PATH"))
    if on_path:
        return AtcTool(Path(on_path), None, "PATH")
    for var, home in _homes(env):
        for sub in _BIN_DIRS:
            candidate = home / sub / "atc"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return AtcTool(candidate, home, var)
    return None


def require_atc(env: Mapping[str, str] | None = None) -> AtcTool:
    """find_atc, or ToolNotFound with the one-line explanation and the --dry-run / --emit-script way out."""
    tool = find_atc(env)
    if tool is None:
        raise ToolNotFound(ATC_ABSENT, hint=ATC_ABSENT_HINT)
    return tool


def atc_env(tool: AtcTool, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment to run atc with: unchanged when atc came from PATH (set_env.sh was sourced), else
    what set_env.sh exports for `tool.home` (PATH, LD_LIBRARY_PATH, PYTHONPATH, ASCEND_OPP_PATH, ...)."""
    env = dict(os.environ if base is None else base)
    home = tool.home
    if home is None:
        return env

    def prepend(var: str, *paths: Path) -> None:
        old = env.get(var, "")
        env[var] = os.pathsep.join([str(p) for p in paths] + ([old] if old else []))

    env["ASCEND_TOOLKIT_HOME"] = str(home)
    env["ASCEND_HOME_PATH"] = str(home)
    env["ASCEND_OPP_PATH"] = str(home / "opp")
    env["ASCEND_AICPU_PATH"] = str(home)
    env["TOOLCHAIN_HOME"] = str(home / "toolkit")
    prepend("PATH", tool.path.parent, home / "compiler" / "ccec_compiler" / "bin")
    prepend("LD_LIBRARY_PATH", home / "lib64", home / "lib64" / "plugin" / "opskernel", home / "lib64" / "plugin" / "nnengine")
    prepend("PYTHONPATH", home / "python" / "site-packages", home / "opp" / "built-in" / "op_impl" / "ai_core" / "tbe")
    return env


def cann_version(home: Path | None) -> str | None:
    """The CANN version recorded in a toolkit home (version.cfg or *_install.info), if any."""
    if home is None:
        return None
    candidates = [home / "version.cfg", *sorted(home.glob("*-linux/ascend_toolkit_install.info"))]
    for path in candidates:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        match = re.search(r"(?m)^\s*(?:Version|version)\s*=\s*([\w.]+)", text) or re.search(r"\[(\d+\.\d+[\w.]*)", text)
        if match:
            return match.group(1)
    return None


def toolkit_home(tool: AtcTool, env: Mapping[str, str] | None = None) -> Path | None:
    """The CANN toolkit home of an atc, however it was found: the home it was found under, else
    ASCEND_TOOLKIT_HOME / ASCEND_HOME_PATH (set_env.sh exports them), else the nearest parent of the
    executable that holds version.cfg or *-linux/ascend_toolkit_install.info."""
    if tool.home is not None:
        return tool.home
    env = os.environ if env is None else env
    for var in HOME_VARS:
        if env.get(var) and cann_version(Path(env[var]).expanduser()):
            return Path(env[var]).expanduser()
    for parent in tool.path.resolve().parents[:4]:
        if (parent / "version.cfg").is_file() or any(parent.glob("*-linux/ascend_toolkit_install.info")):
            return parent
    return None


def cann_version_of(tool: AtcTool, env: Mapping[str, str] | None = None) -> str | None:
    """The CANN version of this atc's toolkit, or None when it cannot be read."""
    return cann_version(toolkit_home(tool, env))


class AtcFailed(StageFailed):
    """atc ran and failed; carries the parsed error codes and unsupported ops."""

    def __init__(self, message: str, hint: str, log_tail: str, log_path: str, diagnosis: AtcDiagnosis) -> None:
        super().__init__(message, hint, log_tail, log_path)
        self.diagnosis = diagnosis

    def to_json(self) -> dict:
        return {**super().to_json(), **self.diagnosis.to_json()}


def run_logged(argv: list[str], log_path: Path, env: Mapping[str, str],
               on_line: Callable[[str], None] | None = None, append: bool = False) -> tuple[int, str, float]:
    """Run argv (no shell), stream stdout+stderr into log_path line by line; (exit code, log text, seconds)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    lines: list[str] = []
    try:
        proc = process.start(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(env),
                             text=True, errors="replace", bufsize=1)
    except OSError as exc:
        raise ToolNotFound(f"cannot start {argv[0]}: {exc.strerror}", hint=ATC_ABSENT_HINT) from None
    try:
        with log_path.open("a" if append else "w", encoding="utf-8") as log:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                log.flush()
                lines.append(line)
                if on_line and line.strip():
                    on_line(line.strip()[:120])
        rc = process.wait(proc)
    finally:
        process.stop(proc)  # atc (and all it started) never outlives a failure here
        if proc.stdout is not None:
            proc.stdout.close()
    return rc, "".join(lines), time.perf_counter() - start

"""Run npuconv as on the device box, where the conversion stack (paddle, paddle2onnx, onnxsim) is not
installed, while this test environment has it.

A `sitecustomize.py` written into a temporary directory and put first on PYTHONPATH (so every Python
process started with the environment, npuconv's own worker subprocesses included, gets it):
  - a meta-path finder raises ModuleNotFoundError for the blocked top-level modules and their submodules,
    exactly what `import paddle` raises where Paddle is not installed;
  - `importlib.metadata` no longer finds their distributions, so `importlib.metadata.version("paddlepaddle")`
    raises PackageNotFoundError as it would there.

Usage (see tests/test_without_convert.py):

    env = blocked_env(tmp_path)                           # os.environ + the blocker
    result = run_npuconv(["doctor", "--json"], env)       # CliResult(code, stdout, stderr)

To add a fake runtime (e.g. a fake ais_bench) put its directory on PYTHONPATH after the blocker's:
`env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(fake_dir)])`. A `sitecustomize` of the caller's
own would shadow this one; there is none in this project."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from cli_support import CliResult

REPO = Path(__file__).resolve().parents[2]
# top-level module -> its distribution
CONVERT_STACK: dict[str, str] = {"paddle": "paddlepaddle", "paddle2onnx": "paddle2onnx", "onnxsim": "onnxsim"}

_SITECUSTOMIZE = '''\
"""Written by tests/support/blocked_imports.py: this interpreter behaves as if {modules} were not installed."""
import importlib.metadata as _metadata
import re as _re
import sys as _sys

_BLOCKED_MODULES = frozenset({modules!r})
_BLOCKED_DISTS = frozenset({dists!r})


class _BlockedImports:
    """Refuse the blocked top-level modules (and their submodules) as a missing package would."""

    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in _BLOCKED_MODULES:
            raise ModuleNotFoundError(f"No module named {{top!r}}", name=top)
        return None


_sys.meta_path.insert(0, _BlockedImports())
_discover = _metadata.Distribution.discover.__func__


def _visible(cls, **kwargs):
    for dist in _discover(cls, **kwargs):
        if _re.sub(r"[-_.]+", "-", (dist.metadata["Name"] or "")).lower() not in _BLOCKED_DISTS:
            yield dist


_metadata.Distribution.discover = classmethod(_visible)
'''


def write_blocker(directory: Path, modules: Mapping[str, str] = CONVERT_STACK) -> Path:
    """Write the sitecustomize.py that blocks `modules` (top-level name -> distribution) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    dists = sorted(d.lower().replace("_", "-") for d in modules.values())
    (directory / "sitecustomize.py").write_text(_SITECUSTOMIZE.format(modules=sorted(modules), dists=dists))
    return directory


def blocked_env(tmp_path: Path, modules: Mapping[str, str] = CONVERT_STACK,
                base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment (default: os.environ) whose Python processes cannot import `modules`; the repository
    stays importable (PYTHONPATH: the blocker, the repository, then any PYTHONPATH already set)."""
    env = dict(os.environ if base is None else base)
    blocker = write_blocker(tmp_path / "blocked-imports", modules)
    rest = [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []
    env["PYTHONPATH"] = os.pathsep.join([str(blocker), str(REPO), *rest])
    env.setdefault("COLUMNS", "200")
    return env


def run_npuconv(args: Sequence[str], env: Mapping[str, str], cwd: Path | None = None,
                timeout: float = 600) -> CliResult:
    """`npuconv ARGS...` in a subprocess with `env` (from blocked_env)."""
    proc = subprocess.run([sys.executable, "-m", "converter", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO, env=dict(env), timeout=timeout, check=False)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def run_python(code: str, env: Mapping[str, str]) -> subprocess.CompletedProcess:
    """`python -c CODE` with `env`: for checking the blocker itself."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(env), timeout=120,
                          check=False)

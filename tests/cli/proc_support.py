"""Helpers for the CLI contract tests: a tiny ONNX recipe, `npuconv` started in the background, and what
/proc says about the processes a test started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FAKE_ATC_DIR = REPO / "tests" / "om" / "fake_atc"
BUG_LINE = "npuconv bug: please report it with the command and the traceback above"


def tiny_onnx(path: Path) -> Path:
    """x [1, 3, 8, 8] -> Relu -> y."""
    from onnx import TensorProto, helper, save

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], producer_name="tests")
    model.ir_version = 8
    save(model, str(path))
    return path


def onnx_recipe(tmp_path: Path, **extra) -> Path:
    """A recipe for the tiny ONNX (no Paddle, no parity run), outputs under tmp_path/out."""
    data = {"name": "tiny", "source": {"format": "onnx", "path": str(tiny_onnx(tmp_path / "tiny.onnx"))},
            "inputs": [{"name": "x", "shape": [1, 3, 8, 8]}], "onnx": {"parity": False},
            "output_dir": str(tmp_path / "out"), **extra}
    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    return path


def start_npuconv(args, tmp_path: Path, env: dict) -> subprocess.Popen:
    """`python -m converter ARGS` in the background, stdout/stderr to files in tmp_path. SIGINT is set back
    to its default in the child: a shell that starts this run in the background may have it ignored."""
    return subprocess.Popen(
        [sys.executable, "-m", "converter", *map(str, args)], cwd=REPO, env={**os.environ, "COLUMNS": "200", **env},
        stdin=subprocess.DEVNULL, stdout=(tmp_path / "stdout").open("w"), stderr=(tmp_path / "stderr").open("w"),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _stat_fields(pid: int | str) -> list[str] | None:
    """/proc/PID/stat after the command name (state, ppid, pgrp, ... utime at 11), None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _stat(pid: str) -> tuple[str, int] | None:
    """(state, process group) of a live process, None when it is gone."""
    fields = _stat_fields(pid)
    return None if fields is None else (fields[0], int(fields[2]))


def children_of(pid: int, mentioning: str) -> dict[int, str]:
    """Live processes whose parent is `pid` and whose command line contains `mentioning`."""
    return {child: cmdline for child, cmdline in processes(mentioning=mentioning).items()
            if (fields := _stat_fields(child)) is not None and int(fields[1]) == pid}


def cpu_ticks(pid: int) -> int:
    """User CPU time a process has used, in clock ticks (0 when it is gone)."""
    fields = _stat_fields(pid)
    return 0 if fields is None else int(fields[11])


def processes(*, mentioning: str | None = None, pgid: int | None = None) -> dict[int, str]:
    """Live (not zombie) processes whose command line contains `mentioning` or whose process group is
    `pgid`: {pid: command line}."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        stat = _stat(entry.name)
        if stat is None or stat[0] in ("Z", "X"):
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if (mentioning is not None and mentioning in cmdline) or (pgid is not None and stat[1] == pgid):
            found[int(entry.name)] = cmdline
    return found


def wait_until(condition, what: str, proc: subprocess.Popen, limit_s: float = 120.0):
    """Poll `condition()` until it is truthy (and return it); fail when `proc` exits first or after
    `limit_s` (a safety net, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(f"npuconv exited ({proc.returncode}) before {what}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"gave up waiting for {what}")


def survivors(**match) -> dict[int, str]:
    """`processes(**match)` after giving a SIGKILLed process a moment to be gone (not ours to reap)."""
    deadline = time.monotonic() + 5.0
    while (left := processes(**match)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def partial_files(*roots: Path) -> list[str]:
    """Anything an interrupted write could leave: temp files, half-written files, scratch directories."""
    found = []
    for root in roots:
        if not root.exists():
            continue
        for path in root.rglob("*"):
            name = path.name
            if ".locks" in path.parts:  # the runner's per-key lock files: empty, and never half-written
                continue
            scratch = path.is_dir() and name.startswith(".") and (name != ".scratch" or any(path.iterdir()))  # the empty scratch container stays
            if name.endswith((".tmp", ".part")) or scratch:
                found.append(str(path))
    return found

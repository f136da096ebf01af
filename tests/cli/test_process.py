"""converter.process on its own: a child and everything it started end together, whether it is stopped or
exits by itself; nothing stays registered; argv lists only."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from proc_support import survivors

from converter import process

# Starts a grandchild that ignores SIGTERM (so only the group's SIGKILL ends it), prints its pid, then
# sleeps (or exits at once with "exit").
PARENT = """
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(600)",
    sys.argv[1]], stdout=subprocess.PIPE, text=True)
grandchild.stdout.readline()
print(grandchild.pid, flush=True)
if sys.argv[2] == "sleep":
    time.sleep(600)
"""


def _start(tmp_path, then: str):
    proc = process.start([sys.executable, "-c", PARENT, str(tmp_path), then], stdout=subprocess.PIPE, text=True)
    grandchild = int(proc.stdout.readline())
    proc.stdout.close()
    return proc, grandchild


def test_stop_ends_the_whole_group(tmp_path):
    proc, grandchild = _start(tmp_path, "sleep")
    assert proc.pid in process.running()
    assert process.stop(proc) == -signal.SIGTERM
    assert survivors(mentioning=str(tmp_path)) == {}, f"grandchild {grandchild} survived"
    assert proc.pid not in process.running()


def test_a_child_that_exits_leaves_nothing_behind(tmp_path):
    proc, _ = _start(tmp_path, "exit")
    assert process.wait(proc) == 0
    assert survivors(mentioning=str(tmp_path)) == {}
    assert proc.pid not in process.running()


def test_stop_all_stops_every_registered_child(tmp_path):
    procs = [_start(tmp_path / str(i), "sleep")[0] for i in range(2)]
    assert process.stop_all() == 2
    assert all(p.returncode == -signal.SIGTERM for p in procs)
    assert survivors(mentioning=str(tmp_path)) == {}


def test_argv_lists_only():
    with pytest.raises(TypeError):
        process.start("echo hi")
    with pytest.raises(TypeError):
        process.start(["echo", "hi"], shell=True)
    with pytest.raises(FileNotFoundError):
        process.start(["/nonexistent/atc"])
    assert process.running() == []

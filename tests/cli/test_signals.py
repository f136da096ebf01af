"""SIGINT/SIGTERM while a child process runs: npuconv exits 130/143 with one line (one JSON object with
--json), no traceback, no temporary or half-written file, and no child process outlives it: the Paddle
workers of `npuconv onnx`, a (fake) atc under `npuconv om` with its whole process group, and a bench
worker in the middle of its timed loop."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys

import pytest
from proc_support import (FAKE_ATC_DIR, REPO, children_of, cpu_ticks, onnx_recipe, partial_files, processes, start_npuconv,
                          survivors, wait_until)

CASES = [(signal.SIGTERM, 143, True), (signal.SIGINT, 130, False)]
IDS = ["SIGTERM-json", "SIGINT-text"]


def check_interrupted(returncode: int, tmp_path, sig, code: int, want_json: bool) -> None:
    assert returncode == code
    stdout = (tmp_path / "stdout").read_text()
    stderr = (tmp_path / "stderr").read_text()
    assert "Traceback" not in stderr, stderr
    name = signal.Signals(sig).name
    said = [ln for ln in stderr.splitlines() if "interrupted" in ln]
    assert said == [stderr.strip().splitlines()[-1]] and name in said[0], stderr
    if want_json:
        error = json.loads(stdout)["error"]  # exactly one JSON document
        assert error["type"] == "Interrupted" and name in error["message"]
    else:
        assert "interrupted" not in stdout


@pytest.mark.parametrize(("sig", "code", "want_json"), CASES, ids=IDS)
def test_signal_stops_paddle_workers(paddle_models, make_recipe, tmp_path, sig, code, want_json):
    recipe = make_recipe("crnn", paddle_models["crnn"])
    cache = tmp_path / "cache"
    proc = start_npuconv(["onnx", recipe, "--force", *(["--json"] if want_json else [])], tmp_path,
                         {"NPUCONV_CACHE": str(cache)})
    # The worker's job file lives in the cache's scratch directory, under this test's tmp_path.
    def the_worker():
        found = processes(mentioning=f"paddle_worker {cache}")
        return found if len(found) == 1 else None

    workers = wait_until(the_worker, "the Paddle worker runs", proc)
    proc.send_signal(sig)
    check_interrupted(proc.wait(timeout=120), tmp_path, sig, code, want_json)
    assert survivors(mentioning=str(tmp_path)) == {}
    assert not any(os.path.exists(f"/proc/{pid}") for pid in workers)
    assert partial_files(tmp_path / "out", cache) == []
    assert not (tmp_path / "out" / "crnn.onnx").exists()


@pytest.mark.parametrize(("sig", "code", "want_json"), CASES, ids=IDS)
def test_signal_stops_atc_and_its_process_group(tmp_path, sig, code, want_json):
    recipe = onnx_recipe(tmp_path, om={"soc_version": "Ascend310P3", "precision_mode_v2": "origin"})
    pids_file = tmp_path / "atc_pids.json"
    env = {"PATH": f"{FAKE_ATC_DIR}{os.pathsep}{os.environ['PATH']}", "FAKE_ATC_MODE": "sleep",
           "FAKE_ATC_PIDS": str(pids_file), "FAKE_ATC_RECORD": str(tmp_path / "atc_record.jsonl"),
           "NPUCONV_CACHE": str(tmp_path / "cache"), "ASCEND_TOOLKIT_HOME": "", "ASCEND_HOME_PATH": ""}
    proc = start_npuconv(["om", recipe, *(["--json"] if want_json else [])], tmp_path, env)
    pids = wait_until(lambda: json.loads(pids_file.read_text()) if pids_file.exists() else None,
                      "the fake atc and its child run", proc)
    assert pids["pgid"] == pids["pid"] != os.getpgid(proc.pid)  # atc got a process group of its own
    assert set(processes(pgid=pids["pgid"])) == {pids["pid"], pids["child"]}
    proc.send_signal(sig)
    check_interrupted(proc.wait(timeout=120), tmp_path, sig, code, want_json)
    assert survivors(pgid=pids["pgid"]) == {}  # the child ignores SIGTERM: it needed the SIGKILL
    assert survivors(mentioning=str(tmp_path)) == {}
    assert partial_files(tmp_path) == []
    assert not [p for p in tmp_path.rglob("*.om")], "no OM, whole or half, may be left"


# pybind11 turns an exception raised while a module initialises (`import onnx` runs while the Paddle
# workers start) into "ImportError: initialization failed": the signal must still decide the outcome.
CONVERTED = """
import os, signal, time
import converter.commands.common as common
def load_while_a_signal_arrives(*args, **kwargs):
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(60)
    except BaseException as exc:
        raise ImportError("initialization failed") from exc
common.load = load_while_a_signal_arrives
from converter.cli import main
main()
"""


def test_signal_turned_into_another_error_is_still_an_interruption(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: x\n")
    proc = subprocess.run([sys.executable, "-c", CONVERTED, "onnx", str(recipe), "--json"], cwd=REPO,
                          stdin=subprocess.DEVNULL, stdout=(tmp_path / "stdout").open("w"),
                          stderr=(tmp_path / "stderr").open("w"), timeout=120)
    check_interrupted(proc.returncode, tmp_path, signal.SIGTERM, 143, want_json=True)


@pytest.mark.parametrize(("sig", "code", "want_json"), CASES, ids=IDS)
def test_signal_stops_a_bench_worker_in_its_timed_loop(tmp_path, sig, code, want_json):
    # a worker that times for 10 minutes: only npuconv stopping it ends it within the test
    recipe = onnx_recipe(tmp_path, bench={"warmup": 1, "duration_s": 600})
    proc = start_npuconv(["bench", recipe, *(["--json"] if want_json else [])], tmp_path,
                         {"NPUCONV_CACHE": str(tmp_path / "cache")})
    workers: dict[int, str] = {}
    try:
        workers = wait_until(lambda: children_of(proc.pid, "converter.bench.worker"), "the bench worker runs", proc)
        [worker] = workers
        # started like every child of npuconv (converter.process): a process group of its own, registered,
        # so the signal handler stops it at once instead of waiting for its timed loop to end
        assert os.getpgid(worker) == worker != os.getpgid(proc.pid)
        # in its timed loop once it has used CPU for a while (it reads no pipe until the loop ends)
        wait_until(lambda: cpu_ticks(worker) > 50, "the worker computes", proc)
        proc.send_signal(sig)
        check_interrupted(proc.wait(timeout=120), tmp_path, sig, code, want_json)
        assert survivors(pgid=worker) == {}, "the bench worker outlived npuconv"
        assert partial_files(tmp_path / "out", tmp_path / "cache") == []
    finally:  # a failed assertion leaves no 10-minute worker behind
        if proc.poll() is None:
            proc.kill()
        for pid in workers:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

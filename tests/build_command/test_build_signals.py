"""Ctrl-C during `npuconv build`: every worker process stops, and so does what each worker started (atc and
its whole process group, even a child that ignores SIGTERM); no temporary or half-written file is left;
the last good OM and manifest stay as they were; the next build runs cleanly from the cache."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

from build_support import fake_cann, onnx_recipe, statuses, tiny_onnx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cli"))
from proc_support import partial_files, processes, start_npuconv, survivors, wait_until


def test_sigint_mid_build_then_a_clean_rebuild(run_cli, tmp_path):
    model = tiny_onnx(tmp_path / "tiny.onnx")
    slow = onnx_recipe(tmp_path, "slow", model, om={"soc_version": "Ascend310P3", "precision_mode_v2": "origin"})
    quick = onnx_recipe(tmp_path, "quick", model, verify={"targets": ["onnx:cpu"]})
    cache = tmp_path / "cache"
    env = {**fake_cann(tmp_path / "cann", mode="ok"), "NPUCONV_CACHE": str(cache)}
    first = run_cli("build", slow, quick, "--json", env=env)
    assert first.code == 0, first.stderr
    om = tmp_path / "out" / "slow" / "slow.om"
    manifest = tmp_path / "out" / "slow" / "slow.manifest.json"
    good = {path: path.read_bytes() for path in (om, manifest, om.with_name("slow.om.card.json"))}

    # --force om: atc runs again, and hangs (with a child that ignores SIGTERM) until the signal comes
    pids_file = tmp_path / "atc_pids.json"
    logs = tmp_path / "interrupted"
    logs.mkdir()
    proc = start_npuconv(["build", slow, quick, "--jobs", "2", "--force", "om", "--json"], logs,
                         {**env, "FAKE_ATC_MODE": "sleep", "FAKE_ATC_PIDS": str(pids_file)})
    pids = wait_until(lambda: json.loads(pids_file.read_text()) if pids_file.exists() else None, "atc runs", proc)
    workers = processes(mentioning=f"converter.pipeline.build_worker {cache}")
    assert len(workers) >= 1 and pids["pgid"] not in workers  # atc runs in a process group of its own
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 130
    stderr = (logs / "stderr").read_text()
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith("npuconv: interrupted by SIGINT")
    assert json.loads((logs / "stdout").read_text())["error"]["type"] == "Interrupted"  # exactly one JSON object
    assert survivors(pgid=pids["pgid"]) == {}  # atc and the child that ignored SIGTERM
    assert survivors(mentioning=str(tmp_path)) == {}  # the workers
    assert partial_files(tmp_path / "out", cache) == []
    assert not list(cache.glob(".scratch/build-*"))  # the job files
    assert {path: path.read_bytes() for path in good} == good  # the last good OM, card and manifest

    again = run_cli("build", slow, quick, "--json", env=env)
    assert again.code == 0, again.stderr
    units = {u["unit"]: u for u in again.json()["recipes"]}
    assert statuses(units["slow"]) == {"onnx": "cached", "om[default]": "cached", "reference": "cached",
                                       "verify[om]": "skipped"}
    assert om.read_bytes() == good[om]
    assert json.loads(manifest.read_text())["units"]["default"]["stages"][1]["status"] == "cached"

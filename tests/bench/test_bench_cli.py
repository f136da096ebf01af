"""`npuconv bench` as a user runs it, on a small real Paddle model built at test time: the JSON, CSV and
PNG it writes, batch sizes, the SLO and baseline gates through the CLI, and `--backend om` without an
Ascend runtime. Every gate here is decided by a limit no machine can meet (or a doctored baseline)."""

from __future__ import annotations

import csv
import json

import pytest

FAST = ["--set", "bench.iterations=4", "--set", "bench.warmup=1"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def crnn_recipe(paddle_models, make_recipe):
    return make_recipe("crnn", paddle_models["crnn"])


def test_onnx_and_paddle_at_two_batch_sizes_with_json_csv_and_plot(crnn_recipe, run_cli, tmp_path):
    res = run_cli("bench", crnn_recipe, "-b", "onnx", "-b", "paddle", "--batch", "1,2", "--threads", "1", "--json",
                  "--csv", tmp_path / "b.csv", "--plot", tmp_path / "b.png", *FAST)
    assert res.code == 0, res.stderr
    data = res.json()
    assert data["passed"] is True and data["environment"]["threads"] == 1
    assert [(m["batch"], m["inputs"]["x"]) for m in data["models"]] == [(1, [1, 3, 32, 64]), (2, [2, 3, 32, 64])]
    # conv1 3->8 3x3 on 32x64, conv2 8->16 3x3 on 16x32, head 128->11 on 16 steps (hand count, per sample)
    per_sample = 2 * (8 * 32 * 64 * 27 + 16 * 16 * 32 * 72 + 16 * 11 * 128)
    assert [m["flops"] for m in data["models"]] == [per_sample, 2 * per_sample]
    assert [(r["batch"], r["backend"]) for r in data["results"]] == [(1, "onnx:cpu"), (1, "paddle"), (2, "onnx:cpu"), (2, "paddle")]
    for r in data["results"]:
        assert r["iterations"] == 4 and r["warmup"] == 1 and r["info"]["threads"] == 1
        assert r["latency_ms"]["p99"] >= r["latency_ms"]["median"] > 0 and r["peak_rss_mb"] > 0 and r["cold_start_ms"] > 0
        assert r["flops"] == per_sample * r["batch"] and r["gflops_per_s"] > 0
        assert r["baseline"] == "onnx:cpu" and (r["ratio_to_baseline"] == 1.0) == (r["backend"] == "onnx:cpu")
    assert "copy_from_cpu" in data["results"][1]["timed_region"]
    rows = list(csv.DictReader(open(tmp_path / "b.csv")))
    assert [(r["batch"], r["backend"]) for r in rows] == [("1", "onnx:cpu"), ("1", "paddle"), ("2", "onnx:cpu"), ("2", "paddle")]
    assert float(rows[0]["p99_ms"]) == pytest.approx(data["results"][0]["latency_ms"]["p99"])
    assert (tmp_path / "b.png").read_bytes()[:8] == PNG_MAGIC and data["plot"] == str(tmp_path / "b.png")
    assert "ratio" in res.stderr and "paddle" in res.stderr  # the table goes to stderr with --json


def test_slo_and_regression_gates_fail_with_both_numbers(crnn_recipe, run_cli, tmp_path):
    first = run_cli("bench", crnn_recipe, "--json", "-b", "onnx-raw", "-b", "onnx", *FAST)
    assert first.code == 0, first.stderr
    baseline = first.json()
    assert baseline["results"][0]["backend"] == "onnx-raw" and baseline["models"][0]["raw_onnx"]
    for r in baseline["results"]:  # a baseline 1000x faster than anything: every comparison regresses
        r["latency_ms"] = {k: v / 1000 for k, v in r["latency_ms"].items()}
    baseline["models"][0]["onnx_sha256"] = "0" * 64
    path = tmp_path / "last.json"
    path.write_text(json.dumps(baseline))
    res = run_cli("bench", crnn_recipe, "--json", "-b", "onnx", "--baseline-file", path, "--max-regression", "5%",
                  "--set", "bench.slo.p99_ms=0.000001", *FAST)
    assert res.code == 1, res.stderr
    data = res.json()
    assert data["passed"] is False
    slo = [g for g in data["gates"] if g["kind"] == "slo"]
    assert len(slo) == 1 and not slo[0]["passed"] and slo[0]["limit"] == 1e-6
    regression = {g["metric"]: g for g in data["gates"] if g["kind"] == "regression"}
    assert set(regression) == {"median_ms", "p99_ms"} and not any(g["passed"] for g in regression.values())
    assert regression["median_ms"]["baseline_value"] == pytest.approx(baseline["results"][1]["latency_ms"]["median"])
    notes = " ".join(data["notes"])
    assert "onnx-raw: only in the baseline file" in notes and "the ONNX changed" in notes
    assert "REGRESSED beyond 5%" in res.stderr and "MISSES the SLO" in res.stderr
    slower = json.loads(json.dumps(baseline))
    for r in slower["results"]:
        r["latency_ms"] = {k: v * 1e6 for k, v in r["latency_ms"].items()}
    path.write_text(json.dumps(slower))
    ok = run_cli("bench", crnn_recipe, "-b", "onnx", "--baseline-file", path, *FAST)
    assert ok.code == 0, ok.stderr
    assert "regression pass" in ok.stdout


def test_om_without_an_ascend_runtime_exits_2_with_one_line(crnn_recipe, run_cli, tmp_path):
    res = run_cli("bench", crnn_recipe, "--backend", "om")
    assert res.code == 2
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Ascend runtime is not available" in errors[0]
    [hint] = [ln for ln in res.stderr.splitlines() if ln.startswith("hint:")]
    assert "`bench --backend onnx`" in hint and "Traceback" not in res.stderr  # what works here instead
    assert res.stdout == "" and not (tmp_path / "out").exists()  # nothing built, nothing measured
    data = run_cli("bench", crnn_recipe, "--backend", "om", "--json").json()
    assert data == {"passed": False, "error": data["error"]} and data["error"]["type"] == "ToolNotFound"


def test_usage_errors_exit_2(crnn_recipe, run_cli):
    for args in (["-b", "emulate:fp16"], ["--batch", "0"], ["--baseline", "paddle"], ["--max-regression", "10"],
                 ["-b", "onnx", "-b", "onnx:cpu"]):
        res = run_cli("bench", crnn_recipe, *args)
        assert res.code == 2 and res.stderr.count("error:") == 1, (args, res.stderr)


def test_om_backend_through_a_fake_ais_bench(paddle_models, make_recipe, run_cli, fake_ais_bench, tmp_path):
    """An OM built by `npuconv om` (the recording fake atc), whose bytes are then the ONNX's: the fake NPU
    runtime runs it. The OM's card says it is one graph."""
    import os
    from pathlib import Path

    crnn_recipe = make_recipe("crnn", paddle_models["crnn"], om={"soc_version": "Ascend310P3", "precision_mode_v2": "origin"})
    fake_atc = Path(__file__).resolve().parents[1] / "om" / "fake_atc"
    built = run_cli("om", crnn_recipe, "--json", env={"PATH": f"{fake_atc}{os.pathsep}{os.environ['PATH']}",
                                                      "FAKE_ATC_RECORD": str(tmp_path / "atc.jsonl")})
    assert built.code == 0, built.stderr
    om = Path(built.json()["om"])
    om.write_bytes(Path(built.json()["graphs"][0]["onnx"]).read_bytes())
    env = fake_ais_bench
    res = run_cli("bench", crnn_recipe, "-b", "om", "--om", om, "--json", "--set", "bench.iterations=3",
                  "--set", "bench.warmup=2", env=env)
    assert res.code == 0, res.stderr
    (result,) = res.json()["results"]
    assert result["backend"] == "om" and "host->device" in result["timed_region"] and result["iterations"] == 3
    log = [json.loads(line) for line in open(fake_ais_bench["FAKE_AIS_BENCH_LOG"])]
    infers = [e for e in log if e["event"] == "infer"]
    assert log[0]["event"] == "load" and log[-1]["event"] == "free" and {e["mode"] for e in infers} == {"static"}
    assert len(infers) >= 1 + 2 + 3  # first run + warm-up + timed (plus the untimed settle runs of each block)
    assert infers[0]["shapes"] == [[1, 3, 32, 64]] and infers[0]["dtypes"] == ["float32"]

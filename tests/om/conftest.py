"""Fixtures for the om / lint / doctor tests: a shared onnx-stage cache, tiny ONNX models built with
onnx.helper, recipe files, the recording fake atc on PATH, and an in-process CLI runner."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml
from cli_support import CliResult
from om_support import FAKE_ATC_DIR, conv_model


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("npuconv_cache")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, cache_dir, tmp_path):
    """Shared onnx cache; no real CANN visible; atc absent unless a test puts the fake on PATH."""
    monkeypatch.setenv("NPUCONV_CACHE", str(cache_dir))
    for var in ("ASCEND_TOOLKIT_HOME", "ASCEND_HOME_PATH", "FAKE_ATC_MODE", "FAKE_ATC_LOG", "FAKE_ATC_RC"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                              if not (Path(p) / "atc").exists()))


@pytest.fixture
def fake_atc(monkeypatch, tmp_path) -> Path:
    """Put the recording fake atc first on PATH; returns the record file (absent until atc runs)."""
    record = tmp_path / "atc_record.jsonl"
    # OM builds are cached by content: an empty cache per test makes every first `om` run call atc.
    monkeypatch.setenv("NPUCONV_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", f"{FAKE_ATC_DIR}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ATC_RECORD", str(record))
    return record


# ---- tiny ONNX models ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    return conv_model(tmp_path_factory.mktemp("models") / "tiny.onnx")


@pytest.fixture(scope="session")
def tiny2_onnx(tmp_path_factory) -> Path:
    return conv_model(tmp_path_factory.mktemp("models") / "tiny2.onnx",
                      inputs=(("x", ["N", 3, 16, 16]), ("y", ["N", 4])))


@pytest.fixture
def make_recipe(tmp_path, tiny_onnx):
    """Write a recipe for the tiny model with the given om section (and extra top-level keys)."""

    def make(om, *, name: str = "tiny", source: Path | None = None, inputs=None, preprocess=True, **extra) -> Path:
        data = {
            "name": name,
            "source": {"format": "onnx", "path": str(source or tiny_onnx)},
            "inputs": inputs or [{"name": "x", "shape": [1, 3, 16, 16]}],
            "onnx": {"parity": False},
            "output_dir": str(tmp_path / "build"),
        }
        if preprocess:
            data["preprocess"] = {"mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375],
                                  "channel_order": "RGB"}
        if om is not None:
            data["om"] = om
        data.update(extra)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return make


# ---- in-process CLI ---------------------------------------------------------------------------------

@pytest.fixture
def cli(monkeypatch, capsys):
    """Run `npuconv ARGS...` through converter.cli.main in this process; returns code, stdout, stderr.
    The fd-level stdout reservation of --json is process-global, so it is disabled here (JSON still goes
    through emit_json to sys.stdout); test_om_subprocess.py covers the real process."""
    from converter import console
    from converter.cli import main

    monkeypatch.setattr(console, "reserve_stdout_for_json", lambda: None)
    monkeypatch.setattr(console, "_json_stream", None, raising=False)

    def run(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["npuconv", *map(str, args)])
        monkeypatch.setattr(console, "_emitted", False)
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run

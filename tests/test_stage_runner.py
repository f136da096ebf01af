"""The stage runner on a stage of its own (no tools): a failed run leaves no cache entry and no scratch,
a finished one is published once and found again, a declared but unwritten file is a bug, and a damaged
entry is rebuilt with a warning."""

from __future__ import annotations

from pathlib import Path

import pytest

from converter.errors import StageFailed
from converter.pipeline.runner import run_stage
from converter.stage import Stage, StageOutput, StageRun


class Upper(Stage):
    """Writes the section's text in capitals; `fail` stops it half-way, `forget` declares a file it never writes."""

    name = "upper_test"

    def __init__(self, fail: bool = False, forget: bool = False) -> None:
        self.fail, self.forget = fail, forget
        self.runs = 0

    def run(self, section, upstream, scratch: Path, progress) -> StageOutput:
        self.runs += 1
        (scratch / "out.txt").write_text(section["text"].upper())
        if self.fail:
            raise StageFailed("the tool died half-way", hint="none")
        files = {"out": "out.txt", **({"extra": "extra.txt"} if self.forget else {})}
        return StageOutput(files, {"length": len(section["text"])})

    def published_name(self, role: str, stem: str) -> str | None:
        return f"{stem}.txt"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("NPUCONV_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / Upper.name


def entries(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) if cache.exists() else []


def test_a_failed_run_leaves_no_entry_and_no_scratch(cache, tmp_path):
    run = StageRun("upper", Upper(fail=True), {"text": "abc"}, out_dir=tmp_path / "out", stem="u")
    with pytest.raises(StageFailed):
        run_stage(run, {})
    assert entries(cache) == [] and list((cache / ".scratch").iterdir()) == []
    assert not (tmp_path / "out").exists()


def test_published_once_then_found_in_the_cache(cache, tmp_path):
    stage = Upper()
    run = StageRun("upper", stage, {"text": "abc"}, out_dir=tmp_path / "out", stem="u")
    first = run_stage(run, {})
    assert first.cached is False and first.card["length"] == 3
    assert (tmp_path / "out" / "u.txt").read_text() == "ABC" and len(entries(cache)) == 1
    again = run_stage(run, {})
    assert again.cached is True and again.key == first.key and stage.runs == 1
    other = run_stage(StageRun("upper", stage, {"text": "abd"}), {})
    assert other.key != first.key and stage.runs == 2 and len(entries(cache)) == 2


def test_a_declared_file_not_written_is_a_bug_not_an_entry(cache):
    with pytest.raises(RuntimeError, match="declared file 'extra.txt'"):
        run_stage(StageRun("upper", Upper(forget=True), {"text": "abc"}), {})
    assert entries(cache) == []


def test_a_damaged_entry_is_rebuilt_with_a_warning(cache):
    stage, warned = Upper(), []
    run = StageRun("upper", stage, {"text": "abc"})
    first = run_stage(run, {})
    first.path("out").write_text("tampered")
    again = run_stage(run, {}, warn=warned.append)
    assert again.cached is False and stage.runs == 2 and again.path("out").read_text() == "ABC"
    assert len(warned) == 1 and "damaged" in warned[0]

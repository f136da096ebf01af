"""Atomic writes, content keys, the stage cache and the known-bad version table."""

from __future__ import annotations

import pytest

from converter.artifacts import (
    atomic_path,
    content_key,
    file_digest,
    write_bytes_atomic,
)
from converter.errors import ToolNotFound, VersionConflict
from converter.versions import check_versions, known_bad


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    dest = tmp_path / "model.onnx"
    write_bytes_atomic(dest, b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("tool died")
    assert dest.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_content_key_is_order_independent_and_sensitive_to_values():
    assert content_key({"a": 1, "b": [1, 2]}) == content_key({"b": [1, 2], "a": 1})
    assert content_key({"a": 1}) != content_key({"a": 2})


def test_file_digest_follows_content(tmp_path):
    path = tmp_path / "p"
    path.write_bytes(b"abc")
    first = file_digest(path)
    assert first == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # sha256("abc")
    path.write_bytes(b"abd")
    assert file_digest(path) != first


def test_known_bad_versions_are_refused():
    good = {"paddlepaddle": "3.2.2", "paddle2onnx": "2.0.1"}
    assert known_bad(good) == []
    check_versions(good)
    with pytest.raises(VersionConflict, match="paddle2onnx 2.1.x writes ONNX that ONNX Runtime rejects") as exc:
        check_versions({**good, "paddle2onnx": "2.1.0"})
    assert "paddle2onnx==2.0.1" in exc.value.hint
    with pytest.raises(VersionConflict, match="paddlepaddle 3.3.x cannot export PP-OCRv4 det"):
        check_versions({**good, "paddlepaddle": "3.3.1"})
    with pytest.raises(ToolNotFound, match="paddle2onnx is not installed") as missing:
        check_versions({"paddlepaddle": "3.2.2", "paddle2onnx": None})
    assert missing.value.hint.startswith("pip install 'npuconv[convert]'")
    check_versions({"paddlepaddle": None, "paddle2onnx": None}, need=())  # an ONNX source needs neither

"""Artifacts on disk: content keys, atomic writes and the stage cache.

A stage's key is the sha256 of its name and version, its recipe sections, the digests of its input files
and the tool versions. The cache keeps one directory per key; a stage rerun with the same key returns the
stored files without running anything (and without importing paddle, onnx or onnxruntime)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: Path) -> str:
    """sha256 of a file's bytes (memoised on path, size and mtime within one process)."""
    stat = path.stat()
    memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if memo not in _DIGESTS:
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[memo] = h.hexdigest()
    return _DIGESTS[memo]


def content_key(payload: dict[str, Any]) -> str:
    """A stable sha256 of a JSON-able payload (keys sorted)."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_root() -> Path:
    """NPUCONV_CACHE, else the user cache directory."""
    env = os.environ.get("NPUCONV_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("npuconv"))


@contextlib.contextmanager
def atomic_path(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; rename it onto `dest` only if the block succeeds."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes_atomic(dest: Path, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(dest: Path, obj: Any) -> None:
    write_bytes_atomic(dest, (json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n").encode())


def copy_atomic(src: Path, dest: Path) -> None:
    """Copy a file so that `dest` is either the old file or the complete new one."""
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


class StageCache:
    """One directory per content key under `<cache_root>/<stage>/`; an entry is complete once its
    `card.json` exists (written last, atomically)."""

    def __init__(self, stage: str, root: Path | None = None) -> None:
        self.dir = (root or cache_root()) / stage

    def entry(self, key: str) -> Path:
        return self.dir / key

    def lookup(self, key: str) -> Path | None:
        entry = self.entry(key)
        return entry if (entry / "card.json").is_file() else None

    @contextlib.contextmanager
    def building(self, key: str) -> Iterator[Path]:
        """A scratch directory that becomes the cache entry if the block succeeds."""
        self.dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{key[:12]}.", dir=self.dir))
        try:
            yield scratch
            final = self.entry(key)
            if final.exists():
                shutil.rmtree(final)
            os.replace(scratch, final)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

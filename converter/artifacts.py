"""Artifacts on disk: content keys, file digests, atomic writes with the umask's permissions, and the
`Artifact` record every stage returns (its files by role, their sha256, and the stage's card of facts).

An artifact lives in its cache entry (immutable once published); `artifact.json` in that directory is
its record. Downstream stages read the record, never the recipe or a file-name convention."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECORD = "artifact.json"
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


def content_key(payload: Mapping[str, Any]) -> str:
    """A stable sha256 of a JSON-able payload (keys sorted)."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _umask() -> int:
    # os.umask can only be read by setting it; done once, before any thread writes files.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _umask()


def umask_mode(executable: bool = False) -> int:
    """The mode a new file gets from the umask (0o666, or 0o777 for executables and directories)."""
    return (0o777 if executable else 0o666) & ~UMASK


def apply_umask(path: Path) -> None:
    """Give a file (or a directory tree) the permissions the umask grants; executables stay executable.
    Temporary files and directories are created 0600/0700, which the service account that runs
    inference on the device box could not read."""
    if path.is_dir():
        os.chmod(path, umask_mode(True))
        for root, dirs, files in os.walk(path):
            for name in dirs:
                os.chmod(Path(root) / name, umask_mode(True))
            for name in files:
                apply_umask(Path(root) / name)
        return
    executable = bool(path.stat().st_mode & 0o100)
    os.chmod(path, umask_mode(executable))


@contextlib.contextmanager
def atomic_path(dest: Path, executable: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; it becomes `dest` (with the umask's permissions) only if the
    block succeeds, so `dest` is always either the old file or the complete new one."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, umask_mode(executable))
        os.replace(tmp_path, dest)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes_atomic(dest: Path, data: bytes, executable: bool = False) -> None:
    """Write `data` to `dest` atomically."""
    with atomic_path(dest, executable) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(dest: Path, obj: Any) -> None:
    """Write one JSON document to `dest` atomically."""
    write_bytes_atomic(dest, (json.dumps(obj, indent=2, default=str) + "\n").encode())


def copy_atomic(src: Path, dest: Path) -> None:
    """Copy a file so that `dest` is either the old file or the complete new one."""
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


@dataclass(frozen=True)
class Artifact:
    """What a stage produced: files by role (in `root`, the cache entry), their sha256, and the card.

    `card` holds the stage's facts (shapes, opsets, atc argv, precision, parity metrics...). A stage that
    consumes this artifact reads those facts here, never from the recipe."""

    stage: str
    key: str
    root: Path
    files: Mapping[str, str]
    digests: Mapping[str, str]
    card: Mapping[str, Any]
    cached: bool = False
    seconds: float = 0.0
    published: Mapping[str, str] = field(default_factory=dict)

    def path(self, role: str) -> Path:
        """The file of `role` inside the cache entry."""
        return self.root / self.files[role]

    def roles(self) -> list[str]:
        return list(self.files)

    def digests_of_graphs(self) -> dict[str, str]:
        """sha256 of each graph file an onnx artifact consists of (role -> digest)."""
        return {g["role"]: self.digests[g["role"]] for g in self.card.get("graphs", [])}

    def record(self) -> dict[str, Any]:
        """The JSON record (`artifact.json` in the entry, `<stem>.card.json` beside published files)."""
        return {
            "stage": self.stage,
            "key": self.key,
            "files": {role: {"file": name, "sha256": self.digests[role]} for role, name in self.files.items()},
            "card": dict(self.card),
        }

    def to_json(self) -> dict[str, Any]:
        """Record plus where it lives and whether it came from the cache."""
        return {**self.record(), "root": str(self.root), "cached": self.cached, "published": dict(self.published)}

    @classmethod
    def load(cls, root: Path, cached: bool = True) -> Artifact:
        """Read the record in `root` (raises OSError/ValueError/KeyError when it is missing or damaged)."""
        data = json.loads((root / RECORD).read_text(encoding="utf-8"))
        files = {role: entry["file"] for role, entry in data["files"].items()}
        digests = {role: entry["sha256"] for role, entry in data["files"].items()}
        return cls(data["stage"], data["key"], root, files, digests, data["card"], cached=cached)

    def corrupt_files(self) -> list[str]:
        """Roles whose file is missing or no longer has its recorded sha256."""
        bad = []
        for role, name in self.files.items():
            path = self.root / name
            if not path.is_file() or file_digest(path) != self.digests[role]:
                bad.append(role)
        return bad

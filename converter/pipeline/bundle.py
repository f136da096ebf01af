"""Bundles: what travels from the build server to the device box, one archive per recipe x om variant.

    <stem>/manifest.json     format, recipe, variant, every file with its sha256, which files are what
    <stem>/onnx/...          the ONNX graph(s) and their card
    <stem>/om/...            the OM(s) and their card, when atc ran on the build server
    <stem>/atc/...           the cfg files, the build script (checks the ONNX digest before atc), PaddleX layout
    <stem>/reference/...     the saved reference: inputs, reference outputs, tolerances, task checks

On the device box `npuconv verify BUNDLE --target om` replays the saved reference against the OM with
numpy, ONNX Runtime and the NPU runtime only.

manifest.json: {"format", "recipe", "variant", "unit", "npuconv", "files": {relative path: sha256} (every
file but the manifest), "onnx": {graph role: path}, "om": {graph role: path} (absent without an OM),
"reference": "reference", "script": "atc/build_om.sh" | null, "paddlex": "paddlex" | null, and the OM's
soc_version, precision and CANN version}. The archive is reproducible: the same files give the same bytes
(sorted members, no timestamps or owners), so a rebuild that changed nothing leaves it as it was."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from converter.artifacts import atomic_path, file_digest
from converter.errors import InputError

FORMAT = "npuconv-bundle/1"
MANIFEST = "manifest.json"


def is_bundle(path: Path) -> bool:
    """A bundle archive (by name; its manifest is checked when opened)."""
    return path.name.endswith((".tar.gz", ".tgz")) and path.is_file()


@dataclass(frozen=True)
class Bundle:
    """An unpacked bundle: its root directory and manifest."""

    root: Path
    manifest: Mapping[str, Any]

    def path(self, relative: str) -> Path:
        return self.root / relative

    @property
    def reference(self) -> Path:
        return self.root / self.manifest["reference"]

    def onnx_graphs(self) -> dict[str, Path]:
        return {role: self.root / name for role, name in self.manifest["onnx"].items()}

    def om(self) -> Path | None:
        oms = self.manifest.get("om") or {}
        first = oms.get("model") or next(iter(oms.values()), None)
        return self.root / first if first else None


def open_bundle(path: Path, workdir: Path | None = None) -> Bundle:
    """Unpack a bundle (into `workdir`, else a fresh temporary directory) and check every file against
    the manifest's sha256; InputError for anything that is not an intact bundle."""
    target = Path(workdir or tempfile.mkdtemp(prefix="npuconv-bundle-"))
    try:
        with tarfile.open(path, "r:gz") as tar:
            tar.extractall(target, filter="data")  # no absolute paths, links out of the tree or devices
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(f"cannot unpack {path}: {exc}", hint="copy the bundle again (it may be truncated)") from None
    manifests = list(target.glob(f"*/{MANIFEST}"))
    if len(manifests) != 1:
        raise InputError(f"{path} is not an npuconv bundle (no {MANIFEST})", hint="make one with `npuconv build --bundle DIR`")
    root = manifests[0].parent
    manifest = json.loads(manifests[0].read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise InputError(f"{path} is {manifest.get('format')!r}, not {FORMAT}", hint="rebuild it with this npuconv")
    damaged = [name for name, digest in manifest["files"].items()
               if not (root / name).is_file() or file_digest(root / name) != digest]
    if damaged:
        raise InputError(f"{path}: {len(damaged)} file(s) do not match the manifest's sha256 ({', '.join(damaged[:3])})",
                         hint="copy the bundle again")
    return Bundle(root, manifest)


@dataclass(frozen=True)
class WrittenBundle:
    """A bundle written by `write_bundle`: where, its sha256 and size, the sha256 of every file in it, and
    whether the archive already held exactly these bytes (then it was left untouched)."""

    path: Path
    sha256: str
    size: int
    files: Mapping[str, str] = field(default_factory=dict)
    unchanged: bool = False


def _member(name: str, size: int, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def archive_bytes(root: Path, stem: str, manifest: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The .tar.gz of the directory `root` as `<stem>/...` with `manifest` (completed with every file's
    sha256) as `<stem>/manifest.json`; returns the bytes and the file digests."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    digests = {p.relative_to(root).as_posix(): file_digest(p) for p in files}
    text = (json.dumps({**manifest, "format": FORMAT, "files": digests}, indent=2, sort_keys=True) + "\n").encode()
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({p.parent.relative_to(root).as_posix() for p in files} - {"."})
        for directory in ["", *dirs]:
            info = _member(f"{stem}/{directory}".rstrip("/"), 0, 0o755)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
        tar.addfile(_member(f"{stem}/{MANIFEST}", len(text), 0o644), io.BytesIO(text))
        for path in files:
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            with path.open("rb") as f:
                tar.addfile(_member(f"{stem}/{path.relative_to(root).as_posix()}", path.stat().st_size, mode), f)
    return buffer.getvalue(), digests


def write_bundle(dest: Path, root: Path, stem: str, manifest: Mapping[str, Any]) -> WrittenBundle:
    """Pack `root` into the bundle `dest` (atomically: `dest` is the old archive or the whole new one)."""
    import hashlib

    data, digests = archive_bytes(root, stem, manifest)
    digest = hashlib.sha256(data).hexdigest()
    unchanged = dest.is_file() and file_digest(dest) == digest
    if not unchanged:
        with atomic_path(dest) as tmp:
            tmp.write_bytes(data)
    return WrittenBundle(dest, digest, len(data), digests, unchanged)

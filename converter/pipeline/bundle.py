"""Bundles: what travels from the build server to the device box, one archive per recipe x om variant.

    <stem>/manifest.json     format, recipe, variant, every file with its sha256, which files are what
    <stem>/onnx/...          the ONNX graph(s) and their card
    <stem>/om/...            the OM(s) and their card, when atc ran on the build server
    <stem>/atc/...           the cfg files, the build script (checks the ONNX digest before atc), PaddleX layout
    <stem>/reference/...     the saved reference: inputs, reference outputs, tolerances, task checks

On the device box `npuconv verify BUNDLE --target om` replays the saved reference against the OM with
numpy, ONNX Runtime and the NPU runtime only."""

from __future__ import annotations

import json
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converter.artifacts import file_digest
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

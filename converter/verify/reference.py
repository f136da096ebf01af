"""A saved reference: the verification inputs and the reference outputs computed on the build server, with
the tolerances and task checks that judge a target against them. `verify --save DIR` writes one, a
bundle carries one, and `verify --reference DIR` (or a bundle) replays it with numpy, ONNX Runtime and
the NPU runtime only: the reference model is never run again.

    DIR/reference.json            format, recipe name, the ONNX digests, output names, samples, verify section
    DIR/inputs/NNNN.npz           what the reference was fed
    DIR/target_inputs/NNNN.npz    what an OM with AIPP is fed instead (raw uint8 images), when any
    DIR/reference/NNNN.npz        the reference outputs
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from converter.artifacts import write_bytes_atomic, write_json_atomic
from converter.errors import InputError

FORMAT = "npuconv-reference/1"
META = "reference.json"


@dataclass(frozen=True)
class SavedSample:
    """One sample of a saved reference."""

    label: str
    feed: dict[str, np.ndarray]
    target_feed: dict[str, np.ndarray] | None
    outputs: dict[str, np.ndarray]


def _npz(arrays: Mapping[str, np.ndarray]) -> bytes:
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return buffer.getvalue()


def write_samples(root: Path, feeds: Sequence[Mapping[str, np.ndarray]], outputs: Sequence[Mapping[str, np.ndarray]],
                  target_feeds: Sequence[Mapping[str, np.ndarray] | None] = ()) -> dict[str, str]:
    """Write the sample files under `root`; returns role -> relative file name."""
    files: dict[str, str] = {}
    for i, (feed, out) in enumerate(zip(feeds, outputs)):
        for part, arrays in (("inputs", feed), ("reference", out)):
            name = f"{part}/{i:04d}.npz"
            write_bytes_atomic(root / name, _npz(arrays))
            files[name.removesuffix(".npz")] = name
    for i, target in enumerate(target_feeds):
        if target is not None:
            name = f"target_inputs/{i:04d}.npz"
            write_bytes_atomic(root / name, _npz(target))
            files[name.removesuffix(".npz")] = name
    return files


def verify_section_json(verify_config) -> tuple[dict[str, Any], dict[str, Path]]:
    """The recipe's verify section as a saved reference records it, and the files it names that must
    travel with it (a CTC dictionary), keyed by their name inside the reference."""
    data = verify_config.model_dump(mode="json", exclude={"data"})
    extra: dict[str, Path] = {}
    task = data.get("task")
    if task and task.get("kind") == "ctc":
        extra["task_dict.txt"] = Path(verify_config.task.dict)
        task["dict"] = "task_dict.txt"
    return data, extra


def save_reference(dest: Path, source: Path, meta: Mapping[str, Any], verify_config) -> Path:
    """Copy a reference artifact's sample files (`source`, the cache entry) to `dest` and write its
    reference.json: `meta` (from the reference stage's card) plus the recipe's verify section."""
    section, extra = verify_section_json(verify_config)
    for part in ("inputs", "target_inputs", "reference"):
        if (source / part).is_dir():
            shutil.copytree(source / part, dest / part, dirs_exist_ok=True)
    for name, path in extra.items():
        if not path.is_file():
            raise InputError(f"verify.task.dict not found: {path}", hint="point verify.task.dict at the model's dictionary")
        shutil.copyfile(path, dest / name)
    write_json_atomic(dest / META, {**meta, "format": FORMAT, "verify": section})
    return dest


@dataclass(frozen=True)
class ReferenceSet:
    """The samples and reference outputs one verify run compares a target with: the reference stage's
    artifact (computed on this machine) or a saved reference (`origin` "saved"). `facts` are what the
    reference stage recorded: labels, output names, the ONNX digests, early exit, host loop."""

    root: Path
    facts: Mapping[str, Any]
    origin: str

    def meta(self) -> dict[str, Any]:
        """What a saved reference's reference.json records besides the verify section."""
        return {k: v for k, v in self.facts.items() if k not in ("format", "verify", "seconds")}

    def samples(self) -> list[SavedSample]:
        """Every sample, in order."""
        out = []
        for i, label in enumerate(self.facts["samples"]):
            target = self.root / "target_inputs" / f"{i:04d}.npz"
            out.append(SavedSample(label, _load(self.root / "inputs" / f"{i:04d}.npz"),
                                   _load(target) if target.is_file() else None,
                                   _load(self.root / "reference" / f"{i:04d}.npz")))
        return out


def load_saved(root: Path):
    """(ReferenceSet, VerifyConfig) of a saved reference directory; InputError when it is not one."""
    from converter.recipe.verify import VerifyConfig

    path = root / META
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{root} is not a saved reference ({META} is missing)",
                         hint="write one with `npuconv verify RECIPE --save DIR`, or pass a bundle") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}", hint="re-create it with `npuconv verify RECIPE --save DIR`") from None
    if meta.get("format") != FORMAT:
        raise InputError(f"{path} is {meta.get('format')!r}, not {FORMAT}", hint="re-create it with this npuconv")
    config = VerifyConfig.model_validate(meta["verify"], context={"base_dir": root})
    return ReferenceSet(root, meta, "saved"), config


def _load(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}", hint="the saved reference is damaged; save it again") from None

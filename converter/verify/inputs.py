"""Verification inputs: seeded random data drawn from each input's declared range and dtype, `.npy` /
`.npz` files, folders of them, and folders of images run through the recipe's `preprocess:` section.
Samples can be saved (inputs, reference and target outputs as .npz) and replayed with `verify.data`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from converter.errors import InputError
from converter.recipe.model import InputSpec

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def random_feed(specs: Sequence[InputSpec], seed: int = 0) -> dict[str, np.ndarray]:
    """One feed with every input drawn uniformly from its `range` (integers: [low, high))."""
    rng = np.random.default_rng(seed)
    feed: dict[str, np.ndarray] = {}
    for spec in specs:
        low, high = spec.range
        shape = tuple(spec.shape)
        if spec.dtype == "bool":
            feed[spec.name] = rng.random(shape) < 0.5
        elif spec.dtype in ("float32", "float16"):
            feed[spec.name] = rng.uniform(low, high, shape).astype(spec.dtype)
        else:
            lo, hi = int(np.ceil(low)), max(int(np.ceil(low)) + 1, int(np.ceil(high)))
            feed[spec.name] = rng.integers(lo, hi, shape).astype(spec.dtype)
    return feed


@dataclass(frozen=True)
class Sample:
    """One verification input: `feed` goes to the reference; `target_feed` (when set) to the target
    instead, e.g. the raw uint8 image for an OM that preprocesses with AIPP."""

    label: str
    feed: dict[str, np.ndarray]
    target_feed: dict[str, np.ndarray] | None = field(default=None)


def load_samples(recipe, samples: int | None = None, raw_images: str | None = None) -> list[Sample]:
    """The samples `verify` runs: `samples` overrides `verify.samples`. `raw_images` ("RGB" or "BGR"):
    the target gets the resized uint8 NHWC image in that channel order (an OM with AIPP) while the
    reference gets the preprocessed tensor."""
    cfg = recipe.verify
    count = samples or cfg.samples
    data = cfg.data
    if data is None:
        return [Sample(f"seed {cfg.seed + i}", random_feed(recipe.inputs, cfg.seed + i)) for i in range(count or 1)]
    if not data.exists():
        raise InputError(f"verify.data not found: {data}", hint="point verify.data at a .npy, .npz or a folder")
    if data.is_dir():
        if (data / "inputs").is_dir():  # a folder written by --save
            data = data / "inputs"
        files = sorted(p for p in data.iterdir() if p.suffix.lower() in (".npy", ".npz", *IMAGE_SUFFIXES))
        if not files:
            raise InputError(f"{data} holds no .npy, .npz or image files", hint="verify.data must name a folder of samples")
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        if images:
            return _image_samples(recipe, images, count, raw_images)
        files = files[: count] if count else files
        return [Sample(p.name, _array_feed(recipe.inputs, p)) for p in files]
    return [Sample(data.name, _array_feed(recipe.inputs, data))]  # one file is one sample


def _array_feed(specs: Sequence[InputSpec], path: Path) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}", hint="write inputs with numpy.save / numpy.savez") from None
    if isinstance(loaded, np.ndarray):
        if len(specs) != 1:
            raise InputError(f"{path} holds one array but the recipe has {len(specs)} inputs",
                             hint=f"use a .npz with arrays named {', '.join(s.name for s in specs)}")
        arrays = {specs[0].name: loaded}
    else:
        arrays = {k: loaded[k] for k in loaded.files}
    feed = {}
    for spec in specs:
        if spec.name not in arrays:
            raise InputError(f"{path} has no array named {spec.name!r} (has {', '.join(arrays)})",
                             hint="name the .npz arrays after the recipe's inputs")
        array = arrays[spec.name]
        if tuple(array.shape) == tuple(spec.shape[1:]):
            array = array[None]
        if tuple(array.shape) != tuple(spec.shape):
            raise InputError(f"{path}: {spec.name} has shape {list(array.shape)}, the recipe says {spec.shape}",
                             hint="save arrays of the recipe's input shape")
        feed[spec.name] = array.astype(spec.dtype, copy=False)
    return feed


def _image_samples(recipe, images: list[Path], count: int | None, raw_images: str | None) -> list[Sample]:
    if len(recipe.inputs) != 1 or len(recipe.inputs[0].shape) != 4:
        raise InputError("image folders need a recipe with one NCHW input", hint="give .npz files instead")
    if recipe.preprocess is None:
        raise InputError("verify.data is a folder of images but the recipe has no `preprocess:` section",
                         hint="add preprocess: {resize, mean, std, scale, channel_order}")
    spec = recipe.inputs[0]
    batch = spec.shape[0]
    groups = [images[i:i + batch] for i in range(0, len(images) - batch + 1, batch)]
    if not groups:
        raise InputError(f"the input takes batches of {batch} images, the folder has {len(images)}", hint="add images")
    samples = []
    for group in groups[: count] if count else groups:
        raw = np.stack([_read_image(p, recipe.preprocess, spec) for p in group])
        feed = {spec.name: preprocess_images(raw, recipe.preprocess).astype(spec.dtype)}
        target_feed = None
        if raw_images:
            target_feed = {spec.name: np.ascontiguousarray(raw[..., ::-1] if raw_images == "BGR" else raw)}
        samples.append(Sample(",".join(p.name for p in group), feed, target_feed))
    return samples


def _read_image(path: Path, pre, spec: InputSpec) -> np.ndarray:
    """RGB uint8 HWC, resized to `preprocess.resize` (else the input's H, W)."""
    try:
        from PIL import Image
    except ImportError:
        raise InputError("reading images needs Pillow", hint="pip install pillow") from None
    height, width = pre.resize or (spec.shape[2], spec.shape[3])
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB").resize((width, height), Image.BILINEAR), dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read image {path}: {exc}", hint="remove it from the folder") from None


def preprocess_images(raw: np.ndarray, pre) -> np.ndarray:
    """NHWC uint8 RGB -> NCHW float32: channel order, * scale, - mean, / std (what AIPP does on the NPU)."""
    x = raw.astype(np.float32)
    if pre.channel_order == "BGR":
        x = x[..., ::-1]
    x = (x * pre.scale - np.asarray(pre.mean, np.float32)) / np.asarray(pre.std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def save_sample(directory: Path, index: int, feed: dict, reference: dict, actual: dict) -> None:
    """Write one sample as DIR/{inputs,reference,target}/NNNN.npz (atomically), replayable with
    `--set verify.data=DIR`."""
    from converter.artifacts import atomic_path

    for part, arrays in (("inputs", feed), ("reference", reference), ("target", actual)):
        dest = directory / part / f"{index:04d}.npz"
        with atomic_path(dest) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

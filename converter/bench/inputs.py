"""Benchmark inputs: verify's samples regrouped to the batch being measured, and the file that carries
them into the worker processes (made once, outside every timed region)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def rebatch(feeds: list[dict[str, np.ndarray]], batch: int) -> list[dict[str, np.ndarray]]:
    """Feeds of `batch` rows each, taken in order from the rows of `feeds` (stacked along axis 0) and
    wrapping around; as many feeds as it takes to use every row at least once."""
    if not feeds:
        raise ValueError("rebatch needs at least one feed")
    names = list(feeds[0])
    rows = {name: np.concatenate([f[name] for f in feeds], axis=0) for name in names}
    total = len(rows[names[0]])
    if any(len(r) != total for r in rows.values()):
        raise ValueError("every input of a feed must have the same batch size")
    if all(len(f[names[0]]) == batch for f in feeds):
        return [dict(f) for f in feeds]
    count = -(-total // batch)
    out = []
    for k in range(count):
        index = np.arange(k * batch, (k + 1) * batch) % total
        out.append({name: np.ascontiguousarray(rows[name][index]) for name in names})
    return out


def write_feeds(path: Path, feeds: list[dict[str, np.ndarray]]) -> Path:
    """Store feeds as one .npz (array `<index>/<input name>`)."""
    arrays = {f"{i}/{name}": array for i, feed in enumerate(feeds) for name, array in feed.items()}
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return Path(path)


def read_feeds(path: str | Path) -> list[dict[str, np.ndarray]]:
    """The feeds `write_feeds` stored, in order, inputs in their original order."""
    feeds: dict[int, dict[str, np.ndarray]] = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            index, _, name = key.partition("/")
            # A fresh array: numpy's own (aligned) allocation, not a view into the file's read buffer.
            feeds.setdefault(int(index), {})[name] = np.array(data[key], copy=True)
    return [feeds[i] for i in sorted(feeds)]

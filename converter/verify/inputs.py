"""Verification inputs: seeded random data drawn from each input's declared range and dtype."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from converter.recipe.model import InputSpec


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

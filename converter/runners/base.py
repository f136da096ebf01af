"""The runner interface every backend implements (after Polygraphy's runners)."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import numpy as np


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int | str | None, ...]
    dtype: str


class Runner(abc.ABC):
    """A loaded model. Use as a context manager; `infer` maps input names to arrays and returns the
    outputs by name, in the model's output order."""

    name: str = "runner"

    def __enter__(self) -> Runner:
        self.activate()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.deactivate()

    @abc.abstractmethod
    def activate(self) -> None:
        """Load the model (import the backend lazily here)."""

    def deactivate(self) -> None:
        """Release the model and any device resources."""

    @abc.abstractmethod
    def input_infos(self) -> list[TensorInfo]:
        """Inputs in the model's order."""

    @abc.abstractmethod
    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; outputs by name in the model's output order."""

    def bind(self, feed: dict[str, np.ndarray]) -> Callable[[], object]:
        """A call that runs the model once on `feed` with the least per-call work (the inputs checked and
        converted once, here); `bench` times exactly this call. The default calls `infer`."""
        return lambda: self.infer(feed)

    def graph_timings(self) -> dict[str, list[float]]:
        """For runners that drive several graphs per inference (a host loop over an encoder and a step
        graph): the seconds of every call of each graph, by role, since the last call of this method,
        which forgets them. Single-graph runners record nothing."""
        return {}

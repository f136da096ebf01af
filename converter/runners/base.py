"""The runner interface every backend implements (after Polygraphy's runners)."""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from converter.errors import InputError


@dataclass(frozen=True)
class TensorInfo:
    """A model input as its backend declares it; `shape` None: the backend cannot say."""

    name: str
    shape: tuple[int | str | None, ...] | None
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

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once on `feed` (checked first: see `check_feed`); outputs by name in the model's output order."""
        self.check_feed(feed)
        return self._infer(feed)

    def bind(self, feed: dict[str, np.ndarray]) -> Callable[[], object]:
        """A call that runs the model once on `feed` with the least per-call work (the feed checked and
        converted once, here); `bench` times exactly this call."""
        self.check_feed(feed)
        return self._bind(feed)

    def check_feed(self, feed: dict[str, np.ndarray]) -> None:
        """Refuse, as bad input, a feed the model cannot take: a missing or unknown input, another dtype,
        another rank, another size on a static dim. Every backend fails on these later, in its own words."""
        for info, value in self._match(self.input_infos(), feed):
            value = np.asarray(value)
            want = dtype_of(info.dtype)
            if want is not None and value.dtype != want:
                raise InputError(f"input {info.name!r}: {value.dtype} given, the {self.name} model takes {want}",
                                 hint="set the input's dtype in the recipe (inputs[].dtype) to the model's")
            if info.shape is None:
                continue
            static = [d if isinstance(d, int) and d > 0 else None for d in info.shape]
            if len(static) != value.ndim or any(d not in (None, v) for d, v in zip(static, value.shape)):
                declared = [d if d is not None else "?" for d in static]
                raise InputError(f"input {info.name!r}: shape {list(value.shape)} given, the {self.name} model takes "
                                 f"{declared}", hint="set the input's shape in the recipe (inputs[].shape) to one the "
                                 "model accepts (`npuconv lint` shows the model's inputs)")

    def _match(self, infos: list[TensorInfo], feed: dict[str, np.ndarray]) -> list[tuple[TensorInfo, np.ndarray]]:
        """Each model input with the array fed to it (by name)."""
        names = [i.name for i in infos]
        missing = [n for n in names if n not in feed]
        extra = [n for n in feed if n not in names]
        if missing or extra:
            what = f"lacks {missing}" if missing else f"has inputs the model does not take: {extra}"
            raise InputError(f"the feed {what} (the {self.name} model takes {names})",
                             hint="name the recipe's inputs as the model does (`npuconv lint` shows them)")
        return [(i, feed[i.name]) for i in infos]

    @abc.abstractmethod
    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once on a checked feed."""

    def _bind(self, feed: dict[str, np.ndarray]) -> Callable[[], object]:
        return lambda: self._infer(feed)

    def graph_timings(self) -> dict[str, list[float]]:
        """For runners that drive several graphs per inference (a host loop over an encoder and a step
        graph): the seconds of every call of each graph, by role, since the last call of this method,
        which forgets them. Single-graph runners record nothing."""
        return {}


_DTYPE_ALIASES = {"float": "float32", "double": "float64", "half": "float16", "fp32": "float32", "fp16": "float16",
                  "bool_": "bool"}


def dtype_of(text: str) -> np.dtype | None:
    """The numpy dtype a backend's spelling names (`tensor(float)`, `DataType.FLOAT32`, `FLOAT32`,
    `float32`); None when it names none (the check is then skipped)."""
    name = text.strip().lower().removeprefix("tensor(").removesuffix(")").rsplit(".", 1)[-1]
    try:
        return np.dtype(_DTYPE_ALIASES.get(name, name))
    except TypeError:
        return None

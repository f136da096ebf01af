"""A deliberately slow fake runner for the gate tests: each run sleeps `ms` milliseconds inside a real
worker process. With `steps`, it plays a multi-graph model: one `encoder` call and `steps` `step` calls
per run, each recorded for `graph_timings()` as a host loop runner would."""

from __future__ import annotations

import time

import numpy as np

from converter.runners.base import Runner, TensorInfo


class SleepRunner(Runner):
    def __init__(self, ms: float, steps: int = 0, ballast_mb: int = 0) -> None:
        self.ms = ms
        self.steps = steps
        self.ballast_mb = ballast_mb
        self.calls: dict[str, list[float]] = {}
        self.name = "sleep"

    def activate(self) -> None:
        # Touched memory, so that peak RSS grows by about this much.
        self.ballast = np.ones(self.ballast_mb * 1024 * 1024 // 8) if self.ballast_mb else None

    def input_infos(self) -> list[TensorInfo]:
        return [TensorInfo("x", (-1, 1), "float32")]

    def _graph(self, role: str, seconds: float) -> None:
        start = time.perf_counter()
        time.sleep(seconds)
        self.calls.setdefault(role, []).append(time.perf_counter() - start)

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self.steps:
            time.sleep(self.ms / 1e3)
        else:
            self._graph("encoder", self.ms / 2e3)
            for _ in range(self.steps):
                self._graph("step", self.ms / 2e3 / self.steps)
        return {"y": feed["x"]}

    def graph_timings(self) -> dict[str, list[float]]:
        calls, self.calls = self.calls, {}
        return calls

"""The measurement engine: each backend in its own worker process (worker.py), loaded one at a time (cold
start), warmed up, then timed in interleaved rounds: every round gives each backend one block of runs,
in forward order on even rounds and reverse order on odd ones, so that drift of a shared machine hits
all backends alike. Only one backend runs at a time: the parent waits while a block runs, and before the
next backend's block until the last one's threads have stopped spinning. Every block starts with a few
untimed runs (SETTLE_S): the pause before it let caches and clocks go cold, which a service that runs
continuously never sees (measured: without them the harness read about 2 % slower than a bare loop)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from converter import process
from converter.bench.backends import BackendSpec
from converter.bench.inputs import write_feeds
from converter.errors import InputError, RecipeError, StageFailed, ToolNotFound

ROUNDS = 10
SETTLE_S = 0.005  # untimed runs at the start of every block: at least one, at least this long
_ERRORS = {cls.__name__: cls for cls in (InputError, RecipeError, StageFailed, ToolNotFound)}


@dataclass(frozen=True)
class Plan:
    """How long to measure each backend: warm-up by runs or seconds, then `iterations` timed runs or
    `duration_s` seconds, spread over `rounds` interleaved rounds."""

    warmup: int | None = 10
    warmup_s: float | None = None
    iterations: int | None = 100
    duration_s: float | None = None
    rounds: int = ROUNDS

    def blocks(self) -> list[tuple[int | None, float | None]]:
        """(runs, seconds) of each round's block; rounds never hold less than one run."""
        if self.iterations is None:
            return [(None, self.duration_s / self.rounds)] * self.rounds
        rounds = max(1, min(self.rounds, self.iterations))
        base, extra = divmod(self.iterations, rounds)
        return [(base + (r < extra), None) for r in range(rounds)]


@dataclass(frozen=True)
class Measurement:
    """One backend's raw results: per-run latencies (ms, in run order) and the rest of what its worker saw."""

    spec: BackendSpec
    times_ms: tuple[float, ...] = field(repr=False)
    round_medians_ms: tuple[float, ...]
    warmup_runs: int
    warmup_s: float
    import_ms: float
    create_ms: float
    first_run_ms: float
    peak_rss_mb: float
    info: dict
    graphs: dict[str, tuple[float, ...]] = field(default_factory=dict, repr=False)  # role -> ms per call


class WorkerProcess:
    """The parent's handle on one worker: send a command, wait for its answer (errors re-raised here)."""

    def __init__(self, spec: BackendSpec, log_dir: Path) -> None:
        self.spec = spec
        self.log_path = log_dir / f"worker{id(self)}.log"
        to_child_r, to_child_w = os.pipe()
        to_parent_r, to_parent_w = os.pipe()
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        with open(self.log_path, "wb") as log:
            # through converter.process: npuconv's signal handler stops it at once, even mid-block (a
            # worker in its timed loop reads no pipe until the block ends)
            self.process = process.start(
                [sys.executable, "-m", "converter.bench.worker", str(to_child_r), str(to_parent_w)],
                pass_fds=(to_child_r, to_parent_w), stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        os.close(to_child_r)
        os.close(to_parent_w)
        self.outbox = Connection(to_child_w, readable=False)
        self.inbox = Connection(to_parent_r, writable=False)

    def call(self, *message) -> dict:
        try:
            self.outbox.send(message)
            kind, payload = self.inbox.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            process.wait(self.process)
            raise StageFailed(f"the {self.spec.label} worker died (exit {self.process.returncode})",
                              hint="the log's last lines follow; a crash inside the backend library ends it this way",
                              log_tail=self.log_tail()) from None
        if kind == "error":
            cls = _ERRORS.get(payload["type"])
            if cls is not None:
                raise cls(f"{self.spec.label}: {payload['message']}", hint=payload["hint"])
            raise StageFailed(f"{self.spec.label}: {payload['type']}: {payload['message']}",
                              hint="a bug or an unusable model; the worker's traceback follows",
                              log_tail=payload["traceback"])
        return payload

    def cpu_ns(self) -> int | None:
        """CPU time all threads of the worker have used (Linux schedstat), None where unknown."""
        total = 0
        try:
            for task in Path(f"/proc/{self.process.pid}/task").iterdir():
                total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return total

    def wait_idle(self, window_s: float = 0.02, busy_ns: int = 1_000_000, limit_s: float = 2.0) -> None:
        """Wait until the worker's threads stop using CPU (at most `limit_s`): a runtime's thread pool
        may spin on after its last run (Intel OpenMP, as Paddle ships it, for 200 ms by default) and
        would steal cores from the next backend's block."""
        before = self.cpu_ns()
        deadline = time.monotonic() + limit_s
        while before is not None and time.monotonic() < deadline:
            time.sleep(window_s)
            after = self.cpu_ns()
            if after is None or after - before < busy_ns:
                return
            before = after

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def close(self) -> None:
        for conn in (self.outbox, self.inbox):
            conn.close()
        try:
            process.wait(self.process, timeout=10)
        except subprocess.TimeoutExpired:
            process.stop(self.process, grace=0)


Progress = Callable[[str, int, int], None]


def measure(specs: list[BackendSpec], feeds: list[list[dict[str, np.ndarray]]], plan: Plan,
            on_progress: Progress | None = None) -> list[Measurement]:
    """Measure every backend of `specs` (`feeds[i]`: the inputs of specs[i], cycled) under `plan`.
    `on_progress(label, done, total)` is called between blocks, never while one is being timed."""
    report = on_progress or (lambda _label, _done, _total: None)
    blocks = plan.blocks()
    total = len(specs) * (len(blocks) + 2)
    done = 0
    with tempfile.TemporaryDirectory(prefix="npuconv-bench-") as tmp:
        workers: list[WorkerProcess] = []
        try:
            loaded, warm = [], []
            for i, spec in enumerate(specs):
                worker = WorkerProcess(spec, Path(tmp))
                workers.append(worker)
                loaded.append(worker.call("load", spec, str(write_feeds(Path(tmp) / f"feeds{i}.npz", feeds[i]))))
                if len(specs) > 1:  # the next cold start must not share the cores with this one's spinning threads
                    worker.wait_idle()
                done += 1
                report(spec.label, done, total)
            for worker in workers:  # warm-up: the first runs after loading are not steady state
                runs_ns = worker.call("run", plan.warmup, plan.warmup_s)["times_ns"] if (plan.warmup or plan.warmup_s) else []
                if len(specs) > 1:
                    worker.wait_idle()
                warm.append((len(runs_ns), sum(runs_ns) / 1e9))
                done += 1
                report(worker.spec.label, done, total)
            times: list[list[float]] = [[] for _ in specs]
            medians: list[list[float]] = [[] for _ in specs]
            graphs: list[dict[str, list[float]]] = [{} for _ in specs]
            for r, (runs, seconds) in enumerate(blocks):
                order = range(len(specs)) if r % 2 == 0 else reversed(range(len(specs)))
                for i in order:
                    answer = workers[i].call("run", runs, seconds, SETTLE_S)
                    if len(specs) > 1:
                        workers[i].wait_idle()
                    block = [t / 1e6 for t in answer["times_ns"]]
                    times[i] += block
                    medians[i].append(float(np.median(block)))
                    for role, secs in answer["graphs"].items():
                        graphs[i].setdefault(role, []).extend(s * 1e3 for s in secs)
                    done += 1
                    report(specs[i].label, done, total)
            finished = [worker.call("finish") for worker in workers]
        finally:
            for worker in workers:
                worker.close()
    return [
        Measurement(spec, tuple(times[i]), tuple(medians[i]), warm[i][0], warm[i][1], loaded[i]["import_ms"],
                    loaded[i]["create_ms"], loaded[i]["first_run_ms"], finished[i]["peak_rss_mb"], loaded[i]["info"],
                    {role: tuple(v) for role, v in graphs[i].items()})
        for i, spec in enumerate(specs)
    ]


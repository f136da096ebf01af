"""One backend in its own process: `python -m converter.bench.worker READ_FD WRITE_FD`.

The parent (engine.py) sends commands over a pipe (multiprocessing's Connection: pickled tuples):

    ("load", spec, feeds_npz) -> ("loaded", {import_ms, create_ms, first_run_ms, info})
    ("run", n, seconds, settle_s) -> ("times", {times_ns, graphs})
                          untimed runs for `settle_s` (at least one when > 0), then n timed runs, or
                          timed runs until `seconds` have passed
    ("finish",)           -> ("finished", {peak_rss_mb})      and the process exits

Any failure answers ("error", {type, message, hint, traceback}). The timed loop does nothing but read
the clock around the bound call: no I/O, no progress, the garbage collector off."""

from __future__ import annotations

import gc
import sys
import time
import traceback


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB. Linux: VmHWM, the high-water mark of this process's
    own memory since exec. Its ru_maxrss cannot be used there: the kernel carries the parent's RSS at
    fork into the child's ru_maxrss across exec, so every worker would report at least the parent's size.
    Elsewhere ru_maxrss (KiB; bytes on macOS)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def timed_runs(calls: list, n: int | None, seconds: float | None) -> list[int]:
    """Run the bound calls in turn (cycling) `n` times, or until `seconds` have passed; nanoseconds per run."""
    clock = time.perf_counter_ns
    times: list[int] = []
    append = times.append
    k = len(calls)
    enabled = gc.isenabled()
    gc.disable()
    try:
        if n is not None:
            for i in range(n):
                call = calls[i % k]
                start = clock()
                call()
                append(clock() - start)
        else:
            end = clock() + int(seconds * 1e9)
            i = 0
            while True:
                call = calls[i % k]
                start = clock()
                call()
                stop = clock()
                append(stop - start)
                i += 1
                if stop >= end:
                    break
    finally:
        if enabled:
            gc.enable()
    return times


class Worker:
    def __init__(self) -> None:
        self.runner = None
        self.calls: list = []

    def load(self, spec, feeds_npz: str) -> dict:
        from converter.bench.backends import make_runner, preload
        from converter.bench.inputs import read_feeds

        # Read from a file rather than pickled through the pipe: no second copy inflates the peak RSS.
        feeds = read_feeds(feeds_npz)
        start = time.perf_counter()
        preload(spec)
        imported = time.perf_counter()
        runner = make_runner(spec)
        runner.activate()
        self.runner = runner
        self.calls = [runner.bind(feed) for feed in feeds]
        created = time.perf_counter()
        self.calls[0]()
        first = time.perf_counter()
        runner.graph_timings()  # the first run is cold start, not steady state
        return {"import_ms": (imported - start) * 1e3, "create_ms": (created - imported) * 1e3,
                "first_run_ms": (first - created) * 1e3, "info": _info(spec)}

    def run(self, n: int | None, seconds: float | None, settle_s: float = 0.0) -> dict:
        if settle_s > 0:  # after a pause, caches and clocks are cold again: not what steady state means
            timed_runs(self.calls, None, settle_s)
            self.runner.graph_timings()
        times = timed_runs(self.calls, n, seconds)
        return {"times_ns": times, "graphs": self.runner.graph_timings()}

    def finish(self) -> dict:
        if self.runner is not None:
            self.runner.deactivate()
        return {"peak_rss_mb": peak_rss_mb()}


def _info(spec) -> dict:
    """Library versions and settings of this backend, as the report records them."""
    from converter.versions import tool_version

    kind = ("om" if spec.options.get("om") else "onnx") if spec.kind == "hostloop" else spec.kind
    dist = {"onnx": "onnxruntime", "paddle": "paddlepaddle", "om": "ais_bench"}.get(kind)
    info = {"threads": spec.threads, "timed_region": spec.timed_region}
    if dist:
        info["version"] = tool_version(dist)
    if kind == "onnx":
        info["provider"] = spec.provider
    return info


def main(argv: list[str]) -> int:
    from multiprocessing.connection import Connection

    inbox, outbox = Connection(int(argv[0]), writable=False), Connection(int(argv[1]), readable=False)
    worker = Worker()
    while True:
        try:
            message = inbox.recv()
        except EOFError:  # the parent went away
            return 1
        command, args = message[0], message[1:]
        try:
            if command == "load":
                outbox.send(("loaded", worker.load(*args)))
            elif command == "run":
                outbox.send(("times", worker.run(*args)))
            elif command == "finish":
                outbox.send(("finished", worker.finish()))
                return 0
            else:
                raise ValueError(f"unknown command {command!r}")
        except Exception as exc:  # everything goes back to the parent, which raises it there
            outbox.send(("error", {"type": type(exc).__name__, "message": getattr(exc, "message", str(exc)),
                                   "hint": getattr(exc, "hint", ""), "traceback": traceback.format_exc()}))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The host loop of a split decoder: run the encoder once, then the step graph until its condition is
false or the capacity is reached, and assemble the outputs the original model returns.

The loop comes from the artifact card's `host_loop` (JSON, written by the decoder_split pass); the graphs
run on any Runner (ONNX Runtime sessions by default, OM models on the NPU through `make_runner`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from converter.errors import InputError
from converter.runners.base import Runner, TensorInfo

FORMAT = "npuconv.hostloop/1"  # converter.passes.decoder_split.FORMAT (not imported: no onnx needed here)


def load_spec(source: Mapping | str | Path) -> dict:
    """The host-loop spec from a card (path or parsed JSON, with a `host_loop` key) or the spec itself."""
    if isinstance(source, (str, Path)):
        source = json.loads(Path(source).read_text())
    spec = dict(source.get("host_loop", source))
    if spec.get("format") != FORMAT:
        raise InputError(f"not a host-loop spec (format {spec.get('format')!r}, want {FORMAT!r})",
                         hint="pass the card the onnx stage wrote for a split decoder")
    return json.loads(json.dumps(spec))  # plain JSON values only


def _ort(role: str, model: Path | bytes) -> Runner:
    """ONNX Runtime CPU; the step on one thread (a step is ~1 M MAC: a thread pool's hand-offs cost more
    than they save, measured on SLANet-plus)."""
    from converter.runners.onnxruntime import OnnxRuntimeRunner

    return OnnxRuntimeRunner(model, threads=1 if role == "step" else None)


class HostLoopRunner(Runner):
    """`graphs`: {"encoder": path or bytes, "step": path or bytes}; `spec`: the card (path or JSON) or its
    `host_loop`; `make_runner(role, model) -> Runner` picks the backend per graph (default ONNX Runtime CPU).

    After each `infer`: `steps` (the steps run), `valid_rows` ({output: (axis, rows the steps wrote)}) and
    `timings` ({role: {"calls", "seconds"}}, cumulative until `reset_timings`)."""

    name = "hostloop"

    def __init__(self, graphs: Mapping[str, Path | bytes], spec: Mapping | str | Path,
                 make_runner: Callable[[str, Path | bytes], Runner] | None = None) -> None:
        self.spec = load_spec(spec)
        self.graphs = dict(graphs)
        self.make_runner = make_runner or _ort
        self._runners: dict[str, Runner] = {}
        self.steps = 0
        self.valid_rows: dict[str, tuple[int, int]] = {}
        self.reset_timings()

    def activate(self) -> None:
        for role in ("encoder", "step"):
            runner = self.make_runner(role, self.graphs[role])
            runner.activate()
            self._runners[role] = runner
        # a later pass (int32) may have narrowed step inputs: feed each in the dtype the step declares
        infos = self._runners["step"].input_infos()
        self._dtypes = {i.name: _np_dtype(i.dtype) for i in infos}
        self._shapes = {i.name: tuple(i.shape) for i in infos if all(isinstance(d, int) for d in i.shape)}
        index = self.spec["step"]["index"]
        self._index_dtype = self._dtypes.get(index["input"]) or np.int64 if index else None

    def deactivate(self) -> None:
        for runner in self._runners.values():
            runner.deactivate()
        self._runners = {}

    def input_infos(self) -> list[TensorInfo]:
        return self._runners["encoder"].input_infos()

    def output_names(self) -> list[str]:
        return list(self.spec["outputs"])

    def reset_timings(self) -> None:
        self.timings = {role: {"calls": 0, "seconds": 0.0} for role in ("encoder", "step", "host")}
        self._calls: dict[str, list[float]] = {"encoder": [], "step": []}

    def graph_timings(self) -> dict[str, list[float]]:
        """Seconds of every encoder and step call since the last call of this method (bench's per-graph
        latencies), then forgotten."""
        calls, self._calls = self._calls, {"encoder": [], "step": []}
        return calls

    def _as_declared(self, name: str, value: np.ndarray) -> np.ndarray:
        """In the dtype and shape the step declares (a later pass may narrow int64 to int32; a scalar state
        is fed as [1], which atc can spell)."""
        want = self._dtypes.get(name)
        value = value if want is None or value.dtype == want else value.astype(want)
        shape = self._shapes.get(name)
        return value if shape is None or value.shape == shape else value.reshape(shape)

    def _run(self, role: str, feed: dict, checked: bool = True) -> dict:
        started = time.perf_counter()
        runner = self._runners[role]
        out = runner.infer(feed) if checked else runner._infer(feed)
        took = time.perf_counter() - started
        t = self.timings[role]
        t["calls"] += 1
        t["seconds"] += took
        self._calls[role].append(took)
        return out

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        started = time.perf_counter()
        spec, step = self.spec, self.spec["step"]
        enc = self._run("encoder", {n: feed[n] for n in spec["inputs"]})
        capacity = spec["capacity"]
        if spec["trip_count"]:
            capacity = min(capacity, int(np.ravel(enc[spec["trip_count"]["encoder"]])[0]))
        start = spec["start"]
        running = bool(np.ravel(enc[start["encoder"]])[0]) if isinstance(start, dict) else bool(start)
        fixed = {f["input"]: self._as_declared(f["input"], enc[f["encoder"]]) for f in step["feeds"]}
        states = {s["input"]: self._as_declared(s["input"], enc[s["init"]]) for s in step["states"]}
        results = spec["results"]
        buffers = {r["output"]: np.array(enc[r["init"]]) for r in results if r["mode"] == "write"}
        pieces = {r["output"]: ([enc[r["init"]]] if r["init"] else []) for r in results if r["mode"] == "append"}
        last = {r["output"]: enc[r["init"]] if r["init"] else None for r in results if r["mode"] == "last"}
        k = 0
        while running and k < capacity:
            call = {**fixed, **states}
            if step["index"]:
                index = step["index"]["input"]
                call[index] = self._as_declared(index, np.full(step["index"]["shape"], k, self._index_dtype))
            out = self._run("step", call, checked=k == 0)  # later steps: the same arrays, fed back
            for j in range(spec["steps_per_call"]):
                for r in results:
                    if r["mode"] == "write":
                        _write(buffers[r["output"]], out[r["rows"][j]], r["axis"], k + r["offset"])
                    elif r["mode"] == "append":
                        pieces[r["output"]].append(out[r["rows"][j]])
                    elif r["mode"] == "last":
                        last[r["output"]] = out[r["values"][j]]
                k += 1
                if not bool(np.ravel(out[step["cond"][j]])[0]) or k >= capacity:
                    running = False
                    break
            states = {s["input"]: self._as_declared(s["input"], out[s["output"]]) for s in step["states"]}
        self.steps = k
        outputs, self.valid_rows = {}, {}
        for r in results:
            name = r["output"]
            if r["mode"] == "encoder":
                outputs[name] = enc[r["init"]]
            elif r["mode"] == "last":
                outputs[name] = last[name]
            else:
                full = buffers[name] if r["mode"] == "write" else _concat(pieces[name], r)
                rows = _count(r["count"], k, full.shape[r["axis"]])
                outputs[name] = np.take(full, range(rows), axis=r["axis"])
                written = k + r["offset"] if r["mode"] == "write" else rows
                self.valid_rows[name] = (r["axis"], min(rows, written))
        self.timings["host"]["calls"] += 1
        self.timings["host"]["seconds"] += time.perf_counter() - started
        return outputs


def _np_dtype(text: str):
    """numpy dtype of a runner's input type string ("tensor(int32)", "int32", "DT_INT32"...), or None."""
    text = str(text).lower()
    for name in ("bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "bfloat16",
                 "float16", "float64", "double", "float32", "float"):
        if name == "bfloat16" and name in text:
            return None
        if name in text:
            return np.dtype({"double": "float64", "float": "float32"}.get(name, name))
    return None


def _write(buffer: np.ndarray, row: np.ndarray, axis: int, position: int) -> None:
    index = [slice(None)] * buffer.ndim
    index[axis] = slice(position, position + 1)
    buffer[tuple(index)] = row


def _concat(pieces: list, r: dict) -> np.ndarray:
    if not pieces:
        shape = list(r["row_shape"])
        shape[r["axis"]] = 0
        return np.zeros(shape, r["dtype"])
    return np.concatenate(pieces, axis=r["axis"])


def _count(count: dict | None, steps: int, size: int) -> int:
    """Rows kept by the original's slice `[0, scale * steps + offset)` of a `size`-row tensor."""
    if count is None:
        return size
    end = count["scale"] * steps + count["offset"]
    if end < 0:
        end += size
    return min(max(end, 0), size)

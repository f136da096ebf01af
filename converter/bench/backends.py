"""What `--backend` names, and how a worker process turns that into a Runner.

    onnx[:provider]   ONNX Runtime on the recipe's ONNX (default provider cpu)
    onnx-raw          ONNX Runtime CPU on the raw paddle2onnx export the onnx stage started from
    onnx-file:PATH    ONNX Runtime CPU on any other ONNX file
    paddle            Paddle Inference on the recipe's Paddle source
    om                the OM on an Ascend NPU (ais_bench, else pyACL)

A `BackendSpec` is plain data (it crosses into the worker process); the runner is built there."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from converter.errors import InputError
from converter.runners.base import Runner
from converter.runners.factory import PROVIDERS, parse_target

KINDS = ("onnx", "onnx-raw", "onnx-file", "paddle", "om")
USAGE = "onnx[:provider] | onnx-raw | onnx-file:PATH | paddle | om"
_SHORT = {full: short for short, full in reversed(PROVIDERS.items())}

TIMED_REGION = {
    "onnx": "InferenceSession.run on inputs already in host memory (outputs returned as numpy)",
    "paddle": "input copy_from_cpu + predictor.run + output copy_to_cpu",
    "om": "InferSession.infer: host->device input copies + execute + device->host output copies",
    "hostloop": "the host loop: the encoder once, then the step until the end condition (per graph: each call)",
    "factory": "the runner's bound call",
}


@dataclass(frozen=True)
class Backend:
    """A parsed `--backend`: kind onnx (with provider), onnx-raw, onnx-file (with path), paddle or om."""

    kind: str
    arg: str = ""

    @property
    def label(self) -> str:
        if self.kind == "onnx":
            return f"onnx:{_SHORT.get(self.arg, self.arg)}"
        return f"{self.kind}:{self.arg}" if self.arg else self.kind


def parse_backend(text: str) -> Backend:
    """Parse a `--backend` value, or raise InputError listing the accepted forms."""
    kind, _, arg = text.strip().partition(":")
    if kind not in KINDS:
        why = " (emulation predicts fp16 numerics; its speed means nothing)" if kind == "emulate" else ""
        raise InputError(f"unknown backend {text!r}{why}", hint=f"use {USAGE}")
    if kind == "onnx-file" and not arg:
        raise InputError("onnx-file needs a path: --backend onnx-file:PATH", hint="e.g. --backend onnx-file:build/raw.onnx")
    if kind in ("onnx-raw", "paddle", "om") and arg:
        raise InputError(f"backend {kind} takes no argument (got {text!r})", hint=f"use {USAGE}")
    if kind == "onnx-raw":
        return Backend(kind)
    target = parse_target(text)  # verify's targets: the same provider names
    return Backend(target.kind, target.arg)


@dataclass(frozen=True)
class BackendSpec:
    """Everything a worker needs to build one runner. `kind`: onnx (any ONNX file, `provider`), paddle
    (`model`, `params`), om (`model` = the OM file), or factory (`factory` = "module:callable" called with
    `options`: a Runner from outside the built-ins, e.g. a test's). A multi-graph model (encoder + step
    driven by a host loop) becomes one more kind here whose runner reports `graph_timings()`."""

    label: str
    kind: str
    model: str = ""
    params: str = ""
    provider: str = "CPUExecutionProvider"
    threads: int | None = None
    device_id: int = 0
    factory: str = ""
    options: dict = field(default_factory=dict)

    @property
    def timed_region(self) -> str:
        return TIMED_REGION[self.kind]


def onnx_spec(label: str, graphs: Mapping[str, str | Path], loop: Mapping | None, provider: str = "CPUExecutionProvider",
              threads: int | None = None) -> BackendSpec:
    """ONNX Runtime on a model's graph(s) (role -> file): one `model`, or a split decoder's encoder and step
    driven by the host loop `loop` (timed end to end and per graph)."""
    if loop is not None:
        return BackendSpec(label, "hostloop", provider=provider, threads=threads,
                           options={"graphs": {r: str(p) for r, p in graphs.items()}, "loop": dict(loop)})
    return BackendSpec(label, "onnx", str(graphs["model"]), provider=provider, threads=threads)


def om_spec(label: str, om_path: Path, card: Mapping) -> BackendSpec:
    """The OM on the NPU: one graph, or (its card says so) a split decoder's OMs driven by the host loop."""
    if list(card.get("graphs") or ["model"]) != ["model"]:
        return BackendSpec(label, "hostloop", str(om_path), options={
            "om": True, "graphs": {r: "" for r in card["graphs"]}, "stem": card["stem"], "loop": card["host_loop"],
            "graph_outputs": card.get("graph_outputs")})
    return BackendSpec(label, "om", str(om_path))


def spec_for(b: Backend, name: str, graphs: Mapping[str, str | Path], loop: Mapping | None, raw_onnx: str | None,
             om_path: Path | None, threads: int | None, paddle: tuple[Path, Path] | None) -> BackendSpec:
    """What one `--backend` runs for a model: its ONNX graph(s) (role -> file), the raw export, another ONNX
    file, the Paddle source or the OM."""
    from converter.runners.om_card import load_om_card

    if b.kind == "onnx":
        return onnx_spec(b.label, graphs, loop, provider=b.arg, threads=threads)
    if b.kind == "onnx-raw":
        if not raw_onnx or not Path(raw_onnx).is_file():
            raise InputError(f"{name}: the onnx stage's raw export is not available ({raw_onnx})",
                             hint="rebuild it with --force, or pass --backend onnx-file:PATH")
        return BackendSpec(b.label, "onnx", raw_onnx, threads=threads)
    if b.kind == "onnx-file":
        return BackendSpec(b.label, "onnx", b.arg, threads=threads)
    if b.kind == "paddle":
        return BackendSpec(b.label, "paddle", str(paddle[0]), str(paddle[1]), threads=threads)
    return om_spec(b.label, om_path, load_om_card(om_path))


def make_runner(spec: BackendSpec) -> Runner:
    """The (not yet activated) runner for `spec`; called inside the worker process."""
    if spec.kind == "onnx":
        from converter.runners.onnxruntime import OnnxRuntimeRunner

        return OnnxRuntimeRunner(Path(spec.model), provider=spec.provider, threads=spec.threads)
    if spec.kind == "paddle":
        from converter.runners.paddle import PaddleRunner

        return PaddleRunner(Path(spec.model), Path(spec.params), threads=spec.threads)
    if spec.kind == "om":
        from converter.runners.om import OmRunner

        return OmRunner(Path(spec.model), device_id=spec.device_id)
    if spec.kind == "hostloop":  # a split decoder: options {graphs: {role: file}, loop: spec, om: bool, graph_outputs}
        if spec.options.get("om"):
            from converter.runners.om import om_runner

            card = {"graphs": list(spec.options["graphs"]), "stem": spec.options["stem"],
                    "host_loop": spec.options["loop"], "graph_outputs": spec.options.get("graph_outputs")}
            return om_runner(Path(spec.model), card)
        from converter.runners.graphs import graph_runner

        return graph_runner({r: Path(p) for r, p in spec.options["graphs"].items()}, spec.options["loop"],
                            provider=spec.provider, threads=spec.threads)
    if spec.kind == "factory":
        module, _, name = spec.factory.partition(":")
        return getattr(importlib.import_module(module), name)(**spec.options)
    raise InputError(f"unknown backend kind {spec.kind!r}", hint=f"use {USAGE}")


def preload(spec: BackendSpec) -> None:
    """Import the backend's library, so that cold start counts session creation, not the import."""
    if spec.kind == "onnx" or (spec.kind == "hostloop" and not spec.options.get("om")):
        import onnxruntime  # noqa: F401
    elif spec.kind == "paddle":
        import os

        os.environ.setdefault("GLOG_minloglevel", "2")
        import paddle.inference  # noqa: F401

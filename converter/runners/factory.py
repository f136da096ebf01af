"""Target strings of `npuconv verify --target`: `om`, `paddle`, `onnx:<provider>`, `onnx-file:<path>`,
`emulate:<mode>`; each becomes a Runner."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from converter.errors import InputError, ToolNotFound
from converter.runners.base import Runner

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "cann": "CANNExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}
KINDS = ("om", "paddle", "onnx", "onnx-file", "emulate")
USAGE = "om | paddle | onnx:<provider> (cpu, cuda, tensorrt, openvino, cann) | onnx-file:<path> | emulate:fp16 | emulate:mixed_float16"


@dataclass(frozen=True)
class Target:
    """A parsed `--target`."""

    kind: str
    arg: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.arg}" if self.arg else self.kind

    @property
    def exposes_tensors(self) -> bool:
        """Whether the target can return the reference graph's intermediate tensors (layerwise)."""
        return self.kind in ("onnx", "onnx-file", "emulate")


def parse_target(text: str) -> Target:
    """Parse a `--target` value, or raise InputError listing the accepted forms."""
    kind, _, arg = text.strip().partition(":")
    if kind not in KINDS:
        raise InputError(f"unknown target {text!r}", hint=f"use {USAGE}")
    if kind in ("om", "paddle") and arg:
        raise InputError(f"target {kind} takes no argument (got {text!r})", hint=f"use {USAGE}")
    if kind == "onnx":
        arg = arg or "cpu"
        if arg.lower() in PROVIDERS:
            arg = PROVIDERS[arg.lower()]
        elif not arg.endswith("ExecutionProvider"):
            raise InputError(f"unknown ONNX Runtime provider {arg!r}", hint=f"use one of {', '.join(PROVIDERS)} or a full *ExecutionProvider name")
    if kind == "onnx-file" and not arg:
        raise InputError("onnx-file needs a path: --target onnx-file:PATH", hint="e.g. --target onnx-file:build/raw.onnx")
    if kind == "emulate":
        from converter.passes.emulate_fp16 import normalise_mode

        arg = normalise_mode(arg or "fp16")
    return Target(kind, arg)


@dataclass(frozen=True)
class TargetContext:
    """What a target runs, as the artifacts describe it: the ONNX graph(s) the reference was computed on
    (and the host loop of a split model), the Paddle source files, the OM and its card, the fp16 emulation
    config (from the om build's keep_dtype / mixlist)."""

    graphs: Mapping[str, Path] = field(default_factory=dict)
    loop: Mapping[str, Any] | None = None
    paddle: tuple[Path, Path] | None = None
    om: Path | None = None
    om_card: Mapping[str, Any] | None = None
    emulation: Any = None


def make_runner(target: Target, ctx: TargetContext) -> Runner:
    """The runner for `target` (call check_available first)."""
    if target.kind == "paddle":
        from converter.runners.paddle import PaddleRunner

        return PaddleRunner(*ctx.paddle)
    if target.kind == "onnx":
        from converter.runners.graphs import graph_runner

        return graph_runner(ctx.graphs, ctx.loop, provider=target.arg)
    if target.kind == "onnx-file":
        from converter.runners.onnxruntime import OnnxRuntimeRunner

        return OnnxRuntimeRunner(Path(target.arg))
    if target.kind == "emulate":
        from converter.runners.emulate import EmulatedRunner

        return EmulatedRunner(ctx.graphs["model"], ctx.emulation)
    from converter.runners.om import om_runner

    return om_runner(ctx.om, ctx.om_card)


def check_available(target: Target, ctx: TargetContext) -> None:
    """Fail before any work (no reference run) when the target cannot run here: no Ascend runtime or OM
    file, a missing ONNX Runtime provider or file, a Paddle target without a Paddle source, emulation of a
    model the host loop drives."""
    if target.kind == "om":
        from converter.runners.om import OmRunner, om_files

        if ctx.om is None:
            raise InputError("--target om needs an OM file", hint="build it with `npuconv om RECIPE` or pass --om FILE")
        for path in om_files(ctx.om, ctx.om_card).values():
            OmRunner(path).check()
    elif target.kind == "onnx":
        import onnxruntime as ort

        if target.arg not in ort.get_available_providers():
            raise ToolNotFound(f"ONNX Runtime provider {target.arg} is not available here "
                               f"(available: {', '.join(ort.get_available_providers())})",
                               hint="install the onnxruntime build that carries it (e.g. onnxruntime-gpu, onnxruntime-cann)")
    elif target.kind == "onnx-file" and not Path(target.arg).is_file():
        raise InputError(f"ONNX file not found: {target.arg}", hint="pass an existing file: --target onnx-file:PATH")
    elif target.kind == "paddle" and ctx.paddle is None:
        raise InputError("--target paddle needs a Paddle source (source.format: paddle, or an export: section)",
                         hint="this recipe reads ONNX; compare with --target onnx-file:PATH instead")
    elif target.kind in ("emulate", "onnx-file") and ctx.loop is not None:
        raise InputError(f"--target {target} runs one graph; this model is an encoder and a decoder step driven by "
                         "the host loop", hint="use --target onnx:cpu, paddle or om")

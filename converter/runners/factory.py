"""Target strings of `npuconv verify --target`: `om`, `paddle`, `onnx:<provider>`, `onnx-file:<path>`,
`emulate:<mode>`; each becomes a Runner."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


def make_runner(target: Target, recipe, onnx_path: Path, om_path: Path | None = None, om=None) -> Runner:
    """The runner for `target` (call check_available first). `onnx_path` is the reference ONNX (emulation
    rewrites it), `om` the selected OmConfig (its keep_dtype and mixlist drive emulation)."""
    if target.kind == "paddle":
        from converter.runners.paddle import PaddleRunner

        return PaddleRunner(recipe.source.model_file(), recipe.source.params_file())
    if target.kind == "onnx":
        from converter.runners.onnxruntime import OnnxRuntimeRunner

        return OnnxRuntimeRunner(onnx_path, provider=target.arg)
    if target.kind == "onnx-file":
        from converter.runners.onnxruntime import OnnxRuntimeRunner

        return OnnxRuntimeRunner(Path(target.arg))
    if target.kind == "emulate":
        from converter.passes.emulate_fp16 import config_for
        from converter.runners.emulate import EmulatedRunner

        return EmulatedRunner(onnx_path, config_for(om, target.arg))
    from converter.runners.om import OmRunner

    return OmRunner(om_path)


def check_available(target: Target, recipe, om_path: Path | None) -> None:
    """Fail before any work (no ONNX build, no reference run) when the target cannot run here: no Ascend
    runtime or OM file, a missing ONNX Runtime provider or file, a Paddle target without a Paddle source."""
    if target.kind == "om":
        from converter.runners.om import OmRunner

        if om_path is None:
            raise InputError("--target om needs an OM file", hint="build it with `npuconv om RECIPE` or pass --om FILE")
        OmRunner(om_path).check()
    elif target.kind == "onnx":
        import onnxruntime as ort

        if target.arg not in ort.get_available_providers():
            raise ToolNotFound(f"ONNX Runtime provider {target.arg} is not available here "
                               f"(available: {', '.join(ort.get_available_providers())})",
                               hint="install the onnxruntime build that carries it (e.g. onnxruntime-gpu, onnxruntime-cann)")
    elif target.kind == "onnx-file" and not Path(target.arg).is_file():
        raise InputError(f"ONNX file not found: {target.arg}", hint="pass an existing file: --target onnx-file:PATH")
    elif target.kind == "paddle" and recipe.source.format != "paddle":
        raise InputError("--target paddle needs a recipe whose source is a Paddle model",
                         hint=f"this recipe reads ONNX ({recipe.source.path}); compare with --target onnx-file:PATH instead")

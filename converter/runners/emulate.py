"""`emulate:<mode>` targets: ONNX Runtime CPU on the reference ONNX rewritten by the `emulate_fp16` pass
(converter.passes.emulate_fp16)."""

from __future__ import annotations

from pathlib import Path

from converter.passes.base import ModelSet
from converter.passes.emulate_fp16 import EmulateFp16Config
from converter.passes.registry import get
from converter.runners.onnxruntime import OnnxRuntimeRunner


class EmulatedRunner(OnnxRuntimeRunner):
    """ONNX Runtime CPU on the fp16-emulated rewrite of an ONNX file. `emulation` is the pass's node map."""

    def __init__(self, onnx_path: Path, config: EmulateFp16Config, threads: int | None = None) -> None:
        import onnx

        self.config = config
        result = get("emulate_fp16").run(ModelSet.single(onnx.load(str(onnx_path))), config)
        self.emulation = result.card["emulation"]
        super().__init__(result.models.model.SerializeToString(), threads=threads,
                         rewritten_by="the fp16 emulation pass (emulate_fp16)")
        self.name = f"emulate:{config.mode}"

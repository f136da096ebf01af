"""Paddle Inference on the source model, on the CPU as Paddle deploys there (IR passes and oneDNN on,
unless `onednn=False`). The onnx stage's reference worker and `verify --target paddle` both run this."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from converter.errors import InputError, ToolNotFound
from converter.runners.base import Runner, TensorInfo
from converter.versions import CONVERT_HINT


class PaddleRunner(Runner):
    """A Paddle static inference model (`inference.pdmodel`/`inference.json` + `.pdiparams`)."""

    def __init__(self, model_file: Path, params_file: Path, threads: int | None = None, onednn: bool = True) -> None:
        self.model_file = Path(model_file)
        self.params_file = Path(params_file)
        self.threads = threads or os.cpu_count() or 1
        self.onednn = onednn
        self.name = "paddle"
        self._predictor = None

    def activate(self) -> None:
        for path in (self.model_file, self.params_file):
            if not path.is_file():
                raise InputError(f"Paddle model file not found: {path}", hint="check source.model_dir in the recipe (or --model-dir)")
        os.environ.setdefault("GLOG_minloglevel", "2")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                logging.disable(logging.WARNING)
                import paddle.inference as pi
        except ImportError:
            raise ToolNotFound("Paddle Inference is not installed (import paddle failed)", hint=CONVERT_HINT) from None
        finally:
            logging.disable(logging.NOTSET)
        config = pi.Config(str(self.model_file), str(self.params_file))
        config.disable_gpu()
        config.disable_glog_info()
        if not self.onednn:
            config.disable_mkldnn()
        config.set_cpu_math_library_num_threads(self.threads)
        try:
            self._predictor = pi.create_predictor(config)
        except Exception as exc:  # Paddle raises its own error types for unloadable programs
            raise InputError(f"Paddle Inference cannot load {self.model_file}: {str(exc).strip().splitlines()[-1]}",
                             hint="the model must be a Paddle inference model saved by paddle.jit.save") from None

    def deactivate(self) -> None:
        self._predictor = None

    def input_infos(self) -> list[TensorInfo]:
        # An input handle's shape is the last one fed (or a placeholder): the model file declares the real one.
        from converter.runners.model_io import declared_inputs

        declared = {i["name"]: i for i in declared_inputs(self.model_file) or ()}
        infos = []
        for name in self._predictor.get_input_names():
            info = declared.get(name)
            shape = tuple(-1 if d is None else d for d in info["shape"]) if info else None
            dtype = info["dtype"] if info else str(self._predictor.get_input_handle(name).type())
            infos.append(TensorInfo(name, shape, dtype))
        return infos

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for name in self._predictor.get_input_names():
            self._predictor.get_input_handle(name).copy_from_cpu(np.ascontiguousarray(feed[name]))
        self._predictor.run()
        return {n: self._predictor.get_output_handle(n).copy_to_cpu() for n in self._predictor.get_output_names()}

    def _bind(self, feed: dict[str, np.ndarray]) -> Callable[[], object]:
        predictor = self._predictor
        names = predictor.get_input_names()
        inputs = [(predictor.get_input_handle(n), np.ascontiguousarray(feed[n])) for n in names]
        outputs = [predictor.get_output_handle(n) for n in predictor.get_output_names()]

        def run() -> list[np.ndarray]:
            for handle, array in inputs:
                handle.copy_from_cpu(array)
            predictor.run()
            return [handle.copy_to_cpu() for handle in outputs]

        return run

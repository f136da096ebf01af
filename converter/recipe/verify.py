"""The `verify:` section: where verification data comes from, tolerances per output, task checks."""

from __future__ import annotations

import warnings
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator

from converter.recipe.base import RecipePath, Section, resolve_recipe_path

TARGET_PATTERN = r"^(om|paddle|onnx(:[A-Za-z0-9_]+)?|onnx-file:.+|emulate:(fp16|mixed_float16))$"
Target = Annotated[str, Field(pattern=TARGET_PATTERN)]


class OutputTolerance(Section):
    """Limits for one output; an element passes when |target - reference| <= max_abs + rtol * |reference|.
    A limit left unset comes from the `default` entry, then from the built-in default of the precision
    mode (fp32 or fp16)."""

    max_abs: float | None = Field(
        None, gt=0, description="absolute part of the elementwise limit |target - reference| <= max_abs + rtol * |reference|")
    rtol: float | None = Field(None, ge=0, description="relative part of the elementwise limit (times |reference|)")
    cosine: float | None = Field(None, ge=-1, le=1, description="smallest allowed cosine similarity")


class ArgmaxTask(Section):
    """Top-1 agreement along an axis (classification, per-step CTC labels)."""

    kind: Literal["argmax"]
    axis: int = -1
    output: str | int = Field(0, description="output name or index")
    min_agreement: float = Field(1.0, ge=0, le=1, description="fraction of positions whose argmax must agree")


with warnings.catch_warnings():
    # The key users write is `dict` (as PaddleOCR names it); it shadows pydantic's deprecated .dict().
    warnings.filterwarnings("ignore", message='Field name "dict"')

    class CtcTask(Section):
        """Greedy CTC decoding of both sides (blank 0, repeats collapsed) compared as text."""

        kind: Literal["ctc"]
        dict: RecipePath = Field(description="character list, one per line (PaddleOCR ppocr_keys_v1.txt)")
        output: str | int = Field(0, description="output name or index of the [N, T, C] probabilities")
        blank: int = Field(0, ge=0, description="index of the CTC blank class")
        space: bool = Field(True, description="the class after the dictionary is a space (PaddleOCR use_space_char)")
        min_agreement: float = Field(1.0, ge=0, le=1, description="fraction of samples whose text must agree")


class SequenceTask(Section):
    """A decoder's token sequence: argmax over the last axis, read up to and including the reference's
    first `end_token`, compared token by token (and the target must end where the reference ends)."""

    kind: Literal["sequence"]
    output: str | int = Field(0, description="output name or index of the [N, T, V] token probabilities")
    end_token: int = Field(ge=0, description="the token that ends a sequence (eos)")
    min_agreement: float = Field(1.0, ge=0, le=1, description="fraction of the reference's tokens the target must match")


Task = Annotated[ArgmaxTask | CtcTask | SequenceTask, Field(discriminator="kind")]


class VerifyConfig(Section):
    """How `npuconv verify` compares a target with the reference (ONNX Runtime CPU on the stage's ONNX)."""

    data: RecipePath | None = Field(
        None,
        description="inputs: unset = seeded random data from inputs[].range; a .npy (single input), a .npz "
        "(arrays by input name), or a folder of .npy/.npz files or images (images go through `preprocess:`)",
    )
    samples: int | None = Field(None, ge=1, description="how many samples; default 1 for random data, all files for a folder")
    seed: int = Field(0, ge=0, description="seed of the random data (sample i uses seed + i)")
    tolerance: dict[str, OutputTolerance] = Field(
        default_factory=dict,
        description="fp32 targets (paddle, onnx, an OM built with precision origin): per output name, plus "
        "an optional `default` entry for the others",
    )
    tolerance_fp16: dict[str, OutputTolerance] = Field(
        default_factory=dict,
        description="fp16 targets (emulate:*, an OM built in fp16/mixed modes): per output name and `default`",
    )
    task: Task | None = Field(None, description="optional task check: {kind: argmax, axis: -1}, {kind: ctc, dict: FILE} or {kind: sequence, end_token: ID}")
    targets: list[Target] | None = Field(
        None,
        description="what `npuconv build` verifies, as `npuconv verify --target` takes them (om, paddle, onnx:cpu, "
        "onnx-file:PATH relative to the recipe, emulate:fp16, ...); default: paddle when the model comes from "
        "Paddle (source or export), and om when the recipe builds an OM",
    )
    layer_budget_mb: float = Field(
        128.0, gt=0, description="--layerwise: MB of intermediate tensors exposed per ONNX Runtime session (peak memory ~ a plain run + 4x this)"
    )
    layer_max_tensor_mb: float = Field(512.0, gt=0, description="--layerwise: intermediate tensors larger than this are skipped")

    @field_validator("tolerance", "tolerance_fp16")
    @classmethod
    def _names(cls, value: dict[str, OutputTolerance]) -> dict[str, OutputTolerance]:
        if any(not key for key in value):
            raise ValueError("tolerance keys must be output names or `default`")
        return value

    @field_validator("targets")
    @classmethod
    def _targets(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is None:
            return None
        resolved = []
        for target in value:
            if target.startswith("onnx-file:"):
                target = "onnx-file:" + str(resolve_recipe_path(target.partition(":")[2], info))
            if target in resolved:
                raise ValueError(f"target {target!r} is listed twice")
            resolved.append(target)
        return resolved

    def tolerances(self, precision: str) -> tuple[str, dict[str, OutputTolerance]]:
        """(recipe key, entries) that apply to targets of this precision ("fp32" or "fp16")."""
        return ("tolerance_fp16", self.tolerance_fp16) if precision == "fp16" else ("tolerance", self.tolerance)

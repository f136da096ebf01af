"""The recipe: one YAML file per model, the single source of truth for every stage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from converter.recipe.base import DTYPES, RecipePath, Section
from converter.recipe.bench import BenchConfig
from converter.recipe.export import ExportConfig
from converter.recipe.om import OmConfig
from converter.recipe.passes import SWITCHABLE
from converter.recipe.verify import VerifyConfig
from converter.versions import P2O_MAX_OPSET, P2O_MIN_OPSET

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
Dim = Annotated[int, Field(ge=1)]


class PaddleSource(Section):
    """A Paddle static inference model (`paddle.jit.save` output)."""

    format: Literal["paddle"]
    model_dir: RecipePath
    model_filename: str | None = Field(
        None, description="inference.pdmodel or inference.json (Paddle 3 PIR); found automatically when unset"
    )
    params_filename: str = "inference.pdiparams"

    def model_file(self) -> Path:
        """The program file: the configured one, else inference.json, else inference.pdmodel."""
        if self.model_filename:
            return self.model_dir / self.model_filename
        for candidate in ("inference.json", "inference.pdmodel"):
            if (self.model_dir / candidate).exists():
                return self.model_dir / candidate
        return self.model_dir / "inference.pdmodel"

    def params_file(self) -> Path:
        return self.model_dir / self.params_filename


class OnnxSource(Section):
    """An ONNX file from any exporter (tf2onnx, torch.onnx, an earlier paddle2onnx run)."""

    format: Literal["onnx"]
    path: RecipePath


Source = Annotated[PaddleSource | OnnxSource, Field(discriminator="format")]


class InputSpec(Section):
    name: str = Field(min_length=1)
    shape: list[Dim] = Field(min_length=1, description="the fixed shape the NPU will see")
    dtype: Literal[DTYPES] = "float32"  # type: ignore[valid-type]
    range: tuple[float, float] = Field((0.0, 1.0), description="[low, high) of generated verification data")

    @field_validator("range")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not value[0] < value[1]:
            raise ValueError(f"range must be [low, high] with low < high, got {list(value)}")
        return value


class DecoderConfig(Section):
    """How the decoder_split pass shapes the single-step graph."""

    steps_per_call: int = Field(1, ge=1, le=64, description="decoder steps unrolled into one static step graph (fewer NPU calls)")


class OnnxConfig(Section):
    opset: int = Field(
        11, ge=P2O_MIN_OPSET, le=P2O_MAX_OPSET,
        description=f"requested opset ({P2O_MIN_OPSET}..{P2O_MAX_OPSET}); paddle2onnx may raise it, the card says what was written",
    )
    parity: bool = Field(True, description="compare the result with the source model (Paddle Inference) after conversion")
    disable_passes: list[Literal[SWITCHABLE]] = Field(  # type: ignore[valid-type]
        default_factory=list, description=f"passes to switch off by name ({', '.join(SWITCHABLE)})")
    unroll_max: int = Field(64, ge=0, le=4096, description="unroll a Loop with a constant trip count of at most this many steps")
    max_opset: int | None = Field(None, ge=P2O_MIN_OPSET, le=P2O_MAX_OPSET,
                                  description="lower the written ONNX to at most this opset (e.g. 13 for CANN 5.x/6.x)")
    decoder: DecoderConfig = DecoderConfig()


class Preprocess(Section):
    """How an image becomes the model input (used by verify for image folders and by om for AIPP)."""

    resize: tuple[Dim, Dim] | None = Field(None, description="[height, width]")
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    scale: float = Field(1.0, gt=0, description="multiplied into the pixel before mean/std (1/255 for [0,1])")
    channel_order: Literal["BGR", "RGB"] = "BGR"

    @field_validator("std")
    @classmethod
    def _nonzero(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(v == 0 for v in value):
            raise ValueError("std values must be non-zero")
        return value


def source_or_export(has_source: bool, has_export: bool) -> str | None:
    """What is wrong with a recipe's model origin: it needs exactly one of `source:` and `export:`."""
    if has_source and has_export:
        return "a recipe reads a saved model (`source:`) or builds one from dygraph code (`export:`), not both"
    if not (has_source or has_export):
        return "required key is missing (or `export:` to build the model from dygraph code)"
    return None


class Recipe(Section):
    model_config = {**Section.model_config,
                    "json_schema_extra": {"oneOf": [{"required": ["source"]}, {"required": ["export"]}]}}

    name: str = Field(pattern=NAME_PATTERN, description="becomes file names")
    source: Source | None = Field(None, description="a saved model; exactly one of source and export")
    inputs: list[InputSpec] = Field(min_length=1)
    export: ExportConfig | None = Field(None, description="dygraph code + .pdparams saved as a static model (npuconv export)")
    onnx: OnnxConfig = OnnxConfig()
    preprocess: Preprocess | None = None
    om: OmConfig | list[OmConfig] | None = None
    verify: VerifyConfig = VerifyConfig()
    bench: BenchConfig = BenchConfig()
    output_dir: RecipePath | None = Field(None, description="final artifacts; default build/<name> beside the recipe")

    @field_validator("export")
    @classmethod
    def _export_fits_inputs(cls, value: ExportConfig | None, info: ValidationInfo) -> ExportConfig | None:
        inputs = info.data.get("inputs")
        return value.fitted_to(inputs) if value is not None and inputs is not None else value

    @model_validator(mode="after")
    def _one_origin(self) -> Recipe:
        problem = source_or_export(self.source is not None, self.export is not None)
        if problem:  # the loader replaces this with a message that names the line
            raise PydanticCustomError("source_or_export", problem)
        return self

    @model_validator(mode="after")
    def _unique_inputs(self) -> Recipe:
        names = [spec.name for spec in self.inputs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"input names must be unique, repeated: {dup}")
        return self

    def input(self, name: str) -> InputSpec:
        return next(spec for spec in self.inputs if spec.name == name)

    def input_shapes(self) -> dict[str, list[int]]:
        return {spec.name: list(spec.shape) for spec in self.inputs}


"""The `om:` section: how atc compiles the ONNX for an Ascend SoC.

Only value-level checks live here (allowed spellings, types); every rule that combines several options
(one dynamic option, precision modes, mixlist, SoC capabilities, opset range) is checked by
`converter.stages.atc.validate` so its error can name the rule."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, StringConstraints

from converter.errors import RecipeError
from converter.recipe.base import Section

PrecisionModeV2 = Literal[
    "fp16", "origin", "cube_fp16in_fp32out", "mixed_float16", "mixed_bfloat16", "cube_hif8", "mixed_hif8"
]
PrecisionMode = Literal[
    "force_fp16", "force_fp32", "cube_fp16in_fp32out", "allow_mix_precision", "allow_fp32_to_fp16",
    "must_keep_origin_dtype", "allow_mix_precision_fp16", "allow_mix_precision_bf16", "allow_fp32_to_bf16",
]
ImplMode = Literal["high_precision", "high_performance", "high_precision_for_all", "high_performance_for_all"]
MixList = Literal["black-list", "white-list", "gray-list"]
MixEdit = Literal["to-add", "to-remove"]
ExtraValue = Union[str, int, float, bool]
Token = Annotated[str, StringConstraints(pattern=r"^[^\s,;]+$")]  # one op name / type: no spaces, commas or ;


class DynamicConfig(Section):
    """Gear (profile) compilation: exactly one of batch, image_size or dims."""

    batch: list[int] | None = Field(None, description="--dynamic_batch_size gears, e.g. [1, 2, 4, 8]; axis 0 of every input")
    image_size: list[list[int]] | None = Field(
        None, description="--dynamic_image_size profiles [[h, w], ...]; axes 2 and 3 of every 4-D input (NCHW)"
    )
    dims: list[list[int]] | None = Field(
        None, description="--dynamic_dims profiles; one value per axis listed in `axes` (needs input_format: ND)"
    )
    axes: dict[str, list[int]] | None = Field(
        None, description="for dims: the dynamic axes of each input, e.g. {x: [0, 3]}, in profile order"
    )


class AippConfig(Section):
    """Static AIPP: atc inserts colour conversion and normalisation (from `preprocess:`) before the model."""

    input_format: Literal["RGB888_U8", "XRGB8888_U8", "YUV420SP_U8", "YUV400_U8"] = Field(
        "RGB888_U8", description="pixel format the application feeds to the OM"
    )
    source_order: Literal["RGB", "BGR"] = Field(
        "RGB", description="channel order of the fed image (RGB888_U8/XRGB8888_U8); swapped when preprocess wants the other"
    )
    input: str | None = Field(None, description="model input that receives the image (default: the first input)")


class OmConfig(Section):
    """One atc build. Keys map one-to-one onto atc options (the table in the README, section "The om: section")."""

    variant: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="name of this build when `om` is a list"
    )
    soc_version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Ascend + the chip name `npu-smi info` prints, e.g. Ascend310P3")
    allow_unknown_soc: bool = Field(
        False, description="let a soc_version npuconv's table does not list through (a chip newer than the table), with a warning"
    )
    precision_mode_v2: PrecisionModeV2 | None = Field(None, description="atc default when unset: fp16")
    precision_mode: PrecisionMode | None = Field(None, description="legacy; mutually exclusive with precision_mode_v2")
    input_format: Literal["NCHW", "ND", "NCDHW"] = "NCHW"
    keep_dtype: list[Token] = Field(default_factory=list, description="op names or OpType::X kept in their original dtype")
    modify_mixlist: dict[MixList, dict[MixEdit, list[Token]]] | None = Field(
        None, description="atc's JSON: {black-list: {to-add: [OpType]}, white-list: {...}, gray-list: {...}}"
    )
    op_select_implmode: ImplMode | None = None
    optypelist_for_implmode: list[Token] = Field(default_factory=list, description="op types op_select_implmode applies to")
    dynamic: DynamicConfig | None = None
    host_env_os: Literal["linux"] | None = Field(None, description="OS of the target box (cross-compiling)")
    host_env_cpu: Literal["aarch64", "x86_64"] | None = Field(None, description="CPU of the target box (cross-compiling)")
    aipp: AippConfig | None = None
    cann_version: str | None = Field(None, pattern=r"^\d+\.\d+", description="target CANN, e.g. '8.0' or '8.0.RC2'")
    paddlex_model_name: str | None = Field(None, description="PaddleX model name for --paddlex (default: the recipe name)")
    extra_args: dict[str, ExtraValue] = Field(
        default_factory=dict, description="other atc options as key: value (rendered --key=value, still validated)"
    )


def select_variant(om: OmConfig | list[OmConfig] | None, variant: str | None = None) -> OmConfig | None:
    """The OM build to use: the only one, or the one named `variant` (the first when none is named); None
    when the recipe has no `om`. Naming a variant the recipe does not have is a RecipeError."""
    builds = [] if om is None else [om] if isinstance(om, OmConfig) else list(om)
    if variant is None:
        return builds[0] if builds else None
    chosen = next((o for o in builds if o.variant == variant), None)
    if chosen is None:
        named = [o.variant for o in builds if o.variant]
        raise RecipeError(f"--variant {variant}: the recipe has no om variant of that name",
                          hint=f"variants: {', '.join(named)}" if named else "the recipe names no om variants; drop --variant")
    return chosen

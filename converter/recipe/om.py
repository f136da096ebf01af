"""The `om:` section: how atc compiles the ONNX for an Ascend SoC."""

from __future__ import annotations

from pydantic import Field

from converter.recipe.base import Section


class OmConfig(Section):
    variant: str | None = Field(None, description="name of this build when `om` is a list")
    soc_version: str = Field(description="Ascend + the chip name `npu-smi info` prints, e.g. Ascend310P3")


def select_variant(om: "OmConfig | list[OmConfig] | None", variant: str | None = None) -> OmConfig | None:
    """The OM build to use: the only one, or the one named `variant` (first when unnamed)."""
    if om is None or isinstance(om, OmConfig):
        return om
    if variant is None:
        return om[0]
    return next((o for o in om if o.variant == variant), None)

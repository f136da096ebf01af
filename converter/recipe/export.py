"""The `export:` section: build a Paddle dygraph Layer with the user's code, load a `.pdparams` state dict
into it and save it as a static inference model (`npuconv export`). A recipe has either `source:` or
`export:`; `inputs:` still gives the fixed shapes the NPU sees."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from converter.recipe.base import DTYPES, RecipePath, Section

BUILDER_PATTERN = r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$"
DYNAMIC = -1


class ExportInput(Section):
    """One argument of the Layer's `forward`, as `paddle.static.InputSpec` takes it."""

    name: str = Field(min_length=1)
    shape: list[int | None] = Field(min_length=1, description="dims >= 1, or -1 / null for a dynamic dim")
    dtype: Literal[DTYPES] = "float32"  # type: ignore[valid-type]

    @field_validator("shape")
    @classmethod
    def _dims(cls, value: list[int | None]) -> list[int]:
        bad = [d for d in value if d is not None and d != DYNAMIC and d < 1]
        if bad:
            raise ValueError(f"a dim is >= 1, or -1 / null for a dynamic dim; got {bad[0]}")
        return [DYNAMIC if d is None else d for d in value]


class ExportConfig(Section):
    """Where the dygraph model comes from and how `paddle.jit.to_static` sees its inputs."""

    builder: str = Field(description="module:function or module:Class that returns a paddle.nn.Layer",
                         json_schema_extra={"pattern": BUILDER_PATTERN})
    kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments the builder is called with")
    weights: RecipePath = Field(description=".pdparams file (paddle.save(layer.state_dict())), relative to the recipe")
    input_spec: list[ExportInput] | None = Field(
        None, description="forward() arguments in order (names as in `inputs`); default: `inputs` with their fixed shapes")
    search_path: list[RecipePath] = Field(
        default_factory=lambda: [Path(".")], validate_default=True, min_length=1,
        description="folders the builder's module is imported from, before the installed packages; relative to "
                    "the recipe (default: the recipe's folder). The first one is the builder's working directory")

    @field_validator("builder")
    @classmethod
    def _builder(cls, value: str) -> str:
        if not re.match(BUILDER_PATTERN, value):
            raise ValueError("expected module:function or module:Class (dotted names, e.g. heads.table:build_head)")
        return value

    @property
    def module(self) -> str:
        return self.builder.partition(":")[0]

    @property
    def attribute(self) -> str:
        return self.builder.partition(":")[2]

    def key_json(self) -> dict[str, Any]:
        """What goes into the export's content key; the weights and the builder's sources enter as digests
        (the stage adds them), so moving the recipe's folder keeps the key."""
        specs = [spec.model_dump(mode="json") for spec in self.input_spec or ()]
        return {"builder": self.builder, "kwargs": self.kwargs, "input_spec": specs}

    def fitted_to(self, inputs: Sequence[Any]) -> ExportConfig:
        """This section with `input_spec` filled from `inputs` when unset; a spec that cannot take the fixed
        shapes of `inputs` (other names, rank, a fixed dim that differs, dtype) is a ValueError."""
        if self.input_spec is None:
            spec = [ExportInput(name=i.name, shape=list(i.shape), dtype=i.dtype) for i in inputs]
            return self.model_copy(update={"input_spec": spec})
        fixed = {i.name: i for i in inputs}
        names = [s.name for s in self.input_spec]
        problems = []
        if sorted(names) != sorted(fixed):
            problems.append(f"input_spec names {names} differ from the inputs {list(fixed)}")
        for i, spec in enumerate(self.input_spec):
            given = fixed.get(spec.name)
            if given is None:
                continue
            if len(spec.shape) != len(given.shape):
                problems.append(f"input_spec.{i} ({spec.name}) has {len(spec.shape)} dims, inputs gives {list(given.shape)}")
            elif any(d != DYNAMIC and d != g for d, g in zip(spec.shape, given.shape)):
                problems.append(f"input_spec.{i} ({spec.name}) {spec.shape} cannot take the fixed shape {list(given.shape)}")
            if spec.dtype != given.dtype:
                problems.append(f"input_spec.{i} ({spec.name}) is {spec.dtype}, inputs says {given.dtype}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

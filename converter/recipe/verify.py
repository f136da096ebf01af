"""The `verify:` section: tolerances and task checks for numeric parity."""

from __future__ import annotations

from converter.recipe.base import Section


class VerifyConfig(Section):
    pass

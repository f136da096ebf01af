"""`npuconv schema`: the recipe's JSON Schema."""

from __future__ import annotations

from converter.commands.common import JsonOpt


def schema_command(json_: JsonOpt = False) -> None:
    """Print the JSON Schema of a recipe (every key, type, default and allowed value). The output is JSON
    either way; --json is accepted like on every command."""
    from converter.console import emit_json
    from converter.recipe.model import Recipe

    emit_json(Recipe.model_json_schema())

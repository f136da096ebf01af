"""`npuconv schema`: the recipe's JSON Schema."""

from __future__ import annotations

import json


def schema_command() -> None:
    """Print the JSON Schema of a recipe (every key, type, default and allowed value)."""
    from converter.recipe.model import Recipe

    print(json.dumps(Recipe.model_json_schema(), indent=2))

"""Recipes: validated YAML, one per model."""

from converter.recipe.loader import load_recipe
from converter.recipe.model import InputSpec, OnnxSource, PaddleSource, Recipe

__all__ = ["InputSpec", "OnnxSource", "PaddleSource", "Recipe", "load_recipe"]

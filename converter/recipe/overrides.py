"""`--set KEY.PATH=VALUE`: a CLI value typed by the recipe field it lands on, not by YAML alone.

The value is YAML, read against the field's type: a string field keeps the text as written (`6.0` stays
"6.0", not the float 6.0), a path field is relative to the working directory (it is a CLI path), and
anything else is the YAML value. `null` unsets a key that may be unset."""

from __future__ import annotations

import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel

from converter.errors import RecipeError
from converter.recipe.model import Recipe

Loc = tuple[Any, ...]


@dataclass(frozen=True)
class Override:
    """One `--set`: its text as given, the key path, and the value typed for the field it sets."""

    text: str
    key: str
    value: Any


def parse_override(item: str) -> Override:
    """Split `KEY.PATH=VALUE` and type VALUE by the recipe field at KEY.PATH."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise RecipeError(f"--set {item!r}: expected KEY.PATH=VALUE", hint="e.g. --set onnx.opset=13")
    parts = tuple(int(p) if p.isdigit() else p for p in key.split("."))
    try:
        node = yaml.compose(raw, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        node = None  # not YAML: the text itself, for the recipe's validation to judge
    return Override(item, key, raw if node is None else _typed(node, [Recipe], parts))


def apply_override(data: dict, override: Override, recipe_path: Path) -> Loc:
    """Set the override's value in the recipe data; returns the location it set (list indices as ints)."""
    parts = override.key.split(".")
    node: Any = data
    loc: list[Any] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise RecipeError(f"--set {override.key}: {'.'.join(parts[:i])} has no item {part}",
                                  hint=f"{recipe_path} lists {len(node)} item(s); index them from 0")
            part = int(part)
        elif not isinstance(node, dict):
            raise RecipeError(f"--set {override.key}: {'.'.join(parts[:i])} is not a mapping", hint="override a leaf key")
        loc.append(part)
        if last:
            node[part] = override.value
        else:
            if isinstance(node, dict) and not isinstance(node.get(part), (dict, list)):
                node[part] = {}
            node = node[part]
    return tuple(loc)


def _typed(node: yaml.Node, annotations: list[Any], loc: Loc) -> Any:
    """The YAML node as a Python value, read against the annotations that may sit at `loc`."""
    here = _descend(annotations, loc)
    if isinstance(node, yaml.MappingNode):
        return {_construct(k): _typed(v, here, (_construct(k),)) for k, v in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_typed(v, here, (i,)) for i, v in enumerate(node.value)]
    value = _construct(node)
    kinds = {_kind(a) for a in _leaves(here)}
    if value is None and "none" in kinds:
        return None
    if "path" in kinds and value is not None:
        return os.path.abspath(node.value)  # a CLI path: relative to the working directory
    if kinds and kinds <= {"str", "none"}:
        return node.value  # the text as written: `6.0` for a string field is "6.0"
    return value


def _construct(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _descend(annotations: list[Any], loc: Loc) -> list[Any]:
    """The annotations one level down `loc` from each of `annotations` (models, lists, dicts, unions)."""
    current = annotations
    for part in loc:
        nxt: list[Any] = []
        for ann in _leaves(current):
            origin = typing.get_origin(ann)
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                field = ann.model_fields.get(part) if isinstance(part, str) else None
                if field is not None:
                    nxt.append(field.annotation)
            elif origin in (list, tuple) and isinstance(part, int):
                args = typing.get_args(ann)
                nxt.append(args[min(part, len(args) - 1)] if origin is tuple and Ellipsis not in args else args[0])
            elif origin is dict:
                nxt.append(typing.get_args(ann)[1])
        current = nxt
    return current


def _leaves(annotations: list[Any]) -> list[Any]:
    """Unions and Annotated unwrapped: the member types."""
    out: list[Any] = []
    for ann in annotations:
        origin = typing.get_origin(ann)
        if origin is typing.Annotated:
            out += _leaves([typing.get_args(ann)[0]])
        elif origin in (Union, types.UnionType):
            out += _leaves(list(typing.get_args(ann)))
        else:
            out.append(ann)
    return out


def _kind(ann: Any) -> str:
    if ann is type(None):
        return "none"
    if ann is str or (typing.get_origin(ann) is Literal and all(isinstance(a, str) for a in typing.get_args(ann))):
        return "str"
    if isinstance(ann, type) and issubclass(ann, Path):
        return "path"
    if ann in (int, float, bool):
        return "number"
    return "other"

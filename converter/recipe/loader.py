"""Load a recipe: YAML with line numbers, ${ENV} expansion, `--set` overrides, errors that name the file,
the line, the key path and the allowed values (or the `--set` that put the value there)."""

from __future__ import annotations

import difflib
import os
import re
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from converter.errors import RecipeError
from converter.recipe.model import Recipe, source_or_export
from converter.recipe.overrides import Override, apply_override, parse_override

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
Loc = tuple[Any, ...]
_BRANCH_MISMATCH = {"model_type", "dict_type", "list_type", "model_attributes_type"}


def load_recipe(
    path: str | Path,
    overrides: list[str] | tuple[str, ...] = (),
    model_dir: str | Path | None = None,
    output_dir: str | Path | None = None,
) -> Recipe:
    """Read and validate a recipe. `overrides` are `key.path=value` strings (`--set`, typed by the field
    they set; their paths are relative to the working directory, and errors in them name the `--set`);
    `model_dir` and `output_dir` are CLI paths (relative to the working directory) that replace the recipe's."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe not found: {path}", hint="pass the path of a YAML recipe, e.g. recipes/ppocrv4_rec.yaml")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not a UTF-8 text file (byte {exc.start}), so not a YAML recipe",
                          hint="pass a YAML recipe; `npuconv verify` and `npuconv bench` also take a bundle (.tar.gz)") from None
    except OSError as exc:
        raise RecipeError(f"cannot read the recipe {path}: {exc.strerror or exc}", hint="check the path and its permissions") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RecipeError(f"{where}: invalid YAML: {problem}", hint="check indentation and quoting near that line") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a YAML mapping with at least name, source and inputs",
                          hint="see recipes/ppocrv4_rec.yaml for a complete example")
    lines = _line_numbers(node)
    cli: dict[Loc, Override] = {}
    for item in overrides:
        override = parse_override(item)
        loc = apply_override(data, override, path)
        cli = {k: v for k, v in cli.items() if k[:len(loc)] != loc}  # a later --set replaces what it covers
        cli[loc] = override
    data = _expand_env(data, (), path, lines, frozenset(cli))
    origin = _origin_problem(data, path, lines, cli)
    try:
        recipe = Recipe.model_validate(data, context={"base_dir": path.parent.resolve()})
    except ValidationError as exc:
        raise _recipe_error(exc, data, path, lines, cli, origin) from None
    update: dict[str, Any] = {}
    if output_dir is not None:
        update["output_dir"] = Path(output_dir).resolve()
    elif recipe.output_dir is None:
        update["output_dir"] = path.parent.resolve() / "build" / recipe.name
    if model_dir is not None:
        if recipe.source is None:
            raise RecipeError("--model-dir applies to `source.format: paddle` recipes only",
                              hint=f"{path} builds its model with `export:`; override it with --set export.weights=FILE")
        if recipe.source.format != "paddle":
            raise RecipeError("--model-dir applies to `source.format: paddle` recipes only",
                              hint=f"{path} reads an ONNX file; override it with --set source.path=FILE")
        update["source"] = recipe.source.model_copy(update={"model_dir": Path(model_dir).resolve()})
    return recipe.model_copy(update=update) if update else recipe


def _line_numbers(node: yaml.Node | None, prefix: Loc = ()) -> dict[Loc, int]:
    """Map every key path of the YAML document to its 1-based line."""
    out: dict[Loc, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            loc = prefix + (key.value,)
            out[loc] = key.start_mark.line + 1
            out.update(_line_numbers(value, loc))
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            out[prefix + (i,)] = value.start_mark.line + 1
            out.update(_line_numbers(value, prefix + (i,)))
    return out


def _expand_env(value: Any, loc: Loc, path: Path, lines: dict[Loc, int], cli: frozenset[Loc]) -> Any:
    if loc in cli:  # a --set value is taken as given: the shell has expanded its variables already
        return value
    if isinstance(value, dict):
        return {k: _expand_env(v, loc + (k,), path, lines, cli) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, loc + (i,), path, lines, cli) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise RecipeError(f"{_where(path, lines, loc)}: {_dotted(loc)}: environment variable {name} is not set",
                          hint=f"export {name}=..., or write ${{{name}:-default}} in the recipe")

    return _ENV.sub(substitute, value)


def _origin_problem(data: dict, path: Path, lines: dict[Loc, int], cli: dict[Loc, Override]) -> str | None:
    """Exactly one of `source:` and `export:`, said with the line (or the --set) of the key at fault."""
    has = {key: data.get(key) is not None for key in ("source", "export")}
    problem = source_or_export(has["source"], has["export"])
    if problem is None:
        return None
    if all(has.values()):
        source = _where(path, lines, ("source",), cli)
        return f"{_where(path, lines, ('export',), cli)}: export: {problem} (source: is at {source})"
    return f"{path}: source: {problem}"


def _recipe_error(exc: ValidationError, data: dict, path: Path, lines: dict[Loc, int],
                  cli: dict[Loc, Override], origin: str | None = None) -> RecipeError:
    messages = [origin] if origin else []
    errors = [e for e in exc.errors(include_url=False) if e["type"] != "source_or_export"]
    # A value that fits one branch of a union (`om: {...}` or `om: [...]`) also fails the other branch with
    # "should be a valid dictionary/list": noise, once the real error inside the chosen branch is known.
    losing = [e for e in errors if e["type"] in _BRANCH_MISMATCH and len(_data_loc(data, e["loc"])) < len(e["loc"])]
    if len(losing) < len(errors):
        errors = [e for e in errors if e not in losing]
    for err in errors:
        loc = _data_loc(data, err["loc"])
        where = _where(path, lines, loc, cli)
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(err["loc"][:-1])
            unknown = str(err["loc"][-1])
            guess = difflib.get_close_matches(unknown, allowed, n=1)
            did_you_mean = f" (did you mean '{guess[0]}'?)" if guess else ""
            messages.append(f"{where}: {_dotted(loc)}: unknown key{did_you_mean}; allowed: {', '.join(allowed)}")
        elif err["type"] == "missing":
            messages.append(f"{where}: {_dotted(loc)}: required key is missing")
        else:
            messages.append(f"{where}: {_dotted(loc) or '(top level)'}: {err['msg']} (got {_short(err.get('input'))})")
    hint = "fix the key named above; `npuconv schema` prints every key with its allowed values"
    return RecipeError("; ".join(messages), hint=hint)


def _data_loc(data: Any, loc: Loc) -> Loc:
    """Drop pydantic's union tags (e.g. 'paddle', 'list[OmConfig]') from an error location."""
    out: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        elif not isinstance(node, (dict, list)) or isinstance(part, int):
            continue
        elif isinstance(node, dict) and part not in node and part == loc[-1]:
            out.append(part)  # a missing or unknown key: the location names it all the same
    return tuple(out)


def _models_at(loc: Loc) -> list[type[BaseModel]]:
    """The recipe model classes that can sit at a pydantic error location."""
    models: list[type[BaseModel]] = [Recipe]
    for part in loc:
        if isinstance(part, int):
            continue
        fields = [m.model_fields[part] for m in models if part in m.model_fields]
        if fields:
            models = [m for f in fields for m in _models_in(f.annotation)]
        else:  # a union tag: keep the member it names
            models = [m for m in models if part in (m.__name__, _literal_tag(m))] or models
    return models


def _literal_tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("format")
    args = typing.get_args(field.annotation) if field else ()
    return args[0] if len(args) == 1 else None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _allowed_keys(loc: Loc) -> list[str]:
    keys: list[str] = []
    for model in _models_at(loc):
        keys += [k for k in model.model_fields if k not in keys]
    return keys


def _where(path: Path, lines: dict[Loc, int], loc: Loc, cli: dict[Loc, Override] | None = None) -> str:
    """`--set KEY=VALUE` when a --set put the value at `loc` (or above it), else `file:line`."""
    for end in range(len(loc), 0, -1):
        if cli and loc[:end] in cli:
            return f"--set {cli[loc[:end]].text}"
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return f"{path}:{lines[loc[:end]]}"
    return str(path)


def _dotted(loc: Loc) -> str:
    return ".".join(str(p) for p in loc)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

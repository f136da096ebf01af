"""Find the builder's module without importing it (no user code, no paddle in the npuconv process) and
say what its output depends on: the digests of the Python files beside it, or the version of the
installed distribution that provides it."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from typing import Any

from converter.artifacts import file_digest
from converter.errors import InputError
from converter.versions import tool_version


def locate(module: str, search_path: Sequence[Path]) -> tuple[ModuleSpec, Path | None]:
    """The spec of `module` and the search_path folder it was found in (None: found among the installed
    packages). A module that is not there is a `LookupError` whose args are (message, missing name)."""
    from converter.stages.export_problem import not_found_message

    parts = module.split(".")
    folders = [str(p) for p in search_path]
    for folder in folders:
        if not Path(folder).is_dir():
            raise InputError(f"export.search_path: folder not found: {folder}",
                             hint="list folders that exist; paths are relative to the recipe")
    found_in, spec = None, None
    for folder in folders:
        spec = PathFinder.find_spec(parts[0], [folder])
        if spec is not None:
            found_in = Path(folder)
            break
    else:
        try:
            spec = importlib.util.find_spec(parts[0])
        except (ImportError, ValueError):
            spec = None
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        if spec is None:
            raise LookupError(not_found_message(module, name, folders), name)
        if depth == len(parts):
            break
        locations = list(spec.submodule_search_locations or [])
        spec = PathFinder.find_spec(".".join(parts[:depth + 1]), locations) if locations else None
    return spec, found_in


def source_facts(module: str, search_path: Sequence[Path]) -> dict[str, Any]:
    """For the content key: sha256 of every .py file in the builder's folder and in its top-level package
    (relative names, so moving the folder keeps the key), or the installed distribution's version."""
    spec, found_in = locate(module, search_path)
    top = module.split(".")[0]
    if found_in is not None:
        return {"module": module, "found_in": "search_path", "files": _digests(found_in, top)}
    dists = _distributions(top)
    if dists:
        return {"module": module, "found_in": "installed", "distributions": dists}
    origin = Path(spec.origin) if spec.origin and spec.origin not in ("built-in", "frozen") else None
    if origin is None:
        return {"module": module, "found_in": "unknown"}
    root = origin.parent.parent if origin.name == "__init__.py" else origin.parent
    return {"module": module, "found_in": str(root), "files": _digests(root, top)}


def _digests(folder: Path, top: str) -> dict[str, str]:
    files = set(folder.glob("*.py"))
    if (folder / top).is_dir():
        files |= set((folder / top).rglob("*.py"))
    return {p.relative_to(folder).as_posix(): file_digest(p) for p in sorted(files) if p.is_file()}


def _distributions(top: str) -> dict[str, str | None]:
    from importlib.metadata import packages_distributions

    if top in sys.stdlib_module_names:
        return {"python": ".".join(map(str, sys.version_info[:3]))}
    return {name: tool_version(name) for name in sorted(set(packages_distributions().get(top, ())))}

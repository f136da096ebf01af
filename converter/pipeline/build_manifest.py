"""`<output_dir>/<name>.manifest.json`: what the last `npuconv build` of a recipe produced, one entry per om
variant (its rows: every artifact with sha256 and size, tool versions, timings, verdicts; the bundle with
the sha256 of each file in it). Variants of one recipe are built in parallel worker processes, so each
merges its entry under a file lock and writes the manifest atomically: a reader sees the old manifest or
the new one, and an interrupted build leaves the last one as it was.

    {"format": "npuconv-manifest/1", "recipe", "recipe_file", "npuconv", "tools": {...},
     "units": {"<variant or default>": {"variant", "unit", "passed", "finished", "seconds", "stages": [...],
               "bundle": {...} | null}}}
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from converter import __version__
from converter.artifacts import write_json_atomic
from converter.pipeline.build_plan import Unit
from converter.recipe.model import Recipe
from converter.versions import tool_versions

FORMAT = "npuconv-manifest/1"


def manifest_path(recipe: Recipe) -> Path:
    """`<output_dir>/<name>.manifest.json`."""
    return Path(recipe.output_dir) / f"{recipe.name}.manifest.json"


def _lock(path: Path):
    from filelock import FileLock

    from converter.pipeline.runner import cache_root

    # The lock lives in the cache, not beside the manifest: output directories stay free of lock files.
    locks = cache_root() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    return FileLock(str(locks / f"manifest-{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:24]}.lock"))


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("format") == FORMAT else {}


def unit_entry(result: dict[str, Any]) -> dict[str, Any]:
    """A unit's manifest entry from its result."""
    bundle = next((r for r in result["stages"] if r["stage"] == "bundle" and r["artifacts"]), None)
    return {
        "variant": result["variant"], "unit": result["unit"], "passed": result["passed"],
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": result["seconds"], "stages": result["stages"],
        "bundle": {**bundle["artifacts"][0], "files": bundle.get("files", {})} if bundle else None,
    }


def record_unit(recipe: Recipe, unit: Unit, result: dict[str, Any]) -> Path:
    """Merge the unit's entry into its recipe's manifest (dropping variants the recipe no longer has)."""
    path = manifest_path(recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock(path):
        units = _read(path).get("units", {})
        keep = set(unit.variants) or {"default"}
        units = {k: v for k, v in units.items() if k in keep}
        units[unit.variant or "default"] = unit_entry(result)
        write_json_atomic(path, {"format": FORMAT, "recipe": recipe.name, "recipe_file": str(unit.recipe.absolute()),
                                 "npuconv": __version__, "tools": tool_versions(), "units": dict(sorted(units.items()))})
    return path

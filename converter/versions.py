"""Tool versions and the version combinations known to produce broken models.

Versions are read with importlib.metadata so a cache hit never imports paddle, onnx or onnxruntime.

The conversion stack (Paddle, paddle2onnx, onnxsim) is an extra, `npuconv[convert]`: the device box runs
without it, so its modules are imported lazily and a missing one is a ToolNotFound with the install hint."""

from __future__ import annotations

from importlib import metadata, util

from converter.errors import ToolNotFound, VersionConflict

TOOLS = ("npuconv", "paddlepaddle", "paddle2onnx", "onnx", "onnxsim", "onnxruntime", "numpy")

# Opsets the pinned paddle2onnx (2.0.1) writes; above it says "The Opset Version must be between 7 and 21".
P2O_MIN_OPSET = 7
P2O_MAX_OPSET = 21

# (package, version prefix) pairs measured to produce broken models; each with the symptom and the fix.
KNOWN_BAD: tuple[tuple[str, str, str], ...] = (
    ("paddle2onnx", "2.1.", "paddle2onnx 2.1.x writes ONNX that ONNX Runtime rejects for PP-OCRv4 rec/cls "
     "('All inputs to Concat must have same rank')"),
    ("paddlepaddle", "3.3.", "paddlepaddle 3.3.x cannot export PP-OCRv4 det "
     "('the 0th elementwise MUST be ir::FloatAttribute')"),
)
PINNED_FIX = "pip install paddlepaddle==3.2.2 paddle2onnx==2.0.1 onnx==1.23.2 onnxsim==0.8.1 (or: make install)"

# distribution -> the top-level module it installs, for the extra `pip install npuconv[convert]`
CONVERT_STACK: dict[str, str] = {"paddlepaddle": "paddle", "paddle2onnx": "paddle2onnx", "onnxsim": "onnxsim"}
CONVERT_HINT = "pip install 'npuconv[convert]' (the conversion stack; `make install` installs everything)"


def tool_version(dist: str) -> str | None:
    """Installed version of a distribution, or None when it is not installed."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def tool_versions(names: tuple[str, ...] = TOOLS) -> dict[str, str | None]:
    """Versions of the tools whose output a stage depends on (part of every cache key)."""
    return {name: tool_version(name) for name in names}


def known_bad(versions: dict[str, str | None]) -> list[str]:
    """Messages for every installed version known to produce broken models."""
    return [why for dist, prefix, why in KNOWN_BAD if (versions.get(dist) or "").startswith(prefix)]


def importable(module: str) -> bool:
    """True when `module` can be imported here (found without importing it)."""
    try:
        return util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_convert_tools(versions: dict[str, str | None] | None = None) -> list[str]:
    """The conversion-stack distributions that are not installed (no metadata) or cannot be imported."""
    versions = tool_versions(tuple(CONVERT_STACK)) if versions is None else versions
    return [dist for dist, module in CONVERT_STACK.items()
            if versions.get(dist) is None or not importable(module)]


def convert_tool_missing(exc: ImportError) -> ToolNotFound | None:
    """The one-line ToolNotFound for an ImportError of a conversion-stack module; None for any other."""
    top = (exc.name or "").split(".")[0]
    dist = next((d for d, module in CONVERT_STACK.items() if module == top), None)
    if dist is None:
        return None
    return ToolNotFound(f"{dist} is not installed (needed to convert models)", hint=CONVERT_HINT)


def check_versions(versions: dict[str, str | None], need: tuple[str, ...] = ("paddlepaddle", "paddle2onnx")) -> None:
    """Refuse a known-bad combination, or a missing tool in `need`, before any work starts."""
    bad = known_bad(versions)
    if bad:
        raise VersionConflict("; ".join(bad), hint=PINNED_FIX)
    missing = [d for d in need if versions.get(d) is None or (d in CONVERT_STACK and not importable(CONVERT_STACK[d]))]
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise ToolNotFound(f"{' and '.join(missing)} {verb} not installed (needed to convert Paddle models)",
                           hint=CONVERT_HINT if set(missing) <= set(CONVERT_STACK) else PINNED_FIX)

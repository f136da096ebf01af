"""Tool versions and the version combinations known to produce broken models.

Versions are read with importlib.metadata so a cache hit never imports paddle, onnx or onnxruntime."""

from __future__ import annotations

from importlib import metadata

from converter.errors import VersionConflict

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


def check_versions(versions: dict[str, str | None], need: tuple[str, ...] = ("paddlepaddle", "paddle2onnx")) -> None:
    """Refuse a known-bad combination, or a missing tool in `need`, before any work starts."""
    bad = known_bad(versions)
    if bad:
        raise VersionConflict("; ".join(bad), hint=PINNED_FIX)
    for dist in need:
        if versions.get(dist) is None:
            raise VersionConflict(f"{dist} is not installed", hint=PINNED_FIX)

"""Which ONNX nodes atc keeps in fp32: `om.keep_dtype` entries (a node name, or `OpType::X`, one per line
of atc's `--keep_dtype` cfg) and, in mixed precision modes, the op types on the recipe's black list
(`om.modify_mixlist`). The fp16 emulation pass leaves those nodes unrounded."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converter.errors import RecipeError

# ONNX op type -> the Ascend IR op types atc turns it into (for `OpType::X` entries written either way).
# Approximate: the exact mapping depends on the CANN version and on fusion.
_ASCEND_TYPES: dict[str, tuple[str, ...]] = {
    "Conv": ("Conv2D",),
    "ConvTranspose": ("Conv2DTranspose", "Conv2DTransposeD"),
    "MatMul": ("MatMulV2", "BatchMatMul", "BatchMatMulV2"),
    "Gemm": ("MatMulV2",),
    "Softmax": ("SoftmaxV2",),
    "BatchNormalization": ("BatchNorm",),
    "ReduceMean": ("ReduceMeanD",),
    "ReduceSum": ("ReduceSumD",),
}


@dataclass(frozen=True)
class KeepRules:
    """Node names and op types that stay in fp32."""

    names: frozenset[str] = frozenset()
    op_types: frozenset[str] = frozenset()

    def keeps(self, name: str, op_type: str) -> bool:
        """Whether a node with this name and ONNX op type is kept in fp32."""
        if name and name in self.names:
            return True
        return op_type in self.op_types or any(t in self.op_types for t in _ASCEND_TYPES.get(op_type, ()))


def parse_entries(entries: Iterable[str]) -> KeepRules:
    """Rules from `keep_dtype` entries: `OpType::Relu` keeps every Relu, anything else is a node name."""
    names, types = set(), set()
    for raw in entries:
        entry = str(raw).strip()
        if not entry or entry.startswith("#"):
            continue
        if entry.startswith("OpType::"):
            types.add(entry.removeprefix("OpType::"))
        else:
            names.add(entry)
    return KeepRules(frozenset(names), frozenset(types))


def mixlist_black_types(mixlist: Any) -> frozenset[str]:
    """Op types `modify_mixlist` adds to the black list (kept fp32 in mixed modes). Accepts the JSON
    object itself or a path to the JSON file atc reads."""
    if mixlist is None:
        return frozenset()
    if isinstance(mixlist, (str, Path)):
        try:
            mixlist = json.loads(Path(mixlist).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RecipeError(f"om.modify_mixlist: cannot read {mixlist}: {exc}",
                              hint='write {"black-list": {"to-add": ["OpType"]}} as JSON') from None
    if hasattr(mixlist, "model_dump"):
        mixlist = mixlist.model_dump(by_alias=True)
    black = (mixlist or {}).get("black-list") or (mixlist or {}).get("black_list") or {}
    added = black.get("to-add") or black.get("to_add") or []
    return frozenset(str(t) for t in added)


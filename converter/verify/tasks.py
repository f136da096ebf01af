"""Task checks beyond raw numbers: argmax agreement along an axis (classification top-1, per-step
labels) and greedy CTC decoding of recognition outputs compared as text."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from converter.errors import InputError, RecipeError


@dataclass(frozen=True)
class TaskResult:
    """One task check of one sample."""

    kind: str
    sample: int
    output: str
    agreement: float
    threshold: float
    detail: dict

    @property
    def passed(self) -> bool:
        return self.agreement >= self.threshold

    def to_json(self) -> dict:
        return {"kind": self.kind, "sample": self.sample, "output": self.output, "agreement": self.agreement,
                "min_agreement": self.threshold, "passed": self.passed, **self.detail}


def pick_output(task, names: list[str]) -> str:
    """The output a task reads: by name, or by index into the reference's outputs."""
    if isinstance(task.output, int):
        if not -len(names) <= task.output < len(names):
            raise RecipeError(f"verify.task.output {task.output}: the model has {len(names)} output(s)",
                              hint=f"use an index below {len(names)} or a name: {', '.join(names)}")
        return names[task.output]
    if task.output not in names:
        raise RecipeError(f"verify.task.output {task.output!r} is not an output of the model",
                          hint=f"outputs: {', '.join(names)}")
    return task.output


def check_task(task, sample: int, output: str, reference: np.ndarray, actual: np.ndarray) -> TaskResult:
    """Run the recipe's task check on one output pair."""
    if task.kind == "sequence":  # before the shape check: a decoder may return more rows than it wrote
        return _sequences(task, sample, output, reference, actual)
    if reference.shape != actual.shape:
        return TaskResult(task.kind, sample, output, 0.0, task.min_agreement, {"error": "shape mismatch"})
    if task.kind == "argmax":
        ref, act = reference.argmax(axis=task.axis), actual.argmax(axis=task.axis)
        agree = float((ref == act).mean()) if ref.size else 1.0
        return TaskResult("argmax", sample, output, agree, task.min_agreement,
                          {"axis": task.axis, "positions": int(ref.size), "agreeing": int((ref == act).sum())})
    chars = _charset(Path(task.dict), task.space)
    ref_texts = ctc_decode(reference, chars, task.blank)
    act_texts = ctc_decode(actual, chars, task.blank)
    agree = sum(r == a for r, a in zip(ref_texts, act_texts)) / max(1, len(ref_texts))
    return TaskResult("ctc", sample, output, agree, task.min_agreement,
                      {"reference_text": ref_texts, "target_text": act_texts})


def decode_sequence(probs: np.ndarray, end_token: int) -> list[list[int]]:
    """Per batch row: the argmax tokens over the last axis, up to and including the first end_token."""
    tokens = probs.reshape(-1, probs.shape[-2], probs.shape[-1]).argmax(axis=-1)
    out = []
    for row in tokens:
        ends = np.flatnonzero(row == end_token)
        out.append([int(t) for t in row[: ends[0] + 1 if ends.size else row.size]])
    return out


def _sequences(task, sample: int, output: str, reference: np.ndarray, actual: np.ndarray) -> TaskResult:
    if reference.ndim < 2 or actual.ndim != reference.ndim or reference.shape[-1] != actual.shape[-1]:
        return TaskResult("sequence", sample, output, 0.0, task.min_agreement,
                          {"error": f"shapes {list(reference.shape)} and {list(actual.shape)} hold no comparable sequences"})
    want, got = decode_sequence(reference, task.end_token), decode_sequence(actual, task.end_token)
    total = sum(len(w) for w in want)
    same = sum(sum(a == b for a, b in zip(w, g)) for w, g in zip(want, got))
    same -= sum(abs(len(w) - len(g)) for w, g in zip(want, got))  # a sequence that ends elsewhere disagrees there
    agree = max(0, same) / total if total else 1.0
    return TaskResult("sequence", sample, output, agree, task.min_agreement,
                      {"end_token": task.end_token, "reference_tokens": want, "target_tokens": got})


@lru_cache(maxsize=4)
def _charset(path: Path, space: bool) -> tuple[str, ...]:
    if not path.is_file():
        raise InputError(f"CTC dictionary not found: {path}", hint="set verify.task.dict to the model's character list")
    chars = [line.rstrip("\r\n") for line in path.read_text(encoding="utf-8").splitlines()]
    return ("",) + tuple(chars) + ((" ",) if space else ())


def ctc_decode(probs: np.ndarray, chars: tuple[str, ...], blank: int = 0) -> list[str]:
    """Greedy CTC: argmax per step, collapse repeats, drop blanks. `probs` is [N, T, C]."""
    if probs.ndim != 3:
        raise InputError(f"CTC decoding needs a [N, T, C] output, got shape {list(probs.shape)}",
                         hint="point verify.task.output at the recognition head")
    texts = []
    for row in probs.argmax(axis=-1):
        keep = np.ones(len(row), bool)
        keep[1:] = row[1:] != row[:-1]
        texts.append("".join(chars[i] if i < len(chars) else "?" for i in row[keep] if i != blank))
    return texts

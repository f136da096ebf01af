"""The pass interface. A pass rewrites a `ModelSet` (one graph, or several that a host loop drives: an
encoder and a single decoder step) and says what it changed. Passes only transform graphs: running them
and checking that outputs stay equal is the onnx stage's job."""

from __future__ import annotations

import abc
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class NoConfig(BaseModel):
    """A pass without options."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ModelSet:
    """The graphs a model consists of, by role: `{"model": m}`, or `{"encoder": e, "step": s}` plus the
    host loop (`loop`, a JSON-able description the host-loop runner executes)."""

    graphs: Mapping[str, Any]
    loop: Mapping[str, Any] | None = None

    @classmethod
    def single(cls, model: Any) -> ModelSet:
        return cls({"model": model})

    @property
    def model(self) -> Any:
        """The only graph (raises when the model was split into several)."""
        if set(self.graphs) != {"model"}:
            raise ValueError(f"the model consists of several graphs: {sorted(self.graphs)}")
        return self.graphs["model"]

    def with_graph(self, role: str, model: Any) -> ModelSet:
        return replace(self, graphs={**self.graphs, role: model})

    def map(self, fn) -> ModelSet:
        """Apply `fn(model) -> model` to every graph."""
        return replace(self, graphs={role: fn(m) for role, m in self.graphs.items()})

    def op_counts(self) -> Counter:
        """Op types over every graph, subgraphs (Loop/If bodies) included."""
        counts: Counter = Counter()
        for model in self.graphs.values():
            _count(model.graph, counts)
        return counts


def _count(graph, counts: Counter) -> None:
    for node in graph.node:
        counts[node.op_type] += 1
        for attr in node.attribute:
            if attr.type == attr.GRAPH:
                _count(attr.g, counts)
            for sub in attr.graphs:
                _count(sub, counts)


def op_delta(before: Counter, after: Counter) -> dict[str, int]:
    """{op type: count after - count before}, zero deltas left out."""
    ops = sorted(set(before) | set(after))
    return {op: after[op] - before[op] for op in ops if after[op] != before[op]}


@dataclass(frozen=True)
class PassResult:
    """A pass's output: the rewritten models and, in words, what it did (each repair named)."""

    models: ModelSet
    notes: tuple[str, ...] = ()
    card: Mapping[str, Any] = field(default_factory=dict)  # facts downstream needs (host loop, early exit)


def onnx_options(section: Any) -> Any:
    """The recipe's `onnx:` options from the stage section handed to `Pass.configure` (a recipe or section
    object with an `onnx` attribute, the options themselves, or their JSON form); None when absent."""
    if section is None:
        return None
    if isinstance(section, Mapping):
        from types import SimpleNamespace

        options = section.get("onnx", section)
        return SimpleNamespace(**options) if isinstance(options, Mapping) else options
    return getattr(section, "onnx", section)


def per_graph(models: ModelSet, rewrite: Callable[[str, Any], tuple[Any, list[str]]]) -> PassResult:
    """Apply a one-graph rewrite to every graph of `models`. `rewrite(role, model)` returns (model, notes):
    the model itself when nothing applies. Notes are prefixed with the graph's role when there are several."""
    notes: list[str] = []
    result = models
    for role, model in models.graphs.items():
        rewritten, found = rewrite(role, model)
        notes += [f"[{role}] {n}" if len(models.graphs) > 1 else n for n in found]
        if rewritten is not model:
            result = result.with_graph(role, rewritten)
    return PassResult(result, tuple(notes))


class Pass(abc.ABC):
    """One rewrite. `Config` is its typed configuration, built from the onnx stage's section by
    `configure`; `run` must not modify its input models in place."""

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]] = NoConfig

    def configure(self, section: Any) -> BaseModel:
        """This pass's config from the onnx stage's section (recipe `inputs` + `onnx`)."""
        return self.Config()

    @abc.abstractmethod
    def run(self, models: ModelSet, config: Any) -> PassResult:
        """Rewrite `models`; return them unchanged (same objects) when there is nothing to do."""

"""What a stage is: a small object with a name, a version, the upstream stages it reads, what goes into
its content key, and `run(section, upstream, scratch) -> StageOutput`. The runner does everything else
(key, lock, cache, publish), so a new stage is one module plus one registration."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from converter.artifacts import Artifact

Progress = Callable[[str], None]


def quiet(_text: str) -> None:
    """A progress callback that says nothing."""


@dataclass(frozen=True)
class StageOutput:
    """What `Stage.run` returns: files it wrote into scratch (role -> file name) and its card."""

    files: Mapping[str, str]
    card: Mapping[str, Any]


class Stage(abc.ABC):
    """One step of the pipeline. Subclasses set `name`, `version` (bump it when the output for the same
    inputs changes) and `reads` (the stage names of the upstream artifacts `run` receives)."""

    name: ClassVar[str]
    version: ClassVar[int] = 1
    reads: ClassVar[tuple[str, ...]] = ()

    def key_payload(self, section: Any, upstream: Mapping[str, Artifact]) -> Mapping[str, Any]:
        """Facts beyond the section and the upstream artifacts' keys that change the output: source file
        digests, tool versions, the atc executable. Default: nothing."""
        return {}

    def check(self, section: Any, upstream: Mapping[str, Artifact]) -> None:
        """Refuse before anything runs (and before the cache is looked at); raise NpuconvError."""

    @abc.abstractmethod
    def run(self, section: Any, upstream: Mapping[str, Artifact], scratch: Path, progress: Progress) -> StageOutput:
        """Build the output in `scratch` (an empty directory) and describe it."""

    def verdict(self, artifact: Artifact, section: Any) -> bool:
        """Whether the artifact passed the stage's own check (parity...). A failed check stops the stages
        after it unless the user says --keep-going. Default: passed."""
        return True


@dataclass(frozen=True)
class StageRun:
    """One planned run: a stage, its section (JSON-able via `key_section`), the labels of the runs it
    reads, and where its files are published (role -> destination path)."""

    label: str
    stage: Stage
    section: Any
    upstream: Mapping[str, str] = field(default_factory=dict)  # stage name -> label of the run providing it
    publish: Mapping[str, Path] = field(default_factory=dict)
    card_path: Path | None = None

    def key_section(self) -> Any:
        """The section as JSON for the content key."""
        dump = getattr(self.section, "key_json", None)
        return dump() if dump is not None else self.section

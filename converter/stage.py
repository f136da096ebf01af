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
    # modules and packages whose source decides the output: their code is part of the key, so an edited
    # pass rebuilds every output of the stage (the stage's own module always counts)
    code: ClassVar[tuple[str, ...]] = ()

    def key_payload(self, section: Any, upstream: Mapping[str, Artifact]) -> Mapping[str, Any]:
        """Facts beyond the section and the upstream artifacts' keys that change the output: source file
        digests, tool versions, the atc executable. Default: nothing."""
        return {}

    def check(self, section: Any, upstream: Mapping[str, Artifact]) -> None:
        """Refuse before anything runs (and before the cache is looked at); raise NpuconvError."""

    @abc.abstractmethod
    def run(self, section: Any, upstream: Mapping[str, Artifact], scratch: Path, progress: Progress) -> StageOutput:
        """Build the output in `scratch` (an empty directory) and describe it."""

    def published_name(self, role: str, stem: str) -> str | None:
        """The file name a role gets in the output directory (None: stays in the cache only)."""
        return None

    def card_name(self, stem: str) -> str | None:
        """The file name of the card published beside the outputs (None: no card)."""
        return None


@dataclass(frozen=True)
class StageRun:
    """One planned run: a stage, its section (JSON-able via `key_section`), the runs it reads (stage name
    -> label of the run providing it), and where its files are published (`out_dir`, named from `stem`)."""

    label: str
    stage: Stage
    section: Any
    upstream: Mapping[str, str] = field(default_factory=dict)
    out_dir: Path | None = None
    stem: str = ""
    # judges the artifact's own check with settings that stay out of the key (verify tolerances); returns a
    # report whose bool is the verdict, or None when the stage has no check
    judge: Callable[[Artifact], Any] | None = None

    def key_section(self) -> Any:
        """The section as JSON for the content key."""
        dump = getattr(self.section, "key_json", None)
        return dump() if dump is not None else self.section

    def card_path(self) -> Path | None:
        """Where the card is published, if anywhere."""
        name = self.stage.card_name(self.stem) if self.out_dir is not None else None
        return self.out_dir / name if name else None

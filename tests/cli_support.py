"""What a CLI run gave back, for the subprocess runner (tests/conftest.py) and the in-process one
(tests/om/conftest.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)

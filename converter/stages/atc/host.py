"""What this machine has for Ascend work (for `npuconv doctor`): atc and its CANN version, and the SoC
`npu-smi info` reports."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field

from converter import ascend as opt
from converter.stages.atc.run import cann_version, find_atc, toolkit_home

# A chip row of `npu-smi info`: "| 0     310P3               | OK            | NA  42  0 / 0 |"
_CHIP_ROW = re.compile(r"^\|\s*(\d+)\s+([0-9][0-9A-Za-z_]*)\s+\|\s*([A-Za-z]+)\s*\|", re.M)


@dataclass(frozen=True)
class NpuProbe:
    """`npu-smi info` result: whether it exists, the chips it lists and the soc_version to use."""

    npu_smi: str | None
    chips: tuple[dict, ...] = field(default_factory=tuple)
    error: str | None = None

    @property
    def soc_version(self) -> str | None:
        names = sorted({c["soc_version"] for c in self.chips})
        return names[0] if len(names) == 1 else None

    def to_json(self) -> dict:
        return {"npu_smi": self.npu_smi, "chips": list(self.chips), "soc_version": self.soc_version, "error": self.error}


def parse_npu_smi(text: str) -> list[dict]:
    """The chips of an `npu-smi info` table: id, name, health and the soc_version atc wants."""
    chips = []
    for match in _CHIP_ROW.finditer(text):
        name = match.group(2)
        soc = f"Ascend{name}"
        chips.append({"id": int(match.group(1)), "name": name, "health": match.group(3), "soc_version": soc,
                      "known": opt.is_known_soc(soc)})
    return chips


def probe_npu(env: Mapping[str, str] | None = None, timeout: float = 15.0) -> NpuProbe:
    """Run `npu-smi info` when it is installed (argv list, with a timeout)."""
    env = os.environ if env is None else env
    path = shutil.which("npu-smi", path=env.get("PATH"))
    if path is None:
        return NpuProbe(None)
    try:
        proc = subprocess.run([path, "info"], capture_output=True, text=True, timeout=timeout, env=dict(env))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return NpuProbe(path, error=f"npu-smi info failed: {exc}")
    if proc.returncode != 0:
        return NpuProbe(path, error=f"npu-smi info exited {proc.returncode}: {proc.stderr.strip()[:200]}")
    return NpuProbe(path, tuple(parse_npu_smi(proc.stdout)))


def probe_atc(env: Mapping[str, str] | None = None) -> dict:
    """Where atc is (or that it is absent) and the CANN version of its toolkit."""
    tool = find_atc(env)
    if tool is None:
        return {"found": False, "path": None, "home": None, "found_via": None, "cann_version": None}
    home = toolkit_home(tool, env)
    return {"found": True, **tool.to_json(), "home": str(home) if home else None, "cann_version": cann_version(home)}


def cann_mismatch(wanted: str | None, installed: str | None) -> str | None:
    """Why the recipe's om.cann_version and the installed CANN disagree (compared at the precision the
    recipe gives: `8.0` matches an installed `8.0.RC2`); None when they agree or either is unknown."""
    if wanted is None or installed is None or opt.cann_matches(wanted, installed):
        return None
    return (f"om.cann_version is {wanted} but the installed CANN is {installed}: the opset range and option "
            "checks were made for the recipe's version, atc here is another one")

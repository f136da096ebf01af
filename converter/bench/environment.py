"""The machine a run measured on, as the report records it (a baseline from another machine is said so)."""

from __future__ import annotations

import os
import platform
import sys

from converter.versions import TOOLS, tool_versions

# What makes two runs comparable; a difference is reported next to the regression gates.
IDENTITY = ("cpu_model", "logical_cpus", "usable_cpus", "machine", "threads", "versions")


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else what platform knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(threads: int | None) -> dict:
    """CPU, core counts, OS, Python, tool versions, the thread setting and the load average now."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu_model": cpu_model(), "logical_cpus": os.cpu_count(), "usable_cpus": usable,
        "machine": platform.machine(), "platform": platform.platform(), "python": sys.version.split()[0],
        "versions": tool_versions(TOOLS), "threads": threads, "loadavg_1m": round(load[0], 2) if load else None,
    }

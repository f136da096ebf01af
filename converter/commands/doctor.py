"""`npuconv doctor`: what this machine has for the pipeline (tools, atc/CANN, NPU) and known-bad versions."""

from __future__ import annotations

import platform
import sys

from converter.commands.common import JsonOpt
from converter.console import emit_json, out


def doctor_command(json_: JsonOpt = False) -> None:
    """Report tool versions, whether atc/CANN is installed, the SoC from npu-smi, and version combinations
    known to produce broken models (exit 1 when one is installed)."""
    import typer
    from rich.markup import escape

    from converter.stages.atc.host import probe_atc, probe_npu
    from converter.versions import CONVERT_HINT, PINNED_FIX, known_bad, missing_convert_tools, tool_versions

    versions = tool_versions()
    bad = known_bad(versions)
    atc = probe_atc()
    npu = probe_npu()
    missing = missing_convert_tools(versions)
    report = {
        "passed": not bad,
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "tools": versions,
        "convert": {"installed": not missing, "missing": missing, "hint": CONVERT_HINT if missing else None},
        "known_bad": bad,
        "fix": PINNED_FIX if bad else None,
        "atc": atc,
        "npu": npu.to_json(),
    }
    if json_:
        emit_json(report)
    else:
        out.print(f"python {report['python']} on {report['platform']}")
        for name, version in versions.items():
            out.print(f"  {name:<14} {version or '[red]not installed[/]'}")
        if missing:
            out.print(f"conversion stack: {', '.join(missing)} missing (converting Paddle models and onnxsim need "
                      f"them): {escape(CONVERT_HINT)}", soft_wrap=True)
        if atc["found"]:
            out.print(f"atc: {atc['path']} (via {atc['found_via']}), CANN {atc['cann_version'] or 'version unknown'}")
        else:
            out.print("atc: not installed (npuconv om --dry-run / --emit-script still work)")
        if npu.npu_smi is None:
            out.print("npu-smi: not installed (no Ascend NPU visible here)")
        elif npu.error:
            out.print(f"npu-smi: {npu.error}")
        else:
            chips = ", ".join(f"{c['id']}:{c['soc_version']} ({c['health']})" for c in npu.chips) or "no chips listed"
            out.print(f"npu-smi: {chips}" + (f"; use om.soc_version: {npu.soc_version}" if npu.soc_version else ""))
        for why in bad:
            out.print(f"[bold red]known bad:[/] {why}")
        if bad:
            out.print(f"fix: {PINNED_FIX}")
    if bad:
        raise typer.Exit(1)

"""`npuconv doctor`: what this machine has for the pipeline (tools, atc/CANN, NPU) and known-bad versions;
with `--recipe`, whether the installed CANN is the one the recipe targets."""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from typing import Annotated

import typer

from converter.commands.common import JsonOpt, VariantOpt, load
from converter.console import emit_json, out


def doctor_command(
    recipe: Annotated[Path | None, typer.Option(
        "--recipe", metavar="RECIPE", help="Also check that the installed CANN is the recipe's om.cann_version.")] = None,
    variant: VariantOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Report tool versions, whether atc/CANN is installed, the SoC from npu-smi, and version combinations
    known to produce broken models (exit 1 when one is installed). With --recipe, exit 1 also when the
    installed CANN differs from the recipe's om.cann_version."""
    from rich.markup import escape

    from converter.errors import InputError
    from converter.stages.atc.host import probe_atc, probe_npu
    from converter.versions import (
        CONVERT_HINT,
        PINNED_FIX,
        known_bad,
        missing_convert_tools,
        tool_versions,
    )

    if variant is not None and recipe is None:
        raise InputError("--variant needs --recipe", hint="npuconv doctor --recipe RECIPE --variant NAME")
    target = _recipe_cann(recipe, variant) if recipe is not None else None  # a bad recipe fails before probing
    versions = tool_versions()
    bad = known_bad(versions)
    atc = probe_atc()
    npu = probe_npu()
    check = _cann_check(*target, atc) if target is not None else None
    missing = missing_convert_tools(versions)
    report = {
        "passed": not bad and not (check and check["match"] is False),
        "python": sys.version.split()[0],
        "platform": f"{platform.system()} {platform.machine()}",
        "tools": versions,
        "convert": {"installed": not missing, "missing": missing, "hint": CONVERT_HINT if missing else None},
        "known_bad": bad,
        "fix": PINNED_FIX if bad else None,
        "atc": atc,
        "npu": npu.to_json(),
    }
    if check is not None:
        report["recipe"] = check
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
        if check is not None:
            style = "bold red" if check["match"] is False else "green" if check["match"] else "yellow"
            out.print(f"recipe {check['recipe']}: [{style}]{check['message']}[/]")
    if not report["passed"]:
        raise typer.Exit(1)


def _recipe_cann(recipe: Path, variant: str | None) -> tuple[str, str | None]:
    """(recipe label, om.cann_version of the chosen variant or None)."""
    from converter.recipe.om import select_variant

    cfg = select_variant(load(recipe, None).om, variant)
    label = f"{recipe}" + (f" (variant {cfg.variant})" if cfg is not None and cfg.variant else "")
    return label, cfg.cann_version if cfg is not None else None


def _cann_check(label: str, wanted: str | None, atc: dict) -> dict:
    """The recipe's CANN against the installed one: match True/False, or None when either is unknown."""
    from converter.stages.atc.host import cann_mismatch

    installed = atc["cann_version"]
    check = {"recipe": label, "cann_version": wanted, "installed": installed, "match": None}
    if wanted is None:
        message = "the recipe sets no om.cann_version: nothing to compare"
    elif not atc["found"]:
        message = f"the recipe targets CANN {wanted}; atc is not installed here, so nothing to compare"
    elif installed is None:
        message = f"the recipe targets CANN {wanted}; the installed CANN's version could not be read ({atc['home']})"
    else:
        mismatch = cann_mismatch(wanted, installed)
        check["match"] = mismatch is None
        message = (f"the recipe targets CANN {wanted}, the installed CANN is {installed}" + (": match" if not mismatch
                   else "; build on a machine with that CANN, or set om.cann_version to the installed one"))
    return {**check, "message": message}

"""`--emit-script`: a standalone POSIX sh script that runs the planned atc command on a build server.
Every value is shell-quoted; the model, output and cfg paths become shell variables."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from converter import __version__
from converter import ascend as opt
from converter.artifacts import atomic_path
from converter.recipe.model import Recipe
from converter.recipe.om import OmConfig
from converter.stages.atc.argv import AtcPaths, build_argv
from converter.stages.atc.files import AIPP, KEEP_DTYPE, MIXLIST, generated_files, render_template
from converter.stages.atc.stage import OmPlan

_VAR = "\x00"  # sentinel around a shell variable name inside an argv token
_SPLIT = re.compile(f"{_VAR}([A-Z_]+){_VAR}")


def _var(name: str, suffix: str = "") -> str:
    return f"{_VAR}{name}{_VAR}{suffix}"


def sh_word(token: str) -> str:
    """One argv token as a shell word: literal parts shlex-quoted, variables as "${VAR}"."""
    parts = _SPLIT.split(token)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f'"${{{part}}}"')
        elif part:
            out.append(shlex.quote(part))
    return "".join(out) or "''"


def _delimiter(text: str) -> str:
    base, n = "NPUCONV_EOF", 0
    while any(line == (base if n == 0 else f"{base}{n}") for line in text.splitlines()):
        n += 1
    return base if n == 0 else f"{base}{n}"


def render_script(plan: OmPlan, recipe: Recipe, cfg: OmConfig, script_name: str, recipe_path: str) -> str:
    """The script text for a plan (same argv as the plan, with paths as shell variables)."""
    contents = generated_files(recipe, cfg)
    paths = AtcPaths(
        model=_var("MODEL"), output=_var("WORK", f"/{plan.om.stem}"),
        keep_dtype=_var("CFG_DIR", f"/{KEEP_DTYPE}") if KEEP_DTYPE in contents else None,
        modify_mixlist=_var("CFG_DIR", f"/{MIXLIST}") if MIXLIST in contents else None,
        insert_op_conf=_var("CFG_DIR", f"/{AIPP}") if AIPP in contents else None,
    )
    argv = build_argv(recipe, cfg, plan.dynamic, paths)
    files = [{"name": shlex.quote(name), "delimiter": _delimiter(text),
              "text": text if text.endswith("\n") else text + "\n"} for name, text in contents.items()]
    return render_template(
        "atc_build.sh.j2", version=__version__, recipe_path=recipe_path, variant=plan.variant,
        om_name=plan.om.name, soc_version=plan.soc_version, soc_word=shlex.quote(plan.soc_version), script_name=script_name,
        model=shlex.quote(str(plan.onnx)), out_dir=shlex.quote(str(plan.om.parent)), stem=shlex.quote(plan.om.stem),
        cfg_name=shlex.quote(plan.cfg_dir.name), log_name=shlex.quote(plan.log.name), files=files,
        argv=[sh_word(t) for t in argv[1:]], marker=shlex.quote(opt.SUCCESS_MARKER),
    )


def write_script(dest: Path, text: str) -> Path:
    """Write the script atomically, executable (0755 under the usual umask 022)."""
    with atomic_path(dest, executable=True) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return dest

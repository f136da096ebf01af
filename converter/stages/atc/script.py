"""`--emit-script`: a standalone POSIX sh script that runs the planned atc command(s) on a build server.
Every value is shell-quoted; model, output and cfg paths become shell variables. The script checks each
ONNX's sha256 before atc starts and writes the OM's card beside it, as the om stage does."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

from converter import __version__
from converter import ascend as opt
from converter.artifacts import Artifact, write_bytes_atomic
from converter.stages.atc.argv import AtcPaths, build_argv
from converter.stages.atc.files import (
    AIPP,
    KEEP_DTYPE,
    MIXLIST,
    generated_files,
    render_template,
)
from converter.stages.atc.stage import OmPlan, OmSection, _graph_shapes, om_name
from converter.stages.atc.validate import DynamicPlan

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


def _delimiter(text: str, base: str = "NPUCONV_EOF") -> str:
    n = 0
    while any(line == (base if n == 0 else f"{base}{n}") for line in text.splitlines()):
        n += 1
    return base if n == 0 else f"{base}{n}"


def _card(plan: OmPlan, section: OmSection, onnx: Artifact) -> str:
    cfg = section.cfg
    card = {
        "stage": "om", "key": None, "built_by": "emitted script",
        "card": {
            "stem": section.stem, "variant": cfg.variant, "soc_version": cfg.soc_version,
            "precision_mode_v2": cfg.precision_mode_v2, "precision_mode": cfg.precision_mode,
            "precision": plan.precision, "cann_version": "@CANN_VERSION@",
            "onnx_sha256": {role: onnx.digests[role] for role in plan.argv}, "onnx_key": onnx.key,
            "input_shape": plan.input_shape, "dynamic": plan.to_json()["dynamic"], "graphs": list(plan.argv),
            "host_loop": onnx.card.get("host_loop"), "outputs": onnx.card.get("outputs"), "inputs": onnx.card.get("inputs"),
            "graph_outputs": {g["role"]: [o["name"] for o in g.get("outputs", [])] for g in onnx.card["graphs"]},
        },
    }
    return json.dumps(card, indent=2)


def _default_path(path: Path, here: Path | None) -> str:
    """A default path as a shell word: absolute as planned, or relative to the script's own directory
    (`"$HERE"/...`) when the script travels with its files (a bundle)."""
    if here is None:
        return shlex.quote(str(path))
    return '"$HERE"/' + shlex.quote(os.path.relpath(path, here))


def render_script(plan: OmPlan, section: OmSection, onnx: Artifact, script_name: str, recipe_path: str,
                  paddlex: tuple[str, str] | None = None, here: Path | None = None) -> str:
    """The script text for a plan (same argv as the plan, with paths as shell variables). `paddlex`:
    (directory relative to the output dir, inference.yml text): the script lays PaddleX's model dir out
    beside its OM. `here`: the directory the script will sit in; its default ONNX and output paths are then
    relative to it, so the script runs wherever its directory tree is unpacked (a bundle)."""
    recipe, cfg = section.recipe, section.cfg
    contents = generated_files(recipe, cfg)
    roles = list(plan.argv)
    single = roles == ["model"]
    graphs = []
    for role in roles:
        var = role.upper()
        paths = AtcPaths(
            model=_var(f"MODEL_{var}"), output=_var("WORK", "/" + om_name(section.stem, role)[:-3]),
            keep_dtype=_var("CFG_DIR", f"/{KEEP_DTYPE}") if KEEP_DTYPE in contents else None,
            modify_mixlist=_var("CFG_DIR", f"/{MIXLIST}") if MIXLIST in contents else None,
            insert_op_conf=_var("CFG_DIR", f"/{AIPP}") if AIPP in contents and role in ("model", "encoder") else None,
        )
        dynamic = plan.dynamic if role in ("model", "encoder") else DynamicPlan()
        argv = build_argv(recipe, cfg, dynamic, paths, graph_shapes=_graph_shapes(onnx, role))
        onnx_path = Path(plan.onnx[role])
        graphs.append({"var": var, "model": _default_path(onnx_path, here), "onnx_name": shlex.quote(onnx_path.name),
                       "sha256": shlex.quote(onnx.digests[role]), "om_name": shlex.quote(om_name(section.stem, role)),
                       "argv": [sh_word(t) for t in argv[1:]]})
    files = [{"name": shlex.quote(name), "delimiter": _delimiter(text),
              "text": text if text.endswith("\n") else text + "\n"} for name, text in contents.items()]
    card = _card(plan, section, onnx)
    out_dir = Path(section.log).parent
    return render_template(
        "atc_build.sh.j2", version=__version__, recipe_path=recipe_path, variant=plan.variant,
        om_names=", ".join(om_name(section.stem, r) for r in roles), soc_version=plan.soc_version,
        soc_word=shlex.quote(plan.soc_version), script_name=script_name, single=single,
        onnx_dir=_default_path(Path(plan.onnx[roles[0]]).parent, here), here=here is not None,
        onnx_names=", ".join(Path(plan.onnx[r]).name for r in roles),
        out_dir=_default_path(out_dir, here), stem=shlex.quote(section.stem),
        cfg_name=shlex.quote(cfg.variant or "default"), log_name=shlex.quote(Path(section.log).name), files=files,
        graphs=graphs, marker=shlex.quote(opt.SUCCESS_MARKER), card=card, card_delimiter=_delimiter(card, "NPUCONV_CARD"),
        paddlex_dir=shlex.quote(paddlex[0]) if paddlex else None,
        paddlex_yml=paddlex[1] if paddlex else "", yml_delimiter=_delimiter(paddlex[1] if paddlex else "", "NPUCONV_YML"),
    )


def write_script(dest: Path, text: str) -> Path:
    """Write the script atomically, executable (0755 under the usual umask)."""
    write_bytes_atomic(dest, text.encode("utf-8"), executable=True)
    return dest

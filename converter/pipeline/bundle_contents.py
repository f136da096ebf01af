"""What goes into one unit's bundle, gathered from the unit's artifacts (their cache entries, whose files
were checked against their sha256 when the runner handed them out):

    <stem>/onnx/<onnx stem>[.<role>].onnx + <onnx stem>.card.json
    <stem>/om/<stem>[.<role>].om + <stem>.om.card.json + <stem>.om.sha256 + <stem>.atc.log   (when atc ran)
    <stem>/atc/<cfg files> + build_om.sh      (the script checks the ONNX digest, builds into ../om with the card)
    <stem>/paddlex/inference.yml (+ inference.om when atc ran)   (static, batch-1, one-graph builds: PaddleX's OM backend)
    <stem>/reference/...                      (the saved reference: inputs, outputs, tolerances, task checks)
    <stem>/README.txt                         (how to replay it on the device box)
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from converter import __version__
from converter.artifacts import Artifact
from converter.pipeline.build_plan import Unit
from converter.pipeline.bundle import WrittenBundle, write_bundle
from converter.recipe.model import Recipe
from converter.stage import Progress
from converter.versions import tool_versions

README = """\
npuconv bundle {stem}: {recipe}{variant}

Replay the saved reference on the device box (needs only `pip install npuconv`, and ais_bench or pyACL for
the OM; no Paddle, paddle2onnx or onnxsim):

    npuconv verify {stem}.tar.gz --target om --junit parity.xml      # the OM on the NPU
    npuconv verify {stem}.tar.gz --target onnx:cpu                   # the ONNX, anywhere
    npuconv bench {stem}.tar.gz --backend om                          # latency, with the recipe's bench: SLOs

{om_line}
Every file's sha256 is in manifest.json; `npuconv verify` checks them before anything runs.
"""
OM_BUILT = "om/ holds the OM atc built on the build server ({soc}, precision {precision}, CANN {cann})."
OM_TO_BUILD = ("No OM inside (atc did not run where this was made): `sh atc/build_om.sh` builds it into om/ "
               "with its card,\nthen: npuconv verify reference --target om --om om/{stem}.om")


def _record(artifact: Artifact, published: Mapping[str, str]) -> bytes:
    """A card as published beside the files, with paths inside the bundle."""
    return (json.dumps({**artifact.record(), "published": dict(published)}, indent=2, default=str) + "\n").encode()


def _copy(artifact: Artifact, root: Path, folder: str, names: Mapping[str, str]) -> dict[str, str]:
    """Copy the artifact's files of `names` (role -> file name) into root/folder; role -> relative path."""
    (root / folder).mkdir(parents=True, exist_ok=True)
    out = {}
    for role, name in names.items():
        shutil.copyfile(artifact.path(role), root / folder / name)
        out[role] = f"{folder}/{name}"
    return out


def _onnx(onnx: Artifact, root: Path, stem: str) -> dict[str, str]:
    from converter.pipeline.registry import stage

    roles = [g["role"] for g in onnx.card["graphs"]]
    graphs = _copy(onnx, root, "onnx", {r: stage("onnx").published_name(r, stem) for r in roles})
    (root / "onnx" / f"{stem}.card.json").write_bytes(_record(onnx, graphs))
    return graphs


def _om(om: Artifact, root: Path, stem: str) -> dict[str, str]:
    from converter.pipeline.registry import stage

    names = {role: stage("om").published_name(role, stem) for role in om.files}
    files = _copy(om, root, "om", names)
    (root / "om" / f"{stem}.om.card.json").write_bytes(_record(om, files))
    return {role: path for role, path in files.items() if role not in ("log", "sha256")}


def _script(unit: Unit, om_run, onnx: Artifact, graphs: Mapping[str, str], root: Path,
            px_shape: tuple[int, ...] | None) -> str | None:
    """atc/<cfg files> and atc/build_om.sh (its default paths relative to itself: ../onnx in, ../om out),
    and for a PaddleX build paddlex/inference.yml, which the script completes with inference.om. Returns
    the yml text (None without PaddleX)."""
    from converter.stages.atc.paddlex import inference_yml
    from converter.stages.atc.script import render_script, write_script
    from converter.stages.atc.stage import plan_atc

    section = dataclasses.replace(om_run.section, log=root / "om" / f"{unit.stem}.atc.log")
    plan = plan_atc(section, onnx, {role: root / path for role, path in graphs.items()}, root / "om", root / "atc")
    (root / "atc").mkdir(parents=True, exist_ok=True)
    for path, text in plan.files.items():
        Path(path).write_text(text, encoding="utf-8")
    yml = inference_yml(section.recipe, section.cfg, plan.input_shape, px_shape) if px_shape is not None else None
    text = render_script(plan, section, onnx, "build_om.sh", unit.recipe.name, ("../paddlex", yml) if yml else None,
                         here=root / "atc")
    write_script(root / "atc" / "build_om.sh", text)
    return yml


def _paddlex_shape(recipe: Recipe, om_run) -> tuple[int, ...] | None:
    """PaddleX's `input_shape` when its OM backend can run this build (static, batch 1), else None."""
    from converter.errors import NpuconvError
    from converter.stages.atc.paddlex import check_paddlex

    try:
        return check_paddlex(recipe, om_run.section.dynamic)
    except NpuconvError:
        return None


def _atc_parts(recipe: Recipe, unit: Unit, onnx: Artifact, graphs: Mapping[str, str], om: Artifact | None,
               om_files: Mapping[str, str], root: Path) -> dict:
    """atc/ and paddlex/ (with `om:`), and what the bundle manifest says about them and the OM."""
    from converter.pipeline.plan import om_runs
    from converter.recipe.om import select_variant

    if recipe.om is None:
        return {"script": None, "paddlex": None}
    cfg = select_variant(recipe.om, unit.variant)
    om_run = om_runs(recipe, unit.variant)[-1]
    px_shape = _paddlex_shape(recipe, om_run) if list(graphs) == ["model"] else None  # PaddleX runs one OM
    yml = _script(unit, om_run, onnx, graphs, root, px_shape)
    if yml is not None:
        (root / "paddlex").mkdir()
        (root / "paddlex" / "inference.yml").write_text(yml, encoding="utf-8")
        if "model" in om_files:
            shutil.copyfile(root / om_files["model"], root / "paddlex" / "inference.om")
    facts = {"script": "atc/build_om.sh", "paddlex": "paddlex" if yml else None, "soc_version": cfg.soc_version}
    if om is not None:
        facts.update({k: om.card.get(k) for k in ("soc_version", "precision", "cann_version")})
    return facts


def write_unit_bundle(recipe: Recipe, unit: Unit, done: Mapping[str, Artifact], labels: Mapping[str, str],
                      bundle_dir: Path, progress: Progress) -> WrittenBundle:
    """Gather the unit's files and write `<bundle_dir>/<stem>.tar.gz`."""
    from converter.verify.reference import ReferenceSet, save_reference

    progress(f"bundle {unit.stem}.tar.gz")
    onnx, reference = done[labels["onnx"]], done["reference"]
    om = done.get(labels.get("om", ""))
    scratch = Path(tempfile.mkdtemp(prefix="npuconv-bundle-"))
    try:
        root = scratch / unit.stem
        graphs = _onnx(onnx, root, Path(onnx.published["card"]).name.removesuffix(".card.json"))
        om_files = _om(om, root, unit.stem) if om is not None else {}
        facts = _atc_parts(recipe, unit, onnx, graphs, om, om_files, root)
        reference_dir = root / "reference"
        reference_dir.mkdir(parents=True)
        meta = ReferenceSet(reference.root, dict(reference.card), "").meta()
        save_reference(reference_dir, reference.root, meta, recipe.verify)
        (root / "README.txt").write_text(_readme(recipe, unit, om, facts), encoding="utf-8")
        manifest = {"recipe": recipe.name, "variant": unit.variant, "unit": unit.stem, "npuconv": __version__,
                    "onnx": graphs, "reference": "reference", "tools": tool_versions(),
                    "bench": recipe.bench.model_dump(mode="json"), **facts}
        if om_files:
            manifest["om"] = om_files
        return write_bundle(bundle_dir / f"{unit.stem}.tar.gz", root, unit.stem, manifest)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _readme(recipe: Recipe, unit: Unit, om: Artifact | None, facts: Mapping) -> str:
    if om is not None:
        om_line = OM_BUILT.format(soc=facts.get("soc_version"), precision=facts.get("precision"),
                                  cann=facts.get("cann_version"))
    elif recipe.om is not None:
        om_line = OM_TO_BUILD.format(stem=unit.stem)
    else:
        om_line = "The recipe builds no OM: replay against the ONNX or another target."
    variant = f" (om variant {unit.variant})" if unit.variant else ""
    return README.format(stem=unit.stem, recipe=recipe.name, variant=variant, om_line=om_line)

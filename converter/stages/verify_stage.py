"""The `verify` stage: one target (paddle, onnx:<provider>, emulate:<mode>, om) against the reference
stage's outputs, judged with the recipe's verify section. `npuconv verify` runs the same comparison
(`verify_artifacts`) without caching it; `npuconv build` runs it as a stage, cached like every other."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converter.artifacts import Artifact, file_digest, write_bytes_atomic, write_json_atomic
from converter.recipe.model import Recipe
from converter.stage import Progress, Stage, StageOutput
from converter.versions import tool_versions


def verify_artifacts(recipe: Recipe, target, onnx: Artifact, reference: Artifact, *, export: Artifact | None = None,
                     om_path: Path | None = None, om_cfg=None, rebuild_hint: str = "", layerwise: bool = False,
                     save: Path | None = None, step: Callable[[str], None] | None = None):
    """The VerifyReport of `target` against the reference artifact (computed on `onnx`)."""
    from converter.passes.emulate_fp16 import config_for
    from converter.runners.factory import TargetContext
    from converter.runners.om_card import check_om_card, load_om_card
    from converter.verify.parity import VerifyRun, target_precision, verify
    from converter.verify.reference import ReferenceSet

    graphs = {g["role"]: onnx.path(g["role"]) for g in onnx.card["graphs"]}
    shown = ", ".join(onnx.published.get(role, str(path)) for role, path in graphs.items())
    origin = f"onnxruntime:cpu {shown}" + (" (host loop)" if onnx.card.get("host_loop") else "")
    run = VerifyRun(recipe.name, ReferenceSet(reference.root, dict(reference.card), origin), recipe.verify,
                    onnx_path=graphs.get("model"), recipe=recipe, om=om_cfg)
    om_card = None
    if target.kind == "om":
        # checked before any NPU runtime is looked for: a stale OM is refused on every machine
        om_card = load_om_card(om_path)
        check_om_card(om_path, om_card, reference.card["onnx_sha256"], rebuild_hint=rebuild_hint)
    mode = target.arg if target.kind == "emulate" else "fp16"
    ctx = TargetContext(graphs, onnx.card.get("host_loop"), paddle_files(recipe, export), om_path, om_card,
                        config_for(om_cfg, mode) if target.kind == "emulate" else None)
    return verify(run, target, ctx, target_precision(target, om_card), layerwise=layerwise, save_dir=save, on_step=step)


def paddle_files(recipe: Recipe, export: Artifact | None) -> tuple[Path, Path] | None:
    """The Paddle model a `paddle` target runs: the export stage's output, else a Paddle source."""
    if export is not None:
        return export.path("model"), export.path("params")
    src = recipe.source
    return (src.model_file(), src.params_file()) if getattr(src, "format", None) == "paddle" else None


@dataclass(frozen=True)
class VerifySection:
    """One verify target of one recipe (and om variant)."""

    recipe: Recipe
    target: str
    variant: str | None = None

    def key_json(self) -> dict:
        verify = self.recipe.verify.model_dump(mode="json", exclude={"data", "samples", "seed", "targets"})
        return {"target": self.target, "verify": verify}


class VerifyStage(Stage):
    name = "verify"
    reads = ("reference", "onnx", "export", "om")

    def key_payload(self, section: VerifySection, upstream: Mapping[str, Artifact]) -> Mapping[str, Any]:
        task = section.recipe.verify.task
        dict_file = task.dict if getattr(task, "kind", None) == "ctc" else None  # BaseModel.dict is a method
        return {"task_dict": file_digest(Path(dict_file)) if dict_file and Path(dict_file).is_file() else None,
                "tools": tool_versions(("onnxruntime", "paddlepaddle", "numpy"))}

    def run(self, section: VerifySection, upstream: Mapping[str, Artifact], scratch: Path, progress: Progress) -> StageOutput:
        from converter.recipe.om import select_variant
        from converter.runners.factory import parse_target
        from converter.verify.junit import junit_xml

        om = upstream.get("om")
        om_path = Path(om.published.get("model") or next(iter(om.published.values()))) if om is not None else None
        report = verify_artifacts(section.recipe, parse_target(section.target), upstream["onnx"], upstream["reference"],
                                  export=upstream.get("export"), om_path=om_path,
                                  om_cfg=select_variant(section.recipe.om, section.variant), step=progress)
        data = report.to_json()
        write_json_atomic(scratch / "report.json", data)
        write_bytes_atomic(scratch / "junit.xml", junit_xml(report))
        summary = {k: data[k] for k in ("passed", "target", "precision", "samples", "outputs") if k in data}
        if "task" in data:
            summary["task"] = {"passed": data["task"]["passed"]}
        return StageOutput({"report": "report.json", "junit": "junit.xml"}, summary)

    def published_name(self, role: str, stem: str) -> str | None:
        return None

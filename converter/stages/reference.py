"""The `reference` stage: the verification samples (seeded random data from the recipe's inputs, or
`verify.data`) and ONNX Runtime CPU's outputs on the onnx artifact (through the host loop for a split
model). `verify` compares any target with these; a saved reference carries them to the device box."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converter.artifacts import Artifact, file_digest
from converter.recipe.model import Recipe
from converter.stage import Progress, Stage, StageOutput
from converter.versions import tool_versions


@dataclass(frozen=True)
class ReferenceSection:
    """Where the samples come from: the recipe's inputs, preprocess and verify.data/samples/seed;
    `raw_images` ("RGB"/"BGR") also keeps the resized uint8 images for an OM that preprocesses with AIPP."""

    recipe: Recipe
    samples: int | None = None
    raw_images: str | None = None

    def key_json(self) -> dict:
        r = self.recipe
        return {"inputs": [s.model_dump(mode="json") for s in r.inputs],
                "preprocess": r.preprocess.model_dump(mode="json") if r.preprocess else None,
                "data": r.verify.data is not None, "samples": self.samples or r.verify.samples, "seed": r.verify.seed,
                "raw_images": self.raw_images}


def data_files(recipe: Recipe) -> list[Path]:
    """The files verify.data names (one file, or every file of the folder)."""
    data = recipe.verify.data
    if data is None or not data.exists():
        return []
    if data.is_file():
        return [data]
    return sorted(p for p in data.rglob("*") if p.is_file())


class ReferenceStage(Stage):
    name = "reference"
    reads = ("onnx",)

    def key_payload(self, section: ReferenceSection, upstream: Mapping[str, Artifact]) -> Mapping[str, Any]:
        files = data_files(section.recipe)
        root = section.recipe.verify.data
        return {"data": {str(p.relative_to(root) if root.is_dir() else p.name): file_digest(p) for p in files},
                "tools": tool_versions(("onnxruntime", "numpy"))}

    def run(self, section: ReferenceSection, upstream: Mapping[str, Artifact], scratch: Path,
            progress: Progress) -> StageOutput:
        from converter.runners.graphs import artifact_runner
        from converter.verify.inputs import load_samples
        from converter.verify.reference import write_samples

        onnx = upstream["onnx"]
        samples = load_samples(section.recipe, section.samples, raw_images=section.raw_images)
        progress(f"reference: ONNX Runtime CPU on {len(samples)} sample(s)")
        outputs, rows = [], []
        with artifact_runner(onnx) as runner:
            for sample in samples:
                outputs.append(runner.infer(sample.feed))
                # a split decoder: only the rows its steps wrote are the model's answer
                rows.append({k: list(v) for k, v in getattr(runner, "valid_rows", {}).items()})
        files = write_samples(scratch, [s.feed for s in samples], outputs, [s.target_feed for s in samples])
        card = {
            "recipe": section.recipe.name, "samples": [s.label for s in samples],
            "outputs": list(outputs[0]) if outputs else [], "onnx_sha256": onnx.digests_of_graphs(),
            "onnx_key": onnx.key, "raw_images": section.raw_images, "host_loop": onnx.card.get("host_loop"),
            "early_exit": onnx.card.get("early_exit"), "rows": rows if any(rows) else None,
        }
        return StageOutput(files, card)

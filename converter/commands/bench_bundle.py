"""`npuconv bench BUNDLE.tar.gz`: on the device box, time what a bundle carries (its ONNX graph(s), its OM
or one passed with --om) on the saved reference's inputs, with the bench section and SLOs of the recipe it
was built from. Nothing is converted, and no Paddle, paddle2onnx or onnxsim is needed."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

# what a bundle carries: the Paddle source and the raw export stay on the build server
BUNDLE_BACKENDS = ("onnx", "onnx-file", "om")


def bundle_groups(paths: list[Path], backends, base: str, threads: int | None, om: Path | None,
                  stack: contextlib.ExitStack) -> list:
    """One bench Group per bundle, unpacked into a temporary directory that `stack` removes once measured."""
    from converter.artifacts import file_digest
    from converter.bench.backends import spec_for
    from converter.bench.engine import Plan
    from converter.bench.flops import count_flops
    from converter.bench.report import ModelEntry
    from converter.bench.suite import Group
    from converter.errors import InputError
    from converter.pipeline.bundle import open_bundle
    from converter.recipe.bench import BenchConfig
    from converter.runners.factory import Target, TargetContext, check_available
    from converter.runners.om_card import saved_reference_om
    from converter.verify.reference import load_saved

    refused = [b.label for b in backends if b.kind not in BUNDLE_BACKENDS]
    if paths and refused:
        raise InputError(f"--backend {', '.join(refused)}: a bundle carries no Paddle model or raw export",
                         hint="bench a bundle with --backend om, onnx[:provider] or onnx-file:PATH; "
                              "the recipe's other backends on the build server")
    groups = []
    for path in paths:
        workdir = Path(tempfile.mkdtemp(prefix="npuconv-bundle-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        bundle = open_bundle(path, workdir)
        saved, _ = load_saved(bundle.reference)
        om_path = om_card = None
        if any(b.kind == "om" for b in backends):
            om_path, om_card = saved_reference_om(om or bundle.om(), path.name, saved.facts["onnx_sha256"],
                                                  "rebuild the OM from this bundle's ONNX (atc/build_om.sh)")
            check_available(Target("om"), TargetContext(om=om_path, om_card=om_card))
        cfg = BenchConfig.model_validate(bundle.manifest.get("bench") or {})
        samples = saved.samples()
        graphs = bundle.onnx_graphs()
        onnx_path = graphs.get("model") or graphs["encoder"]  # a split decoder: its FLOPs are the encoder's
        feeds = [s.feed for s in samples]
        shapes = {name: list(value.shape) for name, value in feeds[0].items()}
        first = next(iter(shapes.values()))
        model = ModelEntry(bundle.manifest["recipe"], first[0] if first else 1, str(onnx_path),
                           file_digest(onnx_path), shapes, count_flops(onnx_path))
        loop = saved.facts.get("host_loop")
        specs = [spec_for(b, model.recipe, graphs, loop, None, om_path, threads, None) for b in backends]
        raw = [s.target_feed or s.feed for s in samples]
        plan = Plan(cfg.warmup_runs(), cfg.warmup_seconds(), cfg.timed_iterations(), cfg.duration_s)
        groups.append(Group(model, tuple(specs), tuple(raw if s.kind == "om" or s.options.get("om") else feeds
                                                          for s in specs), plan, cfg.slo, base))
    return groups

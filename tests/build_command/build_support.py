"""Helpers for the `npuconv build` tests: recipes over small real models, the environments that put the
recording fake atc (and a fake CANN home) or a fake NPU runtime in reach, and independent file digests."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
FAKE_ATC = REPO / "tests" / "om" / "fake_atc" / "atc"
SMALL_INPUTS = {
    "crnn": [{"name": "x", "shape": [1, 3, 32, 64], "range": [-1.0, 1.0]}],
    "two_inputs": [{"name": "image", "shape": [2, 3, 16, 16]}, {"name": "features", "shape": [2, 10], "range": [-3, 3]}],
}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_recipe(folder: Path, name: str, **data) -> Path:
    """`folder/<name>.yaml` (JSON is YAML); outputs under folder/out/<name> unless `output_dir` is given."""
    data = {"name": name, "output_dir": str(folder / "out" / name), **data}
    path = folder / f"{name}.yaml"
    path.write_text(json.dumps(data))
    return path


def paddle_recipe(folder: Path, model: str, model_dir: Path, name: str | None = None, **sections) -> Path:
    return write_recipe(folder, name or model, source={"format": "paddle", "model_dir": str(model_dir)},
                        inputs=SMALL_INPUTS[model], **sections)


def tiny_onnx(path: Path) -> Path:
    """x [1, 3, 8, 8] -> Conv (3 -> 4, fixed seeded weights) -> Relu -> y [1, 4, 8, 8]."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save

    weight = np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype("float32")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv0"),
         helper.make_node("Relu", ["c"], ["y"], name="relu0")], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="tests")
    model.ir_version = 8
    save(model, str(path))
    return path


def onnx_recipe(folder: Path, name: str, onnx_file: Path, **sections) -> Path:
    """A recipe for an ONNX file (no Paddle anywhere; onnx.parity off: there is no source model to run)."""
    return write_recipe(folder, name, source={"format": "onnx", "path": str(onnx_file)},
                        inputs=[{"name": "x", "shape": [1, 3, 8, 8]}], onnx={"parity": False}, **sections)


def fake_cann(root: Path, version: str = "8.0.RC2", mode: str = "onnx") -> dict[str, str]:
    """A CANN toolkit home holding the recording fake atc (bin/atc) and a version.cfg; the environment that
    finds it there (not on PATH). `mode` is the fake's FAKE_ATC_MODE ("onnx": the OM holds the ONNX)."""
    (root / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(FAKE_ATC, root / "bin" / "atc")
    (root / "version.cfg").write_text(f"Version={version}\n")
    return {"ASCEND_TOOLKIT_HOME": str(root), "ASCEND_HOME_PATH": "", "FAKE_ATC_MODE": mode,
            "FAKE_ATC_RECORD": str(root / "atc_record.jsonl"), "PATH": _path_without_atc()}


def _path_without_atc() -> str:
    return os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p and not (Path(p) / "atc").exists())


def no_atc() -> dict[str, str]:
    """An environment in which atc cannot be found."""
    return {"PATH": _path_without_atc(), "ASCEND_TOOLKIT_HOME": "", "ASCEND_HOME_PATH": "", "HOME": "/nonexistent"}


def fake_npu_runtime(root: Path) -> dict[str, str]:
    """A FAKE ais_bench package (the one tests/conftest.py defines: it runs an "OM" that is really an ONNX
    with ONNX Runtime and logs every call) under root; the environment that imports it (this repository
    first: the worker processes of `npuconv build` import it too)."""
    tree = ast.parse((REPO / "tests" / "conftest.py").read_text())
    source = next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                  and getattr(node.targets[0], "id", "") == "FAKE_AIS_BENCH")
    package = root / "ais_bench" / "infer"
    package.mkdir(parents=True, exist_ok=True)
    (root / "ais_bench" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "interface.py").write_text(source)
    rest = [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []
    return {"PYTHONPATH": os.pathsep.join([str(REPO), *rest, str(root)]), "FAKE_AIS_BENCH_LOG": str(root / "calls.jsonl")}


def rows(unit: dict) -> dict[str, dict]:
    """A unit's rows by label."""
    return {row["label"]: row for row in unit["stages"]}


def statuses(unit: dict) -> dict[str, str]:
    return {row["label"]: row["status"] for row in unit["stages"]}


def members(archive: Path) -> dict[str, bytes]:
    """Every file of a .tar.gz by name, with its bytes."""
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}

"""The wheel's explicit package list (needed to ship templates/ as converter.templates) stays complete."""

from __future__ import annotations

from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "converter").rglob("__init__.py")}
    assert on_disk | {"converter.templates"} == set(config["packages"])
    assert config["package-dir"] == {"converter.templates": "templates"}
    templates = [p.name for p in (REPO / "templates").iterdir()]
    assert templates and all(name.endswith(".j2") for name in templates)  # package-data ships "*.j2"


def test_the_conversion_stack_is_an_extra():
    """The device box installs the core only: Paddle, paddle2onnx and onnxsim come with `npuconv[convert]`,
    pinned exactly as the fix hint for known-bad versions says; onnx and onnxruntime stay in the core."""
    from converter.versions import CONVERT_STACK, PINNED_FIX

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = [req.split("=")[0].split(">")[0].split("<")[0].strip().lower() for req in project["dependencies"]]
    convert = project["optional-dependencies"]["convert"]
    assert not set(names) & set(CONVERT_STACK)
    assert {"onnx", "onnxruntime", "numpy"} <= set(names)
    assert sorted(req.split("==")[0] for req in convert) == sorted(CONVERT_STACK)
    for req in convert:
        assert "==" in req and req in PINNED_FIX, req

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

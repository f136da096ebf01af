"""atc's command line, built from the recipe: a list of unquoted `--key=value` tokens (run with an argv
list, never through a shell; the build script quotes each token itself)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from converter import ascend as opt
from converter.recipe.model import Recipe
from converter.recipe.om import OmConfig
from converter.stages.atc.validate import DynamicPlan, render_value


@dataclass(frozen=True)
class AtcPaths:
    """Where atc reads and writes: the ONNX, the output stem (atc appends `.om`) and generated cfg files."""

    model: str
    output: str
    keep_dtype: str | None = None
    modify_mixlist: str | None = None
    insert_op_conf: str | None = None


def input_shape_arg(shapes: Mapping[str, list[int]], axes: Mapping[str, tuple[int, ...]]) -> str:
    """`x:1,3,48,320` (`;` between inputs), with `-1` on every dynamic axis."""
    parts = []
    for name, shape in shapes.items():
        dims = ["-1" if i in axes.get(name, ()) else str(d) for i, d in enumerate(shape)]
        parts.append(f"{name}:{','.join(dims)}")
    return ";".join(parts)


def build_argv(recipe: Recipe, cfg: OmConfig, dynamic: DynamicPlan, paths: AtcPaths, program: str = "atc",
               graph_shapes: Mapping[str, list[int]] | None = None) -> list[str]:
    """The full atc argv, in a fixed order: model, framework, output, soc, formats and shapes, gears,
    precision, dtype files, implmode, AIPP, cross-compile target, then extra_args sorted by key.
    `graph_shapes` replaces the recipe's input shapes for a graph with other inputs (a decoder step)."""
    shapes = graph_shapes or recipe.input_shapes()
    argv = [
        program,
        f"--model={paths.model}",
        f"--framework={opt.FRAMEWORK_ONNX}",
        f"--output={paths.output}",
        f"--soc_version={cfg.soc_version}",
        f"--input_format={cfg.input_format}",
        f"--input_shape={input_shape_arg(shapes, dynamic.axes)}",
    ]
    if dynamic.option:
        argv.append(f"--{dynamic.option}={dynamic.value}")
    implmode_ops = ",".join(cfg.optypelist_for_implmode or ())
    optional = (  # atc's order of mention in its help text; unset options are left out
        ("precision_mode_v2", cfg.precision_mode_v2), ("precision_mode", cfg.precision_mode),
        ("keep_dtype", paths.keep_dtype), ("modify_mixlist", paths.modify_mixlist),
        ("op_select_implmode", cfg.op_select_implmode), ("optypelist_for_implmode", implmode_ops),
        ("insert_op_conf", paths.insert_op_conf),
        ("host_env_os", cfg.host_env_os), ("host_env_cpu", cfg.host_env_cpu),
    )
    argv += [f"--{key}={value}" for key, value in optional if value]
    for key in sorted(cfg.extra_args):
        argv.append(f"--{key}={render_value(cfg.extra_args[key])}")
    return argv

"""Runs in a subprocess (the user's dygraph code and paddle stay out of the npuconv process): build the
Layer with the recipe's builder, load the .pdparams into it, run it on the parent's feed, save it with
paddle.jit.to_static + paddle.jit.save, and run the saved model with Paddle Inference on the same feed.

Usage: python -m converter.stages.export_worker JOB.json
JOB: {"builder", "kwargs", "weights", "search_path", "input_spec", "feed_npz", "save_prefix", "result"}
Stdout: `npuconv-progress: TEXT` lines (anything else is paddle's and goes to the parent's log).
The outcome is one JSON document written to JOB["result"]: {"ok": true, ...facts} or
{"ok": false, "kind", "message", "hint", "details", "context"}; no result file means the worker crashed."""

from __future__ import annotations

import copy
import difflib
import json
import linecache
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from converter.stages.export_problem import (IMPORT_HINT, Problem, at, describe, first_line, not_found_message,
                                             source_context, user_frame)
from converter.stages.export_weights import dtype_name, load_weights

PROGRESS = "npuconv-progress: "
TO_STATIC_HINT = ("rewrite that line with paddle ops on tensors (no Python lists, numpy, .item() or .tolist() on tensor "
                  "values; every branch returns the same structure); then rerun npuconv export")
# paddle/jit/dy2static/error.py attaches the original (untransformed) source locations under this name.
DY2ST_ERROR_DATA = "Error data about original source code information and traceback."


def _say(text: str) -> None:
    sys.stdout.write(PROGRESS + text + "\n")
    sys.stdout.flush()


def _import(module: str, search_path: list[str]):
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        name = exc.name or ""
        if name and (module == name or module.startswith(name + ".")):
            raise Problem("import", not_found_message(module, name, search_path), IMPORT_HINT) from None
        where = user_frame(exc.__traceback__, search_path)
        raise Problem("import", f"importing the builder module {module!r} failed: {first_line(exc)}{at(where)}",
                      f"install {name!r} into this Python ({sys.executable})" if name else IMPORT_HINT) from None
    except SyntaxError as exc:
        where = (exc.filename or module, exc.lineno or 0, (exc.text or "").strip())
        raise Problem("import", f"the builder module {module!r} does not parse: {exc.msg}{at(where)}",
                      "fix the syntax error") from None
    except Exception as exc:
        where = user_frame(exc.__traceback__, search_path)
        raise Problem("import", f"importing the builder module {module!r} raised {first_line(exc)}{at(where)}",
                      "fix the module so that it imports") from None


def _is_layer(obj: Any) -> bool:
    # A Layer cannot exist before paddle is imported: code that never imported it fails without the ~2 s import.
    paddle = sys.modules.get("paddle")
    return paddle is not None and isinstance(obj, paddle.nn.Layer)


def build(job: dict) -> Any:
    """The Layer the builder returns; every way of not getting one is a Problem."""
    builder, search_path = job["builder"], job["search_path"]
    module_name, _, attribute = builder.partition(":")
    module = _import(module_name, search_path)
    obj: Any = module
    for part in attribute.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            guess = difflib.get_close_matches(part, names, n=1)
            where = getattr(module, "__file__", None) or module_name
            raise Problem("import", f"{module_name!r} ({where}) has no attribute {part!r}"
                          + (f" (did you mean {guess[0]!r}?)" if guess else ""),
                          "export.builder is module:function or module:Class")
        obj = getattr(obj, part)
    call = f"{builder}({', '.join(f'{k}={v!r}' for k, v in job['kwargs'].items())})"
    if _is_layer(obj) or not callable(obj):
        raise Problem("not_layer", f"{builder} is {describe(obj)}, not a function or class that builds the model",
                      "name the function or the paddle.nn.Layer subclass that builds the model")
    try:
        layer = obj(**job["kwargs"])
    except Exception as exc:
        where = user_frame(exc.__traceback__, search_path)
        raise Problem("call", f"{call} raised {first_line(exc)}{at(where)}",
                      "fix the builder, or the keyword arguments in export.kwargs") from None
    if not _is_layer(layer):
        raise Problem("not_layer", f"{call} returned {describe(layer)}, not a paddle.nn.Layer",
                      "the builder must return the model itself; if it returns (model, ...), "
                      "write a small function that returns only the model and name that")
    return layer


def dygraph_outputs(layer: Any, job: dict, feed: dict) -> list:
    """The Layer's outputs on the feed, flattened as paddle.jit.save flattens them (dict keys sorted)."""
    import paddle

    shapes = {s["name"]: list(feed[s["name"]].shape) for s in job["input_spec"]}
    try:
        with paddle.no_grad():
            out = layer(*[paddle.to_tensor(feed[s["name"]]) for s in job["input_spec"]])
    except Exception as exc:
        where = user_frame(exc.__traceback__, job["search_path"])
        raise Problem("forward", f"the dygraph model fails on the recipe's inputs {shapes}: {first_line(exc)}{at(where)}",
                      "`inputs:` must give shapes and dtypes the model's forward() accepts, "
                      "in export.input_spec order") from None
    return [t.numpy() for t in paddle.utils.flatten(out) if isinstance(t, paddle.Tensor)]


def save(layer: Any, job: dict) -> Any:
    """paddle.jit.to_static + paddle.jit.save; a conversion failure names the user's source line."""
    import paddle

    specs = [paddle.static.InputSpec([None if d == -1 else d for d in s["shape"]], s["dtype"], s["name"])
             for s in job["input_spec"]]
    try:
        static = paddle.jit.to_static(layer, input_spec=specs, full_graph=True)
        paddle.jit.save(static, job["save_prefix"])
    except Exception as exc:
        raise _to_static_problem(exc, job["search_path"]) from None
    return static


def _to_static_problem(exc: Exception, search_path: list[str]) -> Problem:
    data = getattr(exc, DY2ST_ERROR_DATA, None)
    where, cause = None, exc
    if data is not None:
        for filepath, lineno, _func, _code in data.origin_traceback:
            info = data.origin_info_map.get((filepath, lineno))
            if info is not None:
                where = (info.location.filepath, info.location.lineno, info.function_name)
        cause = data.error_value if isinstance(data.error_value, BaseException) else exc
    if where is None:
        frame = user_frame(exc.__traceback__, search_path)
        where = (frame[0], frame[1], "") if frame else None
    if where is None:
        return Problem("to_static", f"paddle.jit.to_static / paddle.jit.save failed: {first_line(cause)}", TO_STATIC_HINT)
    path, lineno, func = where
    code = linecache.getline(path, lineno).strip()
    return Problem("to_static", f"paddle.jit.to_static cannot convert {path}:{lineno}{f' (in {func})' if func else ''}: "
                   f"{code} -- {first_line(cause)}", TO_STATIC_HINT, context=source_context(path, lineno),
                   file=path, line=lineno, code=code, function=func, error=first_line(cause))


def saved_facts(static: Any, prefix: str, feed: dict, reference: list) -> dict:
    """The files paddle.jit.save wrote, the outputs (names from Paddle Inference, shapes from the program)
    and the saved model's outputs on the feed compared with the dygraph ones."""
    import paddle

    from converter.compare import FP32, compare_outputs
    from converter.errors import NpuconvError
    from converter.runners.paddle import PaddleRunner

    folder, stem = Path(prefix).parent, Path(prefix).name
    model = next((f"{stem}{s}" for s in (".json", ".pdmodel") if (folder / f"{stem}{s}").is_file()), None)
    params = f"{stem}.pdiparams"
    if model is None or not (folder / params).is_file():
        raise Problem("save", f"paddle.jit.save wrote {sorted(p.name for p in folder.iterdir())}: no program and parameters "
                      "file; a model without parameters or buffers cannot be exported",
                      "export a Layer that holds its weights")
    try:
        values = paddle.utils.flatten(static.forward.concrete_program.outputs)
        shapes = [[int(d) for d in v.shape] for v in values]
        dtypes = [dtype_name(v) for v in values]
    except Exception:  # the program's outputs are best-effort facts for the card
        shapes = dtypes = None
    try:
        with PaddleRunner(folder / model, folder / params) as runner:
            actual = runner.infer(feed)
    except NpuconvError as exc:
        raise Problem("run", f"Paddle Inference cannot load the saved model: {exc.message}", exc.hint) from None
    except Exception as exc:
        raise Problem("run", f"the saved model fails in Paddle Inference on the recipe's inputs: {first_line(exc)}",
                      "the dygraph model runs on these inputs, the saved one does not: check export.input_spec, "
                      "and shape-dependent Python code in forward()") from None
    outputs = [{"name": name, "shape": shapes[i] if shapes and i < len(shapes) else None,
                "dtype": dtypes[i] if dtypes and i < len(dtypes) else str(actual[name].dtype)}
               for i, name in enumerate(actual)]
    windows, notes = trailing_rows(reference, list(actual.values()), list(actual))
    comparison = compare_outputs(dict(zip(actual, reference)), actual, FP32, windows=windows)  # the parent judges
    return {"model_file": model, "params_file": params, "outputs": outputs, "paddle": paddle.__version__,
            "parity": {"reference": "dygraph", "outputs_dygraph": len(reference), "outputs_saved": len(actual),
                       "outputs": comparison.to_json(), "notes": notes}}


def trailing_rows(reference: list, saved: list, names: list[str]) -> tuple[dict, list[str]]:
    """A decoder loop that breaks early returns one more row from the saved (static) model than from
    dygraph: to_static's loop counter has moved on when `break` leaves the loop, so `preds[:, :i + 1]` takes
    a row no step wrote. Compare the rows dygraph returned, and say so."""
    windows, notes = {}, []
    for name, ref, act in zip(names, reference, saved):
        if ref.ndim != act.ndim or ref.shape == act.shape:
            continue
        diff = [axis for axis, (r, a) in enumerate(zip(ref.shape, act.shape)) if r != a]
        if len(diff) == 1 and act.shape[diff[0]] == ref.shape[diff[0]] + 1:
            axis = diff[0]
            windows[name] = (axis, ref.shape[axis])
            notes.append(f"{name}: the saved model returns {act.shape[axis]} rows along axis {axis}, dygraph "
                         f"{ref.shape[axis]}: to_static's loop counter after `break` adds a row no step wrote; "
                         f"the first {ref.shape[axis]} are compared")
    return windows, notes


def export(job: dict) -> dict:
    """Every step; returns the facts for the parent's card."""
    import numpy as np

    sys.path[:0] = job["search_path"]
    _say(f"importing {job['builder']}")
    layer = build(job)
    _say("loading the weights")
    tensors = load_weights(layer, job["weights"])
    layer.eval()
    with np.load(job["feed_npz"]) as data:
        feed = {k: data[k] for k in data.files}
    _say("running the dygraph model")
    # On a copy: a forward() that keeps Python state on `self` must not change what gets traced, so the
    # saved model is exactly what to_static makes of the freshly loaded layer.
    try:
        twin, reference_of = copy.deepcopy(layer), "dygraph"
    except Exception:
        twin, reference_of = layer, "dygraph (the same instance: it cannot be deep-copied)"
    reference = dygraph_outputs(twin, job, feed)
    _say("paddle.jit.to_static + paddle.jit.save")
    static = save(layer, job)
    _say("running the saved model with Paddle Inference")
    facts = saved_facts(static, job["save_prefix"], feed, reference)
    facts["parity"]["reference"] = reference_of
    module = sys.modules.get(job["builder"].partition(":")[0])
    return {"ok": True, **facts, "tensors": tensors, "module_file": getattr(module, "__file__", None)}


def main() -> None:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ["FLAGS_enable_pir_api"] = "1"  # Paddle 3 saves inference.json (PIR) whatever the user's environment says
    with open(sys.argv[1], encoding="utf-8") as f:
        job = json.load(f)
    try:
        result = export(job)
    except Problem as problem:
        result = problem.report
    tmp = job["result"] + ".part"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, default=str)
    os.replace(tmp, job["result"])


if __name__ == "__main__":
    main()

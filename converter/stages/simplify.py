"""onnxsim with its check on, then constants moved to initializers."""

from __future__ import annotations

from converter.errors import StageFailed


def simplify_onnx(model, check_n: int = 1, test_shapes: dict[str, list[int]] | None = None):
    """Simplify with onnxsim (constant folding, shape folding, dead-code removal). onnxsim compares the
    result with the input on `check_n` random inputs (of `test_shapes` where inputs keep symbolic dims);
    a failed check is a StageFailed."""
    import contextlib
    import io

    import onnxsim

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # onnxsim prints its check progress
            simplified, ok = onnxsim.simplify(model, check_n=check_n, test_input_shapes=test_shapes)
    except Exception as exc:  # onnxsim raises bare RuntimeError/ValueError/onnx errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StageFailed(f"onnxsim failed: {first}",
                          hint="retry with --set onnx.simplify=false to keep the unsimplified graph") from None
    if not ok:
        raise StageFailed("onnxsim's check failed: the simplified model computes different outputs",
                          hint="retry with --set onnx.simplify=false and report the model to onnx-simplifier")
    return simplified


def constants_to_initializers(model):
    """Move top-level Constant nodes holding a tensor into initializers (atc and ORT fold them alike;
    the graph reads as weights + ops). Returns the number moved."""
    from onnx import numpy_helper

    keep = []
    moved = 0
    for node in model.graph.node:
        attrs = {a.name: a for a in node.attribute}
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and set(attrs) == {"value"}:
            tensor = numpy_helper.from_array(numpy_helper.to_array(attrs["value"].t), node.output[0])
            model.graph.initializer.append(tensor)
            moved += 1
        else:
            keep.append(node)
    if moved:
        del model.graph.node[:]
        model.graph.node.extend(keep)
    return moved

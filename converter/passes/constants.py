"""`constants_to_initializers`: top-level Constant nodes holding a tensor become initializers (atc and
ONNX Runtime fold them alike; the graph then reads as weights + ops)."""

from __future__ import annotations

from converter.passes.base import ModelSet, Pass, PassResult
from converter.passes.registry import register


@register
class ConstantsToInitializers(Pass):
    name = "constants_to_initializers"

    def run(self, models: ModelSet, config) -> PassResult:
        moved = 0
        out = {}
        for role, model in models.graphs.items():
            model, n = constants_to_initializers(model)
            out[role] = model
            moved += n
        if not moved:
            return PassResult(models)
        return PassResult(ModelSet(out, models.loop), notes=(f"{moved} Constant node(s) moved to initializers",))


def constants_to_initializers(model):
    """(copy of `model` with tensor Constants as initializers, number moved); `model` itself is returned
    unchanged when there is nothing to move."""
    import onnx
    from onnx import numpy_helper

    candidates = [n for n in model.graph.node if n.op_type == "Constant" and n.domain in ("", "ai.onnx")
                  and {a.name for a in n.attribute} == {"value"}]
    if not candidates:
        return model, 0
    model = onnx.ModelProto.FromString(model.SerializeToString())
    keep = []
    moved = 0
    for node in model.graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and {a.name for a in node.attribute} == {"value"}:
            value = next(a.t for a in node.attribute if a.name == "value")
            model.graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(value), node.output[0]))
            moved += 1
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    return model, moved

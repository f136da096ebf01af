"""Load the recipe's .pdparams into the built Layer; weights that do not fit are one Problem listing every
missing, unexpected, mis-shaped and mis-typed key (with shapes)."""

from __future__ import annotations

from typing import Any

from converter.stages.export_problem import Problem, describe, first_line


def dtype_name(value: Any) -> str:
    return str(value.dtype).replace("paddle.", "")


def load_weights(layer: Any, path: str) -> int:
    """Load the state dict into the layer; anything that does not fit is one Problem listing every key."""
    import paddle

    try:
        state = paddle.load(path)
    except Exception as exc:
        raise Problem("weights", f"cannot read export.weights {path} as a Paddle state dict: {first_line(exc)}",
                      "export.weights is a .pdparams file written by paddle.save(layer.state_dict())") from None
    if not isinstance(state, dict):
        raise Problem("weights", f"export.weights {path} holds {describe(state)}, not a state dict",
                      "save it with paddle.save(layer.state_dict())")
    expected = {k: (list(v.shape), dtype_name(v)) for k, v in layer.state_dict().items()}
    given = {k: (list(v.shape), dtype_name(v)) for k, v in state.items() if hasattr(v, "shape") and hasattr(v, "dtype")}
    missing = [{"key": k, "shape": expected[k][0]} for k in sorted(set(expected) - set(given))]
    unexpected = [{"key": k, "shape": given[k][0] if k in given else None} for k in sorted(set(state) - set(expected))]
    shared = sorted(set(expected) & set(given))
    mis_shaped = [{"key": k, "weights": given[k][0], "model": expected[k][0]} for k in shared
                  if given[k][0] != expected[k][0]]
    mis_typed = [{"key": k, "weights": given[k][1], "model": expected[k][1]} for k in shared
                 if given[k][0] == expected[k][0] and given[k][1] != expected[k][1]]
    if missing or unexpected or mis_shaped or mis_typed:
        parts = [_listing("missing", missing, lambda m: f"{m['key']} {m['shape']}"),
                 _listing("unexpected", unexpected, lambda m: f"{m['key']} {m['shape']}"),
                 _listing("mis-shaped", mis_shaped, lambda m: f"{m['key']}: weights {m['weights']}, model {m['model']}"),
                 _listing("mis-typed", mis_typed, lambda m: f"{m['key']}: weights {m['weights']}, model {m['model']}")]
        hint = prefix_hint(set(expected) - set(given), set(state) - set(expected)) or (
            "the weights must come from the same architecture: check export.builder and export.kwargs "
            "(keys are the layer's structured names, as layer.state_dict() gives them)")
        raise Problem("weights", f"export.weights {path} does not fit the model: " + "; ".join(p for p in parts if p),
                      hint, missing=missing, unexpected=unexpected, mis_shaped=mis_shaped, mis_typed=mis_typed)
    layer.set_state_dict(state)
    return len(given)


def prefix_hint(missing: set[str], unexpected: set[str]) -> str | None:
    """Keys saved from a wrapper (`model.backbone.conv.weight` for `backbone.conv.weight`), or from a
    sub-layer of the built model: the most common reason nothing fits."""
    for longer, shorter, whose in ((unexpected, missing, "the file's"), (missing, unexpected, "the model's")):
        for key in sorted(shorter):
            prefix = next((k[: -len(key)] for k in sorted(longer) if k.endswith("." + key)), None)
            if prefix and sum(k.startswith(prefix) and k[len(prefix):] in shorter for k in longer) * 2 >= len(shorter):
                return (f"{whose} keys carry the prefix {prefix!r}: save the matching layer's state_dict(), "
                        "or name a builder that returns that layer")
    return None


def _listing(what: str, items: list[dict], show, limit: int = 8) -> str:
    if not items:
        return ""
    shown = ", ".join(show(i) for i in items[:limit])
    more = f", ... {len(items) - limit} more" if len(items) > limit else ""
    return f"{len(items)} {what} ({shown}{more})"

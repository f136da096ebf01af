"""An OM's card (`<stem>.om.card.json`, written beside the OM by the om stage and by the emitted build
script): what the OM was built from. Whoever runs an OM reads its facts here — the precision class, the
ONNX digest, the graphs and host loop — never from today's recipe or the file name."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from converter.errors import InputError


def card_path(om: Path) -> Path:
    """`<stem>.om.card.json` beside `<stem>.om` (or `<stem>.<role>.om` of a split model)."""
    name = om.name
    stem = name[:-3] if name.endswith(".om") else name
    for role in (".encoder", ".step"):
        if stem.endswith(role):
            stem = stem[: -len(role)]
    return om.with_name(f"{stem}.om.card.json")


def load_om_card(om: Path) -> dict[str, Any]:
    """The card of an OM; InputError when it is missing or unreadable (an OM without its card cannot be
    checked against the ONNX it claims to compute)."""
    path = card_path(om)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        card = record["card"]
        card["onnx_sha256"], card["precision"]  # noqa: B018 - the two facts every consumer needs
    except FileNotFoundError:
        raise InputError(f"{om} has no card ({path.name} is missing beside it), so npuconv cannot tell what it was "
                         "built from", hint="build the OM with `npuconv om RECIPE` or the script from --emit-script "
                         "(both write the card)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"cannot read the OM card {path}: {exc}", hint="rebuild the OM with `npuconv om RECIPE`") from None
    return card


def check_om_card(om: Path, card: Mapping[str, Any], onnx_digests: Mapping[str, str], rebuild_hint: str) -> None:
    """Refuse an OM built from another ONNX than the current one (a stale OM would be compared with the
    wrong model and the wrong tolerance class)."""
    built = card["onnx_sha256"]
    stale = [role for role, digest in built.items() if onnx_digests.get(role) != digest]
    if stale or set(built) != set(onnx_digests):
        role = (stale or list(built))[0]
        raise InputError(f"{om} was built from another ONNX than the recipe's current one ({role}: OM card "
                         f"{str(built.get(role))[:12]}..., current {str(onnx_digests.get(role))[:12]}...)",
                         hint=rebuild_hint)


def saved_reference_om(om: Path | None, where: str, onnx_digests: Mapping[str, str], rebuild_hint: str) -> tuple[Path, dict]:
    """The OM a replay of a saved reference (a bundle's, or a --save directory) runs, with its card: refused
    when there is none, or when it was built from another ONNX than the one the reference was computed on."""
    if om is None:
        raise InputError(f"{where} holds no OM (atc did not run where it was made)",
                         hint="build the OM with the bundle's atc/build_om.sh, then pass it with --om FILE")
    card = load_om_card(om)
    check_om_card(om, card, onnx_digests, rebuild_hint=rebuild_hint)
    return om, card


"""Print what the onnx stage did to a model's ops, as a Markdown table: the raw export (Loop/If bodies
included) against each graph the model now consists of. Reads the card `npuconv onnx` published.

Usage: python bench/op_table.py build/slanet_plus/slanet_plus.card.json [--ops Loop If ScatterElements ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("card", type=Path)
    ap.add_argument("--ops", nargs="*", help="only these op types (default: every op that changed)")
    args = ap.parse_args()
    card = json.loads(args.card.read_text())["card"]
    before = card["ops_before"]
    graphs = card["graphs"]
    after = {g["role"]: g["ops"] for g in graphs}
    ops = args.ops or sorted(op for op in set(before) | {o for g in after.values() for o in g}
                             if before.get(op, 0) != sum(g.get(op, 0) for g in after.values()))
    roles = [g["role"] for g in graphs]
    print("| op | raw export (loop body included) | " + " | ".join(roles) + " |")
    print("|---|---:|" + "---:|" * len(roles))
    for op in ops:
        print(f"| {op} | {before.get(op, 0)} | " + " | ".join(str(after[r].get(op, 0)) for r in roles) + " |")
    print(f"| **nodes** | {card['nodes_before']} (top level) | " + " | ".join(str(g["nodes"]) for g in graphs) + " |")


if __name__ == "__main__":
    main()

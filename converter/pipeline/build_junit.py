"""`npuconv build --junit FILE`: one JUnit XML document for the whole build. Per unit, one testsuite with a
testcase per stage row (failed rows are failures, skipped rows are skipped, with the reason); and every
verify stage's own report (one testcase per output and sample, task checks too) as a testsuite of its
own, named for the unit and the target."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from converter.artifacts import write_bytes_atomic


def _stage_suite(result: dict[str, Any]) -> ET.Element:
    name = f"npuconv.build.{result['unit']}"
    suite = ET.Element("testsuite", name=name)
    counts = {"tests": 0, "failures": 0, "skipped": 0}
    for row in result["stages"]:
        counts["tests"] += 1
        case = ET.SubElement(suite, "testcase", classname=name, name=row.get("label", row["stage"]),
                             time=f"{row.get('seconds', 0.0):.3f}")
        reason = row.get("reason", "")
        if row["status"] == "failed":
            counts["failures"] += 1
            failure = ET.SubElement(case, "failure", message=reason, type=(row.get("error") or {}).get("type", "StageFailed"))
            failure.text = (row.get("error") or {}).get("hint", "")
        elif row["status"] == "skipped":
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=reason)
        else:
            ET.SubElement(case, "system-out").text = f"{row['status']}; " + ", ".join(
                f"{a['role']}: {a['path']} sha256 {a['sha256']}" for a in row.get("artifacts", []))
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("errors", "0")
    return suite


def _verify_suites(result: dict[str, Any]) -> list[ET.Element]:
    """The verify stages' own JUnit reports (kept in their cache entries), renamed for the unit."""
    suites = []
    for row in result["stages"]:
        junit = next((a["path"] for a in row.get("artifacts", []) if a["role"] == "junit"), None)
        if row["stage"] != "verify" or junit is None or not Path(junit).is_file():
            continue
        for suite in ET.parse(junit).getroot().iter("testsuite"):
            name = f"npuconv.verify.{result['unit']}.{row.get('target', '')}"
            suite.set("name", name)
            for case in suite.iter("testcase"):
                case.set("classname", name)
            suites.append(suite)
    return suites


def build_junit(results: Sequence[dict[str, Any]]) -> bytes:
    """The aggregated `<testsuites>` document."""
    root = ET.Element("testsuites", name="npuconv.build")
    total = {"tests": 0, "failures": 0, "skipped": 0}
    for result in results:
        for suite in [_stage_suite(result), *_verify_suites(result)]:
            root.append(suite)
            for key in total:
                total[key] += int(suite.get(key, "0"))
    for key, value in total.items():
        root.set(key, str(value))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def write_build_junit(results: Sequence[dict[str, Any]], path: Path) -> None:
    """Write the aggregated report to `path` (atomically)."""
    write_bytes_atomic(path, build_junit(results))

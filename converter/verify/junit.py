"""JUnit XML for CI: one testcase per output and sample (plus one per task check), failures carrying
the numbers. Written with xml.etree, atomically."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from converter.artifacts import write_bytes_atomic
from converter.verify.report import VerifyReport


def junit_xml(report: VerifyReport) -> bytes:
    """The report as a JUnit `<testsuites>` document."""
    suite_name = f"npuconv.verify.{report.recipe}.{report.target}"
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", name=suite_name)
    failures = 0
    cases = 0
    for check in report.checks:
        cases += 1
        case = ET.SubElement(suite, "testcase", classname=suite_name,
                             name=f"{check.output}[sample {check.sample}]", time="0")
        m, t = check.metrics, check.limits
        cosine = f">={t.cosine:g}" if check.cosine_judged else f">={t.cosine:g} not judged (both sides ~0)"
        numbers = (f"max_abs={m.max_abs:.6g} max_rel={m.max_rel:.6g} mean_abs={m.mean_abs:.6g} rmse={m.rmse:.6g} "
                   f"cosine={m.cosine:.8f} nan={m.nan} inf={m.inf} shape_match={m.shape_match} "
                   f"needed_max_abs={check.needed_max_abs:.6g} "
                   f"tolerance: |a-b|<={t.max_abs:g}+{t.rtol:g}*|b| cosine{cosine} ({t.source})")
        if not check.passed:
            failures += 1
            failure = ET.SubElement(case, "failure", message="; ".join(check.failures), type="ParityFailure")
            failure.text = numbers
        else:
            ET.SubElement(case, "system-out").text = numbers
    for task in report.tasks:
        cases += 1
        case = ET.SubElement(suite, "testcase", classname=suite_name,
                             name=f"task:{task.kind}:{task.output}[sample {task.sample}]", time="0")
        text = f"agreement={task.agreement:.4f} min_agreement={task.threshold:g}"
        if not task.passed:
            failures += 1
            ET.SubElement(case, "failure", message=text, type="TaskFailure").text = str(task.detail)
    suite.set("tests", str(cases))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suites.set("tests", str(cases))
    suites.set("failures", str(failures))
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)


def write_junit(report: VerifyReport, path: Path) -> None:
    """Write the report's JUnit XML to `path` (atomically)."""
    write_bytes_atomic(path, junit_xml(report))

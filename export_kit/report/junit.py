"""JUnit XML for CI systems: one test case per artifact x runtime/device x check, so each check shows."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from export_kit.results import VerifyResult
from export_kit.safeio.atomic import write_text
from export_kit.safeio.escape import xml


def junit_xml(rows: list[VerifyResult]) -> str:
    suite = ET.Element("testsuite", name="exportkit.verify")
    counts = {"tests": 0, "failures": 0, "skipped": 0}
    for row in rows:
        classname = xml(f"{row.artifact}.{row.runtime}.{row.device}")
        checks = row.checks or [{"name": "run", "passed": True, "detail": ""}]
        for check in checks:
            case = ET.SubElement(suite, "testcase", classname=classname, name=xml(check["name"]))
            counts["tests"] += 1
            if row.status == "skipped":
                ET.SubElement(case, "skipped", message=xml(row.reason))
                counts["skipped"] += 1
            elif not check["passed"]:
                failure = ET.SubElement(case, "failure", message=xml(check.get("detail") or "failed"))
                failure.text = xml(f"observed: {check.get('observed')}\nlimit: {check.get('limit')}")
                counts["failures"] += 1
    suite.attrib.update({k: str(v) for k, v in counts.items()})
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(rows: list[VerifyResult], path: Path) -> None:
    write_text(Path(path), junit_xml(rows))

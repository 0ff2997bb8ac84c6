"""Names and reasons from a folder are data wherever they are shown: report.md and report.html, JUnit XML, the
terminal. Each case is what an attacker who edits a folder would write."""

import re
import xml.etree.ElementTree as ET

from export_kit.report.html import render_html
from export_kit.report.junit import junit_xml
from export_kit.report.markdown import render
from export_kit.report.record import Report
from export_kit.results import VerifyResult
from export_kit.safeio.escape import terminal

IMAGE = "\n\n![t](http://127.0.0.1:8765/b.png)"
CLASSES = ["# H1 ![b](http:127.0.0.1:8765\\b.png)", "a|b", "plain"]
TITLE = "int8\x01\x1b]0;OWNED\x07"


def _hostile_report() -> Report:
    row = VerifyResult(f"onnx{IMAGE}", "onnx", "onnxruntime", "cpu", "fp32", accuracy=0.5, reference_accuracy=0.5,
                       per_class_delta=[0.0, 0.1, -0.1], reason=f"<img src=http://127.0.0.1:8765/c.png> {IMAGE}")
    return Report(folder="x", artifacts=[{"name": row.artifact, "precision": "fp32", "bytes": 10}],
                  classes=CLASSES, verify=[row.to_dict()])


def test_markdown_from_a_folder_opens_no_image_heading_or_column_and_the_page_loads_nothing(tmp_path):
    markdown = render(_hostile_report())
    page = render_html(markdown, tmp_path)
    assert "<img" not in page and page.count("<h1>") == 1  # the report's own title only
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    per_class = next(line for line in markdown.splitlines() if line.startswith("| onnx"))
    assert per_class.count(" | ") == markdown.splitlines()[markdown.splitlines().index(per_class) - 2].count(" | ")


def test_junit_from_a_folder_is_well_formed_xml():
    row = VerifyResult(TITLE, "onnx", "onnxruntime", "cpu", "fp32", status="failed", reason=TITLE,
                       checks=[{"name": TITLE, "passed": False, "detail": TITLE}])
    suite = ET.fromstring(junit_xml([row]))
    assert suite.attrib["failures"] == "1" and "\x1b" not in ET.tostring(suite, encoding="unicode")


def test_control_characters_are_shown_never_acted_on():
    assert terminal(TITLE) == "int8\\x01\\x1b]0;OWNED\\x07" and terminal("a\nb") == "a\nb"

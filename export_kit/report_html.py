"""report.html: report.md as a page that opens offline, pictures embedded, no external scripts or styles.

It converts only the Markdown that report_md writes (headings, tables, bullets, images, paragraphs), so the two
files cannot drift apart in content.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:1em 0;"
         "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}th{background:#f0f0f0}"
         "img{max-width:100%}")


def _inline(text: str) -> str:
    text = html.escape(text.replace("\\|", "|"))
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def _image(line: str, folder: Path) -> str:
    alt, src = re.match(r"!\[(.*)\]\((.*)\)", line).groups()
    data = base64.b64encode((folder / src).read_bytes()).decode()
    return f'<p><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></p>'


def _table(lines: list[str]) -> str:
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", ln.strip())[1:-1]] for ln in lines]
    head, body = cells[0], cells[2:]
    out = ["<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in body]
    return "\n".join(out) + "</table>"


def render_html(markdown: str, folder: Path) -> str:
    body, lines, i = [], markdown.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|"):
            end = i
            while end < len(lines) and lines[end].startswith("|"):
                end += 1
            body.append(_table(lines[i:end]))
            i = end
            continue
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
        elif line.startswith("!["):
            body.append(_image(line, folder))
        elif line.startswith("- "):
            body.append(f"<li>{_inline(line[2:])}</li>")
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
        i += 1
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>exportkit report</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")

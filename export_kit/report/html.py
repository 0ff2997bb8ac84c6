"""report.html: report.md rendered by markdown-it-py (CommonMark plus tables) as a page that opens offline, its
pictures embedded as data URIs, no external scripts or styles. Raw HTML in the Markdown is escaped, so a class
name or a reason cannot inject markup."""

from __future__ import annotations

import base64
from pathlib import Path

STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:1em 0;"
         "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}th{background:#f0f0f0}"
         "img{max-width:100%}")


#: Nothing the page names may load from anywhere: its pictures are data URIs and its style is inline, so even a
#: link or image that got past the escaping of report.md fetches nothing when the report is opened.
CSP = ("<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; "
       "style-src 'unsafe-inline'\">")


def _embed_images(tokens, folder: Path) -> None:
    """Point every image at its bytes: only plain files directly in ``folder`` (the plots), never a link."""
    for token in tokens:
        for child in token.children or []:
            src = child.attrGet("src") if child.type == "image" else None
            if not src or "/" in src or "\\" in src:
                continue
            path = folder / src
            if path.is_file() and not path.is_symlink():
                child.attrSet("src", "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode())


def render_html(markdown: str, folder: Path) -> str:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(markdown)
    _embed_images(tokens, Path(folder))
    body = md.renderer.render(tokens, md.options, {})
    return (f"<!doctype html><html><head><meta charset='utf-8'>{CSP}<title>exportkit report</title>"
            f"<style>{STYLE}</style></head><body>\n{body}</body></html>\n")

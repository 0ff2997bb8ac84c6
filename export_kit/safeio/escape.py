"""Text from a folder, escaped for the medium it is shown in. Artifact names, class names, reasons and paths come
from files anyone may have edited: in Markdown they could open a heading, a table column or a remote image that
the HTML report would fetch; in XML a control character makes the file unreadable; on a terminal an escape
sequence can retitle the window or clear the screen."""

from __future__ import annotations

import re

#: Characters that can open Markdown syntax mid-line (CommonMark lets a backslash escape each): links and images
#: need brackets, autolinks and HTML angle brackets, headings a hash, tables a pipe, code and emphasis the rest.
#: Parentheses, dots and dashes cannot start anything mid-line, so they stay as they are and the raw file reads.
_MARKDOWN = re.compile(r"([\\`*_\[\]<>#|])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: XML 1.0 allows tab, newline, carriage return and the printable ranges; nothing else may appear, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def markdown(text: object) -> str:
    """``text`` as literal Markdown on one line: every syntax character backslash-escaped, line breaks and other
    control characters shown as spaces."""
    return _MARKDOWN.sub(r"\\\1", _CONTROL.sub(" ", str(text)))


def markdown_with_code(text: str) -> str:
    """Like :func:`markdown`, but spans between backticks stay code spans (nothing in one is interpreted); the
    text must put names in them through :func:`code`, so a backtick in a name cannot end one early."""
    parts = _CONTROL.sub(" ", text).split("`")
    return "`".join(part if k % 2 else markdown(part) for k, part in enumerate(parts))


def code(name: object) -> str:
    """A name for a code span: its backticks replaced, since none can be escaped inside one."""
    return "`" + str(name).replace("`", "'") + "`"


def terminal(text: object) -> str:
    """``text`` with control characters (ESC, BEL, CR...) shown as ``\\xNN`` instead of acted on; newlines
    kept."""
    return _CONTROL.sub(lambda m: "\n" if m.group() == "\n" else f"\\x{ord(m.group()):02x}", str(text))


def xml(text: object) -> str:
    """``text`` without the characters XML 1.0 cannot hold (the serializer escapes the rest)."""
    return _NOT_XML.sub("\ufffd", str(text))

"""A small document model (headings, paragraphs, tables, images, links) and its Markdown and HTML.

Text in a document is plain text and may be agent-written (forum posts, flag evidence, hypothesis
titles): both renderers escape it, so it can neither inject HTML or script nor break a Markdown
table. Only links and anchors the report builds itself become markup, and those are checked
against a narrow pattern before they are written.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_ANCHOR = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,127}")
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# Markdown punctuation that could start emphasis, code, a link or a table cell inside a line.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~!#])")


@dataclass(frozen=True, slots=True)
class Link:
    """Text that links to an anchor in this document (``#id``) or to a file beside it."""

    text: str
    href: str

    def __post_init__(self) -> None:
        if not (self.href.startswith("#") and _ANCHOR.fullmatch(self.href[1:])) and not _FILE.fullmatch(
            self.href
        ):
            raise ValueError(f"not a link the report makes: {self.href!r}")


Inline = str | Link
Cell = Inline | tuple[Inline, ...]


@dataclass(frozen=True, slots=True)
class Heading:
    level: int
    text: str
    anchor: str | None = None


@dataclass(frozen=True, slots=True)
class Para:
    parts: tuple[Inline, ...]


@dataclass(frozen=True, slots=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    table_id: str | None = None


@dataclass(frozen=True, slots=True)
class Image:
    src: str
    alt: str


@dataclass(frozen=True, slots=True)
class Items:
    """A bulleted list; each item is a run of inline parts."""

    items: tuple[tuple[Inline, ...], ...]


@dataclass(frozen=True, slots=True)
class Code:
    text: str


Block = Heading | Para | Table | Image | Items | Code


def anchor_ok(anchor: str) -> str:
    """``anchor`` if it is one the renderers may write as an id, else ValueError."""
    if not _ANCHOR.fullmatch(anchor):
        raise ValueError(f"not an anchor: {anchor!r}")
    return anchor


def _parts(cell: Cell) -> tuple[Inline, ...]:
    return cell if isinstance(cell, tuple) else (cell,)


# -- Markdown ----------------------------------------------------------------------------------


def md_text(text: str) -> str:
    """Plain text for a Markdown line: HTML neutralised, emphasis/link/table characters escaped."""
    one_line = re.sub(r"\s+", " ", text)
    return _MD_SPECIAL.sub(r"\\\1", html.escape(one_line, quote=False))


def _md_inline(parts: Iterable[Inline]) -> str:
    out = []
    for p in parts:
        if isinstance(p, Link):
            out.append(f"[{md_text(p.text)}]({p.href})")
        else:
            out.append(md_text(p))
    return "".join(out)


def _md_block(block: Block) -> str:
    match block:
        case Heading(level, text, anchor):
            target = f'<a id="{anchor_ok(anchor)}"></a>\n' if anchor else ""
            return f"{target}{'#' * level} {md_text(text)}"
        case Para(parts):
            return _md_inline(parts)
        case Table(header, rows, _):
            lines = [
                "| " + " | ".join(md_text(h) for h in header) + " |",
                "|" + "|".join(" --- " for _ in header) + "|",
            ]
            lines += ["| " + " | ".join(_md_inline(_parts(c)) for c in row) + " |" for row in rows]
            return "\n".join(lines)
        case Image(src, alt):
            return f"![{md_text(alt)}]({Link(alt, src).href})"
        case Items(items):
            return "\n".join(f"- {_md_inline(item)}" for item in items)
        case Code(text):
            longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
            fence = "`" * max(3, longest + 1)
            return f"{fence}text\n{text}\n{fence}"
        case _:
            raise TypeError(f"not a block: {block!r}")


def to_markdown(blocks: Sequence[Block]) -> str:
    """The document as GitHub-flavoured Markdown; anchors are ``<a id>`` tags before headings."""
    return "\n\n".join(_md_block(b) for b in blocks) + "\n"


# -- HTML --------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:3px 7px;
vertical-align:top;text-align:left}th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;white-space:pre-wrap}img{max-width:100%}
h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}a{color:#0550ae}
"""
# Nothing in the page needs to run or fetch: forbid scripts outright, allow only local images.
_CSP = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
_NUMERIC = re.compile(r"[-+]?(\d[\d,]*\.?\d*|\.\d+)(e[-+]?\d+)?%?|\[.*\]")


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _html_inline(parts: Iterable[Inline]) -> str:
    return "".join(
        f'<a href="{_h(p.href)}">{_h(p.text)}</a>' if isinstance(p, Link) else _h(p) for p in parts
    )


def _html_cell(cell: Cell) -> str:
    parts = _parts(cell)
    plain = "".join(p.text if isinstance(p, Link) else p for p in parts)
    numeric = ' class="n"' if _NUMERIC.fullmatch(plain.strip()) else ""
    return f"<td{numeric}>{_html_inline(parts)}</td>"


def _html_block(block: Block) -> str:
    match block:
        case Heading(level, text, anchor):
            ident = f' id="{anchor_ok(anchor)}"' if anchor else ""
            return f"<h{level}{ident}>{_h(text)}</h{level}>"
        case Para(parts):
            return f"<p>{_html_inline(parts)}</p>"
        case Table(header, rows, table_id):
            ident = f' id="{anchor_ok(table_id)}"' if table_id else ""
            head = "".join(f"<th>{_h(h)}</th>" for h in header)
            body = "\n".join("<tr>" + "".join(_html_cell(c) for c in row) + "</tr>" for row in rows)
            return f"<table{ident}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"
        case Image(src, alt):
            return f'<p><img src="{_h(Link(alt, src).href)}" alt="{_h(alt)}"></p>'
        case Items(items):
            return "<ul>\n" + "\n".join(f"<li>{_html_inline(i)}</li>" for i in items) + "\n</ul>"
        case Code(text):
            return f"<pre>{_h(text)}</pre>"
        case _:
            raise TypeError(f"not a block: {block!r}")


def to_html(blocks: Sequence[Block], title: str) -> str:
    """The document as one self-contained HTML page (images are files beside it)."""
    body = "\n".join(_html_block(b) for b in blocks)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        f"<title>{_h(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"{body}\n</body>\n</html>\n"
    )

"""Tables for ``snakemake --report``: the Markdown tables the workflow writes, as HTML pages.

The report shows a file marked ``report(...)`` inline only when it is an image, a PDF or
HTML; a CSV or Markdown table becomes a download link. :func:`write_table_html` turns the
Markdown a table rule writes (``tables/kendall.md``, ``tables/cmi.md``: one GitHub pipe
table, then note paragraphs; :func:`intraclass.kendall.to_markdown`) into a small HTML page,
so the table itself opens in the report. Only that subset of Markdown is understood: pipe
tables with an alignment row, paragraphs, and ``code`` spans.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

from intraclass.runtime import write_atomic

#: Inline style of the page (the report shows it in a frame on a dark background).
STYLE = (
    "body{background:#fff;color:#111;font-family:sans-serif;font-size:14px;margin:1em}"
    "table{border-collapse:collapse}"
    "th,td{border:1px solid #bbb;padding:3px 8px}"
    "th{background:#eee}"
    "td.l,th.l{text-align:left}td.r,th.r{text-align:right}td.c,th.c{text-align:center}"
    "p{max-width:60em}"
)


def _cells(line: str) -> list[str]:
    """The cells of one pipe-table row: ``| a | b |`` -> ``["a", "b"]`` (escaped ``\\|`` kept)."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", body)]


def _alignment(cell: str) -> str:
    """``:---`` left, ``---:`` right, ``:---:`` centre, ``---`` left (GitHub's default)."""
    cell = cell.strip()
    if cell.startswith(":") and cell.endswith(":"):
        return "c"
    return "r" if cell.endswith(":") else "l"


def _inline(text: str) -> str:
    """Escape ``text`` for HTML; ```code``` spans become ``<code>``."""
    parts = re.split(r"`([^`]*)`", text)
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p)
                   for i, p in enumerate(parts))


def _is_separator(line: str) -> bool:
    return bool(re.fullmatch(r"\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?", line.strip()))


def _table_html(rows: list[str]) -> str:
    """One pipe table (header, alignment row, body rows) as an HTML ``<table>``."""
    if len(rows) < 2 or not _is_separator(rows[1]):
        raise ValueError(f"not a Markdown pipe table (no alignment row after the header): {rows[:2]}")
    header = _cells(rows[0])
    align = [_alignment(c) for c in _cells(rows[1])]
    if len(align) != len(header):
        raise ValueError(f"the alignment row has {len(align)} cells, the header {len(header)}")
    out = ["<table>", "<thead><tr>"]
    out += [f'<th class="{a}">{_inline(c)}</th>' for c, a in zip(header, align, strict=True)]
    out.append("</tr></thead><tbody>")
    for number, row in enumerate(rows[2:], start=3):
        cells = _cells(row)
        if len(cells) != len(header):
            raise ValueError(f"table row {number} has {len(cells)} cells, the header {len(header)}: {row!r}")
        out.append("<tr>" + "".join(f'<td class="{a}">{_inline(c)}</td>'
                                    for c, a in zip(cells, align, strict=True)) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def markdown_to_html(text: str, title: str) -> str:
    """A whole HTML page holding the pipe tables and paragraphs of ``text``, under ``title``."""
    blocks: list[str] = []
    table: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if table:
            blocks.append(_table_html(table))
            table.clear()
        if paragraph:
            blocks.append("<p>" + _inline(" ".join(paragraph)) + "</p>")
            paragraph.clear()

    for line in text.splitlines():
        if line.lstrip().startswith("|"):
            if paragraph:
                flush()
            table.append(line)
        elif line.strip():
            if table:
                flush()
            paragraph.append(line.strip())
        else:
            flush()
    flush()
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head>\n<body>\n<h3>{html.escape(title)}</h3>\n"
            + "\n".join(blocks) + "\n</body></html>\n")


def write_table_html(md_path: str | os.PathLike, html_path: str | os.PathLike, title: str) -> Path:
    """Write the Markdown table file ``md_path`` as the HTML page ``html_path`` (atomically)."""
    page = markdown_to_html(Path(md_path).read_text(encoding="utf-8"), title)
    return write_atomic(html_path, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))

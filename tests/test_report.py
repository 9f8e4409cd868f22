"""The study's Markdown tables as HTML pages for `snakemake --report` (intraclass.report)."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from intraclass.kendall import to_markdown
from intraclass.report import markdown_to_html, write_table_html


class _Cells(HTMLParser):
    """Reference reader: the text of every <th>/<td> per row, their class, the <p> texts."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self.classes: list[list[str]] = []
        self.paragraphs: list[str] = []
        self._cell: list[str] | None = None
        self._p: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
            self.classes.append([])
        elif tag in ("td", "th"):
            self._cell = []
            self.classes[-1].append(dict(attrs).get("class", ""))
        elif tag == "p":
            self._p = []

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.rows[-1].append("".join(self._cell))
            self._cell = None
        elif tag == "p":
            self.paragraphs.append("".join(self._p))
            self._p = None

    def handle_data(self, data):
        for sink in (self._cell, self._p):
            if sink is not None:
                sink.append(data)


def _parse(page: str) -> _Cells:
    reader = _Cells()
    reader.feed(page)
    return reader


def _plain_cells(md: str) -> list[list[str]]:
    """Reference split of a pipe table: every '|' line but the alignment row, cell by cell."""
    lines = [line for line in md.splitlines() if line.startswith("|")]
    del lines[1]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]


def test_kendall_table_cells_survive_the_conversion_on_random_values():
    """Every cell of the table to_markdown writes (families, measure labels, missing values,
    intervals) comes back, in place, from the HTML page; numbers right-aligned."""
    rng = np.random.default_rng(0)
    measures = ["c1", "c2", "c3", "c4"]
    axes = ["lr", "batch_size", "total"]
    table = pd.DataFrame(rng.uniform(-1, 1, (4, 3)), index=measures, columns=axes)
    table.iloc[1, 0] = np.nan
    md = to_markdown(table, note="Models: 12. Ties count `0`.")
    page = markdown_to_html(md, "Granulated Kendall: study s")
    parsed = _parse(page)
    assert parsed.rows == _plain_cells(md)
    assert all(c == "r" for row in parsed.classes[1:] for c in row[2:])
    assert parsed.paragraphs == ["Models: 12. Ties count 0."]
    assert "<code>0</code>" in page and "<title>Granulated Kendall: study s</title>" in page


def test_structured_table_alignment_escaping_and_paragraphs():
    md = (
        "| a | b & c | d |\n"
        "|:---|:---:|---:|\n"
        "| <x> | 1 \\| 2 | 3.000 |\n"
        "| y |  | — |\n"
        "\n"
        "First note,\n"
        "same paragraph.\n"
        "\n"
        "Second note.\n"
    )
    page = markdown_to_html(md, "T")
    parsed = _parse(page)
    assert parsed.rows == [["a", "b & c", "d"], ["<x>", "1 | 2", "3.000"], ["y", "", "—"]]
    assert parsed.classes == [["l", "c", "r"]] * 3
    assert parsed.paragraphs == ["First note, same paragraph.", "Second note."]
    assert "&lt;x&gt;" in page and "<x>" not in page.split("<body>")[1]


@pytest.mark.parametrize(
    "md, message",
    [
        ("| a | b |\n| 1 | 2 |\n", "alignment row"),
        ("| a | b |\n|---|---|\n| 1 |\n", "row 3 has 1 cells"),
        ("| a | b |\n|---|\n", "alignment row has 1 cells"),
    ],
)
def test_malformed_tables_are_refused_with_the_reason(md, message):
    with pytest.raises(ValueError, match=message):
        markdown_to_html(md, "T")


def test_write_table_html_writes_the_page(tmp_path):
    md = tmp_path / "kendall.md"
    md.write_text("| m | total |\n|---|---:|\n| c1 | 0.500 |\n")
    out = write_table_html(md, tmp_path / "tables" / "kendall.html", "K")
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert _parse(out.read_text()).rows == [["m", "total"], ["c1", "0.500"]]
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == ["kendall.html"]

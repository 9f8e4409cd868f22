"""The project's documentation stands on its own: no tracked file points at files outside
the repository, every relative link of the docs resolves (file and heading), and the
licence and citation metadata are complete."""

from __future__ import annotations

import re
import subprocess
import tomllib
import unicodedata
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# Names of files that live outside the repository (developer notes). Built from pieces so
# that this file does not match its own pattern.
OUTSIDE = re.compile("|".join([
    re.escape("DESIGN" + ".md"),
    r"\b" + "REFER" + r"ENCE\b",  # the notes' name, with or without ".md"
    re.escape(".." + "/shared"),
    "steering " + "repo",
]))
BINARY_SUFFIXES = {".npz", ".png", ".pdf", ".gz", ".zip", ".pt", ".jpg"}
LINKED_DOCS = ["README.md", "resources/README.md", "docs/*.md"]


def tracked_files() -> list[Path]:
    """Files git tracks (plus untracked, not ignored ones: new files count before their
    first commit); every file under the root when this is not a git checkout."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        paths = [ROOT / p for p in out.split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "results", "__pycache__"}
        paths = [p for p in ROOT.rglob("*") if not skip & set(p.relative_to(ROOT).parts)]
    return [p for p in paths if p.is_file() and p.suffix not in BINARY_SUFFIXES]


def outside_mentions(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line that names a file outside the repository."""
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]


def test_no_file_points_outside_the_repository():
    found = []
    for path in tracked_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found += [f"{path.relative_to(ROOT)}:{n}: {line}" for n, line in outside_mentions(text)]
    assert not found, "files outside the repository are cited:\n" + "\n".join(found)


def test_the_outside_pattern_catches_what_it_should():
    assert outside_mentions("see " + "DESIGN" + ".md, and\n(" + "REFER" + "ENCE, Datasets)")
    assert outside_mentions("recipe: " + ".." + "/shared/notes")
    assert not outside_mentions("a reference implementation; shared/ memory; docs/measures.md")


# ------------------------------------------------------------------------------ links

def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped (letters, digits,
    spaces, hyphens and underscores kept), spaces turned into hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading.strip().lower())
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def strip_fences(text: str) -> str:
    """Markdown without its fenced code blocks."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def strip_code(text: str) -> str:
    """Markdown without fenced code blocks and inline code spans (links there are not links)."""
    return re.sub(r"`[^`\n]*`", "", strip_fences(text))


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file (repeated headings get -1, -2, ...)."""
    seen: dict[str, int] = {}
    out = set()
    for line in strip_fences(path.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = github_slug(match.group(1))
        out.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return out


def broken_links(path: Path) -> list[str]:
    """Relative links of markdown file ``path`` whose file or heading does not exist."""
    broken = []
    for target in re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)",
                             strip_code(path.read_text(encoding="utf-8"))):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target} (no file {linked})")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target} (no heading #{anchor} in {linked.name})")
    return broken


def linked_docs() -> list[Path]:
    return sorted({p for pattern in LINKED_DOCS for p in ROOT.glob(pattern)})


@pytest.mark.parametrize("doc", linked_docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    assert not broken_links(doc), f"{doc.relative_to(ROOT)}: broken links {broken_links(doc)}"


def test_link_checker_finds_missing_files_and_headings(tmp_path):
    (tmp_path / "other.md").write_text("# Title\n\n## c1: selectivity (Eq. 1)\n## Notes\n## Notes\n"
                                       "### run (`scripts/run.py`)\n")
    doc = tmp_path / "doc.md"
    doc.write_text("[ok](other.md#c1-selectivity-eq-1) [ok](other.md#notes-1) [ok](#here) "
                   "[ok](other.md#run-scriptsrunpy) "
                   "[ext](https://example.org/x) `[code](nowhere.md)`\n## Here\n"
                   "[gone](missing.md) [bad anchor](other.md#nope)\n")
    assert broken_links(doc) == ["missing.md (no file " + str(tmp_path / "missing.md") + ")",
                                 "other.md#nope (no heading #nope in other.md)"]


def test_docs_cover_the_papers_definitions():
    measures = (ROOT / "docs" / "measures.md").read_text(encoding="utf-8")
    for needed in ("Eq. 1", "Eq. 2", "Eq. 3", "Eq. 4", "1/σ'", "1/σ''", "1/α'", "1/α''",
                   "## Measures of the related work"):
        assert needed in measures, f"docs/measures.md does not cover {needed!r}"
    training = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    for needed in ("appendix A.1", "192", "144", "0.32", "4e-5", "150, 230 and 240", "1e-4"):
        assert needed in training, f"docs/training.md does not cover {needed!r}"


# ------------------------------------------------------------------- licence, citation

def test_license_covers_the_code_and_the_bundled_data():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 the intraclass authors" in text
    assert "resources/fashion_mnist_small.npz" in text
    assert "Copyright © 2017 Zalando SE" in text
    assert "Copyright © 2017 Zalando SE" in (ROOT / "resources" / "README.md").read_text(encoding="utf-8")


def _check_authors(authors, where: str) -> None:
    assert isinstance(authors, list) and authors, f"{where}: authors must be a non-empty list"
    for author in authors:  # a person (family/given names) or an entity (name)
        assert {"family-names", "given-names", "name"} & set(author), f"{where}: author {author} has no name"


def test_citation_cff_is_valid():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    for key in ("cff-version", "message", "title", "authors"):  # required by CFF 1.2.0
        assert cff.get(key), f"CITATION.cff lacks {key}"
    assert cff["cff-version"] == "1.2.0"
    _check_authors(cff["authors"], "CITATION.cff")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert str(cff["version"]) == project["version"]
    assert cff["license"] == "MIT" and cff["type"] == "software"
    paper = cff["preferred-citation"]
    assert paper["title"] == "Intraclass clustering: an implicit learning ability that regularizes DNNs"
    assert paper["year"] == 2021 and "ICLR" in paper["collection-title"]
    assert [a["family-names"] for a in paper["authors"]] == ["Carbonnelle", "De Vleeschouwer"]
    titles = []
    for i, ref in enumerate([paper, *cff["references"]]):
        for key in ("type", "title", "authors"):  # required of every reference
            assert ref.get(key), f"CITATION.cff reference {i} lacks {key}"
        _check_authors(ref["authors"], f"reference {ref['title']!r}")
        titles.append(ref["title"])
    assert "Fantastic generalization measures and where to find them" in titles

"""README and docs/ are a map: every relative link in them leads to a file (and an #anchor to a heading) that exists."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("tests/*/README.md")),
		 *sorted(ROOT.glob("benchmarks/*/README.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")

# the installed-package suite (tests/test_packaging.py) runs a copy of tests/ alone: the docs are checked in the checkout
pytestmark = pytest.mark.skipif(not (ROOT / "README.md").is_file(), reason="no checkout here: README and docs/ are checked in the checkout's run")


def anchors(page: Path) -> set:
	"""GitHub's anchors for the headings of ``page``: lower case, punctuation dropped, spaces as hyphens."""
	heads = re.findall(r"^#+\s+(.*)$", page.read_text(encoding="utf-8"), flags=re.M)
	return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


def brokenLinks(page: Path) -> list:
	broken = []
	for target in LINK.findall(page.read_text(encoding="utf-8")):
		if re.match(r"^[a-z]+:", target):  # http(s), mailto: not ours to check offline
			continue
		path, _, anchor = target.partition("#")
		dest = (page.parent / path).resolve() if path else page
		if not dest.exists():
			broken.append(target)
		elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
			broken.append(target)
	return broken


def test_there_are_pages_to_check():
	assert (ROOT / "README.md") in PAGES and len(PAGES) > 3


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
	assert brokenLinks(page) == []


def test_a_broken_link_is_found(tmp_path):
	page = tmp_path / "page.md"
	page.write_text("# Title\n[ok](page.md#title) [gone](missing.md) [bad anchor](page.md#nowhere)\n")
	assert brokenLinks(page) == ["missing.md", "page.md#nowhere"]

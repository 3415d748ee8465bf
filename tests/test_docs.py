"""The README and docs/ stand on their own: no path outside the repository, every file they
name exists, the test command is what CI runs, and the oracles are described as they are."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def test_docs_name_nothing_outside_the_repository():
    for doc in DOCS:
        text = doc.read_text()
        assert "../" not in text, f"{doc.name} points outside the repository"
        assert "shared/" not in text, f"{doc.name} names the workspace's shared/ folder"


def test_every_file_the_docs_name_exists():
    # files (with an extension); folders named as examples of a future layout are not files
    pattern = re.compile(r"`((?:rtl|gen|sim|tb|fpga|tests|scripts|docs)/[\w./-]+\.\w+)`")
    for doc in DOCS:
        for path in pattern.findall(doc.read_text()):
            assert (REPO / path).exists(), f"{doc.name} names {path}, which does not exist"


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    assert "make test   # the whole test suite" in readme
    ci = [
        line
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert ci == ["make test"]


def test_the_oracle_is_described_accurately():
    readme = " ".join((REPO / "README.md").read_text().split())
    assert "standalone C++ re-implementation of the original MSDeformAttn kernel" in readme
    assert "original MSDeformAttn C++ kernel" not in readme  # what it is not
    assert "docs/DESIGN.md" in readme

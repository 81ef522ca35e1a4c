"""The README is a map whose links hold, and the generated docs are current (issue 24)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cuelab.core.runs.config_doc import config_reference
from tests.conftest import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _visible(text: str) -> str:
    return re.sub(r"<!--.*?-->", "", text, flags=re.S)


def test_readme_has_a_table_of_contents_whose_links_resolve() -> None:
    text = README.read_text(encoding="utf-8")
    headings = [_anchor(h) for h in re.findall(r"(?m)^## (.*)$", text)]
    anchors = set(headings)
    toc = _visible(text.split("## Contents", 1)[1].split("\n## ", 1)[0])
    links = re.findall(r"\]\(#([^)]+)\)", toc)
    assert len(links) >= 20
    assert [link for link in links if link not in anchors] == []
    for section in ("What you need", "Quick start", "GPU quick start", "Configuration",
                    "The run folder", "Troubleshooting / FAQ", "Cite", "License"):  # fmt: skip
        assert _anchor(section) in anchors, section
    assert headings[-1] == "license"  # still the last section (others add theirs before it)


def test_the_quick_start_commands_are_unchanged() -> None:
    text = README.read_text(encoding="utf-8")
    assert "bash scripts/run.sh demo    # set up, then open CueLab on the bundled demo\n" in text
    assert (
        "bash scripts/run.sh test    # set up, then run ruff, mypy and the whole test suite\n"
        in text
    )


@pytest.mark.parametrize(
    "page", [README, *sorted(DOCS.glob("*.md")), REPO / "examples" / "README.md"]
)
def test_relative_links_point_at_files_that_exist(page: Path) -> None:
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", _visible(page.read_text("utf-8"))):
        assert (page.parent / target).exists(), f"{page.name}: {target}"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    for page in DOCS.glob("*.md"):
        assert f"docs/{page.name}" in text, page.name


def test_no_page_tells_users_to_run_huggingface_cli() -> None:
    for page in [README, *DOCS.glob("*.md"), *(REPO / "examples").iterdir()]:
        assert "huggingface-cli download" not in page.read_text(encoding="utf-8"), page


def test_the_config_reference_is_up_to_date() -> None:
    text = (REPO / "docs" / "config.md").read_text(encoding="utf-8")
    assert text == config_reference(), (
        "docs/config.md is stale: python -m cuelab.core.runs.config_doc > docs/config.md"
    )


def test_the_config_reference_names_every_key() -> None:
    from dataclasses import fields

    from cuelab.core.runs import RunConfig

    text = config_reference()
    for f in fields(RunConfig):
        row = next(line for line in text.splitlines() if line.startswith(f"| `{f.name}` |"))
        assert row.rstrip(" |").split("|")[-1].strip(), f"{f.name} has no description"

"""Every Python block of the README and of docs/ runs as written (the other libraries' recipes run
in tests/test_other_libraries.py, where their libraries are installed); the README stays short."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- recipe: [\w-]+ -->\n)?```python\n(.*?)```", re.S)


def _blocks(page: Path) -> list[str]:
    return [code for recipe, code in BLOCK.findall(page.read_text()) if not recipe]


def test_the_readme_is_short_and_links_every_docs_page() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) < 150
    for page in (ROOT / "docs").glob("*.md"):
        assert f"docs/{page.name}" in text, page.name


@pytest.mark.parametrize("page", [p for p in PAGES if _blocks(p)], ids=lambda p: p.name)
def test_every_python_block_runs(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, torch_single_thread
) -> None:
    """A page's blocks run in order in one namespace, as a reader runs them in one session."""
    monkeypatch.chdir(tmp_path)  # what a block writes (a store, a run folder) lands here
    namespace: dict = {"__name__": "__docs__"}
    for i, code in enumerate(_blocks(page)):
        exec(compile(code, f"{page.name}[{i}]", "exec"), namespace)
    assert os.getcwd() == str(tmp_path)

"""The README's key tables come from the key declarations."""

from __future__ import annotations

import re

from pc_systemd.cli.docs import refresh
from tests.conftest import ROOT


def test_readme_key_tables_are_current() -> None:
    text = (ROOT / "README.md").read_text()
    assert refresh(text) == text, "run: .venv/bin/python -m pc_systemd.cli.docs README.md"


def test_tables_list_every_key() -> None:
    text = (ROOT / "README.md").read_text()
    for key in ("`user`", "`cron_template`", "`failure_threshold_for_mail`", "`logging`"):
        assert f"| {key} |" in text


def layout_modules(text: str) -> set[str]:
    """The modules the README's Layout table names: a cell's first path sets
    the directory of the bare file names after it."""
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    named: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("| `pc_systemd/"):
            continue
        directory = ""
        for word in re.findall(r"`([^`]+)`", line.split(" | ")[0]):
            if "/" in word:
                directory, _, word = word.rpartition("/")
            named.add(f"{directory}/{word}")
    return named


def test_the_readme_layout_names_every_module() -> None:
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "pc_systemd").rglob("*.py")
               if p.name != "__init__.py"}
    named = {n for n in layout_modules((ROOT / "README.md").read_text()) if n.endswith(".py")}
    assert named == modules

"""The README's key tables come from the key declarations."""

from __future__ import annotations

from pc_systemd.docs import refresh
from tests.conftest import ROOT


def test_readme_key_tables_are_current() -> None:
    text = (ROOT / "README.md").read_text()
    assert refresh(text) == text, "run: .venv/bin/python -m pc_systemd.docs README.md"


def test_tables_list_every_key() -> None:
    text = (ROOT / "README.md").read_text()
    for key in ("`user`", "`cron_template`", "`failure_threshold_for_mail`", "`logging`"):
        assert f"| {key} |" in text

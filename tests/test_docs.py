"""The README is the front door and the guides in docs/ hold the rest: the
key tables come from the key declarations, every link resolves, every guide
is reachable from the README, and the commands the README shows are the
ones the project runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click

from pc_systemd.cli.docs import refresh
from pc_systemd.cli.run_job import run_job
from pc_systemd.model.job import load_job
from tests.conftest import ROOT, Site

README = ROOT / "README.md"
DOCS = ROOT / "docs"
KEYS_PAGE = DOCS / "configuration.md"
README_MAX_LINES = 300
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_key_tables_are_current() -> None:
    text = KEYS_PAGE.read_text()
    assert refresh(text) == text, (
        "run: .venv/bin/python -m pc_systemd.cli.docs docs/configuration.md")


def test_tables_list_every_key() -> None:
    text = KEYS_PAGE.read_text()
    for key in ("`user`", "`cron_template`", "`failure_threshold_for_mail`", "`logging`"):
        assert f"| {key} |" in text


def test_every_relative_link_resolves() -> None:
    broken = []
    for page in pages():
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert broken == []


def test_every_guide_is_linked_from_the_readme() -> None:
    linked = {(ROOT / t.split("#", 1)[0]).resolve()
              for t in LINK.findall(README.read_text()) if not re.match(r"[a-z]+:", t)}
    unlinked = [p.name for p in DOCS.glob("*.md") if p.resolve() not in linked]
    assert unlinked == []


def test_every_guide_says_first_what_its_reader_can_do() -> None:
    for page in DOCS.glob("*.md"):
        lines = page.read_text().splitlines()
        assert lines[0].startswith("# "), page.name
        assert lines[2].startswith("After reading this page you can "), page.name


def test_the_readme_stays_short() -> None:
    assert len(README.read_text().splitlines()) <= README_MAX_LINES


def shown_commands(text: str) -> list[list[str]]:
    """The command lines the README shows in its indented blocks (comments cut)."""
    shown = []
    for line in text.splitlines():
        if line.startswith("    ") and not line.startswith("     "):
            words = shlex.split(line.strip(), comments=True)
            if words:
                shown.append(words)
    return shown


def test_the_development_commands_are_the_ones_ci_and_dev_sh_run() -> None:
    shown = shown_commands(README.read_text())
    assert ["./dev.sh", "demo"] in shown and ["./dev.sh", "test"] in shown
    ci = (ROOT / ".ci" / "run").read_text()
    assert "exec ./dev.sh test\n" in ci
    dev = (ROOT / "dev.sh").read_text()
    assert "    demo) " in dev and "    test) " in dev


def test_the_run_job_commands_the_readme_shows_exist() -> None:
    ctx = click.Context(run_job)
    runs = [words for words in shown_commands(README.read_text()) if words[0] == "run-job"]
    assert len(runs) >= 5
    for words in runs:
        command = run_job.get_command(ctx, words[1])
        assert command is not None, words
        params = {opt for p in command.params for opt in getattr(p, "opts", [])}
        for word in words[2:]:
            if word.startswith("-"):
                assert word.split("=", 1)[0] in params, words


def layout_modules(text: str) -> set[str]:
    """The modules the Layout table names: a cell's first path sets the
    directory of the bare file names after it."""
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


def test_the_layout_names_every_module() -> None:
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "pc_systemd").rglob("*.py")
               if p.name != "__init__.py"}
    named = {n for n in layout_modules((DOCS / "contributing.md").read_text())
             if n.endswith(".py")}
    assert named == modules


def test_the_readme_s_first_job_is_a_valid_job_file(site: Site) -> None:
    lines = README.read_text().splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("    # /var/lib/process-control/"))
    slug = lines[start].rsplit("/", 1)[1].removesuffix(".yaml")
    block = []
    for line in lines[start + 1:]:
        if not line.startswith("    "):
            break
        block.append(line[4:])
    path = site.job(slug, "\n".join(block) + "\n")
    job = load_job(str(path), site.config())
    assert job.schedule is not None and job.schedule.expr == "30 2 * * *"
    assert (job.slug, job.timeout, job.logging) == (slug, 60, "journal")

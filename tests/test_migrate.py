"""Taking cron-generate's file out of service (pc_systemd.cron.migrate), as the
Debian package's maintainer scripts do on systemd hosts and on removal."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pc_systemd.cron import migrate
from tests.conftest import ROOT, Site

ORIGINAL = ROOT / "tests" / "data" / "original" / "cron.d" / "process-control"


@pytest.fixture
def default_cron(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default /etc/cron.d/process-control, moved into tmp_path."""
    path = tmp_path / "cron.d" / "process-control"
    path.parent.mkdir()
    monkeypatch.setattr(migrate, "DEFAULT", str(path))
    return path


def test_the_originals_cron_file_is_recognised() -> None:
    assert migrate.generated_by_cron_generate(ORIGINAL.read_text())


def test_a_file_with_only_skipped_jobs_is_recognised() -> None:
    assert migrate.generated_by_cron_generate("# Skipping disabled job nightly\n")


@pytest.mark.parametrize("text", [
    "",
    "# m h dom mon dow user command\n",
    "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n",
    "# Skipping a beat\n",
])
def test_other_cron_files_are_not(text: str) -> None:
    assert not migrate.generated_by_cron_generate(text)


def test_moved_aside_under_a_name_cron_ignores_with_a_note(
    default_cron: Path, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    default_cron.write_text(ORIGINAL.read_text())
    assert migrate.main(["--config", str(site.config_file)]) == 0
    moved = default_cron.with_name("process-control.disabled")
    assert not default_cron.exists()
    assert moved.read_text() == ORIGINAL.read_text()  # kept, byte for byte
    # Debian's cron reads only /etc/cron.d names of letters, digits, '_' and '-'
    assert "." in moved.name
    err = capsys.readouterr().err
    assert f"moved {default_cron} to {moved}" in err
    assert "systemd timers run these jobs now" in err


def test_a_second_move_keeps_the_first(default_cron: Path, site: Site) -> None:
    default_cron.write_text(ORIGINAL.read_text())
    migrate.main(["--config", str(site.config_file)])
    default_cron.write_text("# Skipping disabled job later\n")
    migrate.main(["--config", str(site.config_file)])
    names = sorted(os.listdir(default_cron.parent))
    assert names[0] == "process-control.disabled"
    assert len(names) == 2 and names[1].startswith("process-control.disabled-")


def test_the_configured_output_crontab_is_moved_too(
    default_cron: Path, site: Site, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "jobs.cron"
    site.configure(f"output_crontab: {elsewhere}\n")
    elsewhere.write_text(ORIGINAL.read_text())
    assert migrate.main(["--config", str(site.config_file)]) == 0
    assert not elsewhere.exists()
    assert (tmp_path / "jobs.cron.disabled").exists()


def test_files_not_from_cron_generate_are_left_alone(default_cron: Path, site: Site) -> None:
    default_cron.write_text("0 3 * * * root /usr/local/bin/backup\n")
    assert migrate.main(["--config", str(site.config_file)]) == 0
    assert default_cron.exists()
    assert os.listdir(default_cron.parent) == ["process-control"]


def test_no_cron_file_is_nothing_to_do(default_cron: Path, site: Site) -> None:
    assert migrate.main(["--config", str(site.config_file)]) == 0
    assert os.listdir(default_cron.parent) == []


def test_an_invalid_configuration_still_frees_the_default_file(
    default_cron: Path, site: Site, capsys: pytest.CaptureFixture[str]
) -> None:
    site.configure("no_such_key: 1\n")
    default_cron.write_text(ORIGINAL.read_text())
    assert migrate.main(["--config", str(site.config_file)]) == 0
    assert not default_cron.exists()
    assert "cannot read the configuration" in capsys.readouterr().err


def test_the_system_crontab_is_never_renamed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("renamed")

    monkeypatch.setattr(os, "rename", refuse)
    assert migrate.take_out_of_service("/etc/crontab", "test") is None
    assert "remove its process-control lines by hand" in capsys.readouterr().err

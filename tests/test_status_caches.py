"""What run-job --status skips asking systemd: what cannot have changed
since the last call (pc_systemd.status_memo), and the last run of jobs that
have no history file (systemd_status.has_history). The real-systemd side is
in tests/test_cli_systemd.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from pc_systemd import file_cache, status_memo, systemd_status
from pc_systemd.status_memo import StatusMemo

TIMER = "process-control-a.timer"
SERVICE = "process-control-a.service"


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A generator directory with a timer, and a state directory with a history."""
    monkeypatch.setattr(file_cache, "SETTLE_NS", 0)
    zone = tmp_path / "localtime"
    zone.symlink_to("/usr/share/zoneinfo/UTC")
    monkeypatch.setattr(status_memo, "LOCALTIME", str(zone))
    generated, state = tmp_path / "generator", tmp_path / "state"
    generated.mkdir()
    state.mkdir()
    (generated / TIMER).write_text("[Timer]\nOnCalendar=*-*-* 03:07:00\n")
    (state / "a.yaml").write_text("last_completion_status: success\n")
    return generated, state


def memo(dirs: tuple[Path, Path]) -> StatusMemo:
    return StatusMemo(str(dirs[0]), str(dirs[1]))


def future(seconds: float) -> int:
    return int((time.time() + seconds) * 1_000_000)


def remember(dirs: tuple[Path, Path], unit: str, state: str, values: list[Any]) -> None:
    first = memo(dirs)
    assert first.get(unit, state) is None
    first.put(unit, state, values)
    first.save()


def test_a_next_elapse_is_reused_until_the_unit_file_changes(dirs: tuple[Path, Path]) -> None:
    value = future(3600)
    remember(dirs, TIMER, "active", [value])
    assert memo(dirs).get(TIMER, "active") == [value]
    # a daemon-reload writes a new unit file: the value is asked for again
    (dirs[0] / TIMER).unlink()
    (dirs[0] / TIMER).write_text("[Timer]\nOnCalendar=*-*-* 03:07:00\n")
    assert memo(dirs).get(TIMER, "active") is None


def test_a_next_elapse_that_has_passed_is_asked_for_again(dirs: tuple[Path, Path]) -> None:
    remember(dirs, TIMER, "active", [future(0.5)])  # within the margin
    assert memo(dirs).get(TIMER, "active") is None
    remember(dirs, TIMER, "active", [future(-60)])
    assert memo(dirs).get(TIMER, "active") is None


def test_a_last_run_is_reused_until_the_history_changes(dirs: tuple[Path, Path]) -> None:
    remember(dirs, SERVICE, "inactive", [1_700_000_000_000_000, 1_700_000_001_000_000])
    again = memo(dirs)
    assert again.get(SERVICE, "inactive") == [1_700_000_000_000_000, 1_700_000_001_000_000]
    assert again.get(SERVICE, "failed") is None  # another state: asked again
    # the next run's start hook rewrites the history
    (dirs[1] / "a.yaml").write_text("last_completion_status: failure\n")
    assert memo(dirs).get(SERVICE, "inactive") is None
    slow = "process-control-a.slow-start.service"  # the same job's history
    remember(dirs, slow, "journal", ["x"])
    assert memo(dirs).get(slow, "journal") == ["x"]


def test_only_what_was_used_or_read_is_kept(dirs: tuple[Path, Path]) -> None:
    remember(dirs, SERVICE, "inactive", [1, 2])
    later = memo(dirs)
    later.put(TIMER, "active", [future(3600)])  # SERVICE not asked: gone from the memo
    later.save()
    assert memo(dirs).get(SERVICE, "inactive") is None
    assert memo(dirs).get(TIMER, "active") is not None


def test_a_new_time_zone_forgets_everything(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    remember(dirs, TIMER, "active", [future(3600)])
    assert memo(dirs).get(TIMER, "active") is not None
    zone = tmp_path / "localtime"
    zone.unlink()
    zone.symlink_to("/usr/share/zoneinfo/Europe/Berlin")
    assert memo(dirs).get(TIMER, "active") is None


def test_units_without_evidence_are_never_remembered(dirs: tuple[Path, Path]) -> None:
    remember(dirs, "process-control-gone.timer", "active", [future(3600)])
    remember(dirs, "process-control-b.service", "inactive", [1, 2])  # no history
    assert memo(dirs).get("process-control-gone.timer", "active") is None
    assert memo(dirs).get("process-control-b.service", "inactive") is None


def test_history_files_say_which_jobs_have_run(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert systemd_status.has_history(str(state)) == frozenset()  # nothing ran yet
    state.mkdir()
    (state / "a.yaml").write_text("")
    (state / "notes.txt").write_text("")
    ran = systemd_status.has_history(str(state))
    assert ran == {"a"}
    assert systemd_status._has_run("process-control-a.service", ran)
    assert systemd_status._has_run("process-control-a.slow-start.service", ran)
    assert not systemd_status._has_run("process-control-b.service", ran)
    assert not systemd_status._has_run("process-control-a-b.service", ran)
    assert systemd_status._has_run("process-control-b.service", None)  # unknown: ask
    (state / "x").write_text("")
    assert systemd_status.has_history(str(state / "x")) is None  # not a directory

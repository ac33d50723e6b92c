"""What run-job --status skips asking systemd: what cannot have changed
since the last call (pc_systemd.systemd.status_memo). The real-systemd side is in
tests/test_cli_systemd.py."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from pc_systemd.model import file_cache
from pc_systemd.systemd import status_memo
from pc_systemd.systemd.status_memo import StatusMemo

TIMER = "process-control-a.timer"
SERVICE = "process-control-a.service"


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path]:
    """A generator directory with a timer."""
    monkeypatch.setattr(file_cache, "SETTLE_NS", 0)
    zone = tmp_path / "localtime"
    zone.symlink_to("/usr/share/zoneinfo/UTC")
    monkeypatch.setattr(status_memo, "LOCALTIME", str(zone))
    generated = tmp_path / "generator"
    generated.mkdir()
    (generated / TIMER).write_text("[Timer]\nOnCalendar=*-*-* 03:07:00\n")
    return (generated,)


def memo(dirs: tuple[Path]) -> StatusMemo:
    return StatusMemo(str(dirs[0]))


def future(seconds: float) -> int:
    return int((time.time() + seconds) * 1_000_000)


def remember(dirs: tuple[Path], unit: str, state: str, values: list[Any],
             given: Any = None) -> None:
    first = memo(dirs)
    assert first.get(unit, state, given) is None
    first.put(unit, state, values, given)
    first.save()


def test_a_next_elapse_is_reused_until_the_unit_file_changes(dirs: tuple[Path]) -> None:
    value = future(3600)
    remember(dirs, TIMER, "active", [value])
    assert memo(dirs).get(TIMER, "active") == [value]
    # a daemon-reload writes a new unit file: the value is asked for again
    (dirs[0] / TIMER).unlink()
    (dirs[0] / TIMER).write_text("[Timer]\nOnCalendar=*-*-* 03:07:00\n")
    assert memo(dirs).get(TIMER, "active") is None


def test_a_next_elapse_that_has_passed_is_asked_for_again(dirs: tuple[Path]) -> None:
    remember(dirs, TIMER, "active", [future(0.5)])  # within the margin
    assert memo(dirs).get(TIMER, "active") is None
    remember(dirs, TIMER, "active", [future(-60)])
    assert memo(dirs).get(TIMER, "active") is None


def test_a_last_runs_end_is_reused_while_it_is_the_same_run(dirs: tuple[Path]) -> None:
    started = 1_700_000_000_000_000
    remember(dirs, SERVICE, "inactive", [1_700_000_001_000_000], started)
    again = memo(dirs)
    assert again.get(SERVICE, "inactive", started) == [1_700_000_001_000_000]
    assert memo(dirs).get(SERVICE, "failed", started) is None  # another state: asked again
    # a newer run started: its end is asked for
    assert memo(dirs).get(SERVICE, "inactive", started + 1) is None


def test_only_what_was_used_or_read_is_kept(dirs: tuple[Path]) -> None:
    remember(dirs, SERVICE, "inactive", [2], 1)
    later = memo(dirs)
    later.put(TIMER, "active", [future(3600)])  # SERVICE not asked: gone from the memo
    later.save()
    assert memo(dirs).get(SERVICE, "inactive", 1) is None
    assert memo(dirs).get(TIMER, "active") is not None


def test_a_new_time_zone_forgets_everything(dirs: tuple[Path], tmp_path: Path) -> None:
    remember(dirs, TIMER, "active", [future(3600)])
    assert memo(dirs).get(TIMER, "active") is not None
    zone = tmp_path / "localtime"
    zone.unlink()
    zone.symlink_to("/usr/share/zoneinfo/Europe/Berlin")
    assert memo(dirs).get(TIMER, "active") is None


def test_units_without_evidence_are_never_remembered(dirs: tuple[Path]) -> None:
    remember(dirs, "process-control-gone.timer", "active", [future(3600)])
    remember(dirs, "process-control-b.service", "inactive", [2])  # no start given
    assert memo(dirs).get("process-control-gone.timer", "active") is None
    assert memo(dirs).get("process-control-b.service", "inactive") is None

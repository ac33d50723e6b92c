"""What run-job --status skips asking systemd: timers' next elapse while it
cannot have changed (pc_systemd.elapse_cache), and the last run of jobs
that have no history file (systemd_status.has_history). The real-systemd
side is in tests/test_cli_systemd.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pc_systemd import elapse_cache, file_cache, systemd_status
from pc_systemd.elapse_cache import ElapseCache

TIMER = "process-control-a.timer"


@pytest.fixture
def generated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(file_cache, "SETTLE_NS", 0)
    zone = tmp_path / "localtime"
    zone.symlink_to("/usr/share/zoneinfo/UTC")
    monkeypatch.setattr(elapse_cache, "LOCALTIME", str(zone))
    directory = tmp_path / "generator"
    directory.mkdir()
    (directory / TIMER).write_text("[Timer]\nOnCalendar=*-*-* 03:07:00\n")
    return directory


def future(seconds: float) -> int:
    return int((time.time() + seconds) * 1_000_000)


def test_a_next_elapse_is_reused_until_the_unit_file_changes(generated: Path) -> None:
    first = ElapseCache(str(generated), [TIMER])
    assert first.known == {}
    value = future(3600)
    first.save({TIMER: value})
    assert ElapseCache(str(generated), [TIMER]).known == {TIMER: value}
    # a daemon-reload writes a new unit file: the value is asked for again
    (generated / TIMER).unlink()
    (generated / TIMER).write_text("[Timer]\nOnCalendar=*-*-* 03:07:00\n")
    assert ElapseCache(str(generated), [TIMER]).known == {}


def test_a_next_elapse_that_has_passed_is_asked_for_again(generated: Path) -> None:
    ElapseCache(str(generated), [TIMER]).save({TIMER: future(0.5)})  # within the margin
    assert ElapseCache(str(generated), [TIMER]).known == {}
    ElapseCache(str(generated), [TIMER]).save({TIMER: future(-60)})
    assert ElapseCache(str(generated), [TIMER]).known == {}


def test_a_new_time_zone_forgets_every_next_elapse(generated: Path, tmp_path: Path) -> None:
    ElapseCache(str(generated), [TIMER]).save({TIMER: future(3600)})
    assert ElapseCache(str(generated), [TIMER]).known != {}
    zone = tmp_path / "localtime"
    zone.unlink()
    zone.symlink_to("/usr/share/zoneinfo/Europe/Berlin")
    assert ElapseCache(str(generated), [TIMER]).known == {}


def test_timers_without_a_unit_file_are_never_remembered(generated: Path) -> None:
    cache = ElapseCache(str(generated), [TIMER, "process-control-gone.timer"])
    cache.save({TIMER: future(3600), "process-control-gone.timer": future(3600)})
    again = ElapseCache(str(generated), [TIMER, "process-control-gone.timer"])
    assert set(again.known) == {TIMER}


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

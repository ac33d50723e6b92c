"""Work forked into child processes (pc_systemd.core.fanout): results come
back in order, a failed child is None, and no child outlives a parent that
failed: the job-file readers, the D-Bus readers and --status' journal reader."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pc_systemd.core import fanout
from pc_systemd.systemd import journal

RUN = journal.Run("process-control-a.service", "0123456789abcdef0123456789abcdef",
                  1_700_000_000_000_001, 1_700_000_002_000_000, "exit-code", "exited", 3)


def sleeper(pids: Path) -> bytes:
    """In a child: say who it is, then take a minute."""
    (pids / str(os.getpid())).touch()
    time.sleep(60)
    return b"too late"


def wait_for(pids: Path, count: int) -> list[int]:
    deadline = time.monotonic() + 10
    while len(os.listdir(pids)) < count:
        assert time.monotonic() < deadline, "the children did not start"
        time.sleep(0.01)
    return [int(name) for name in os.listdir(pids)]


def assert_gone(pids: list[int]) -> None:
    for pid in pids:
        with pytest.raises(ChildProcessError):  # reaped already: killed, not waited for
            os.waitpid(pid, os.WNOHANG)


def test_results_come_back_in_order_and_a_failed_child_is_none() -> None:
    def work(part: list[int]) -> bytes:
        if part == [3]:
            os._exit(7)
        return bytes(part)

    assert fanout.run([[1], [2, 2], [3], [4]], work) == [b"\x01", b"\x02\x02", None, b"\x04"]


def test_the_children_are_killed_when_the_parents_own_share_fails(tmp_path: Path) -> None:
    def work(part: list[str]) -> bytes:
        if part == ["mine"]:
            wait_for(tmp_path, 2)
            raise RuntimeError("the parent's share failed")
        return sleeper(tmp_path)

    started = time.monotonic()
    with pytest.raises(RuntimeError):
        fanout.run([["mine"], ["a"], ["b"]], work)
    assert time.monotonic() - started < 30
    assert_gone(wait_for(tmp_path, 2))


def test_the_journal_is_read_in_a_child_and_its_runs_come_back_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the units with Restart= reach the child too
    monkeypatch.setattr(journal, "last_runs",
                        lambda units, restarting: {u: RUN for u in units if u in restarting})
    with journal.LastRuns([RUN.unit], frozenset({RUN.unit})) as reading:
        assert reading.result() == ({RUN.unit: RUN}, None)


def test_a_journal_that_cannot_be_read_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(units: list[str], restarting: frozenset[str]) -> dict[str, journal.Run]:
        raise journal.JournalError("journalctl: no journal files were found")

    monkeypatch.setattr(journal, "last_runs", fail)
    with journal.LastRuns([RUN.unit]) as reading:
        assert reading.result() == ({}, "journalctl: no journal files were found")


def test_the_journal_reader_is_killed_when_the_caller_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(journal, "last_runs", lambda units, restarting: sleeper(tmp_path))
    started = time.monotonic()
    with pytest.raises(RuntimeError), journal.LastRuns([RUN.unit]):
        wait_for(tmp_path, 1)
        raise RuntimeError("asking systemd failed")
    assert time.monotonic() - started < 30
    assert_gone(wait_for(tmp_path, 1))

"""A run's output in the journal, by one rule (pc_systemd.systemd.journal):
the unit's lines from the run's start to the next run's, less those tagged
with another run; a line journald stored untagged belongs to the run that
was running. --logs, the follower and the failure mail all read it so."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pc_systemd.model.job import load_job
from pc_systemd.monitoring import mail
from pc_systemd.systemd import journal, runner
from tests.conftest import Site

RUN, OTHER = "a" * 32, "b" * 32
START, NEXT = 1_700_000_000_000_000, 1_700_000_060_000_000


def entry(when: int, text: str, tag: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"__REALTIME_TIMESTAMP": str(when), "MESSAGE": text}
    if tag is not None:
        fields["_SYSTEMD_INVOCATION_ID"] = tag
    return fields


ENTRIES = [
    entry(START - 1, "before the run", None),
    entry(START, "first", RUN),
    entry(START + 5, "another run's", OTHER),
    entry(START + 10, "last, untagged", None),
    entry(NEXT, "the next run's, untagged", None),
]


def test_a_runs_lines_are_its_own_and_the_untagged_ones_of_its_time() -> None:
    kept = [e["MESSAGE"] for e in ENTRIES if journal.of_run(e, RUN, START, NEXT)]
    assert kept == ["first", "last, untagged"]
    # The last run: no end.
    kept = [e["MESSAGE"] for e in ENTRIES if journal.of_run(e, RUN, START)]
    assert kept == ["first", "last, untagged", "the next run's, untagged"]
    # A run being followed whose invocation is not known yet: every line from its start.
    assert sum(journal.of_run(e, None, START) for e in ENTRIES) == 4


@pytest.fixture
def fake_journalctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A journalctl that prints ENTRIES as JSON and notes its arguments."""
    data = tmp_path / "entries.json"
    data.write_text("".join(json.dumps(e) + "\n" for e in ENTRIES))
    script = tmp_path / "bin" / "journalctl"
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/args\n'
                      f'case "$*" in *--sync*) exit 0;; esac\n'
                      f'[ -e {tmp_path}/hang ] && exec sleep 30\n'
                      f'case "$*" in *--reverse*) tac {data};; *) cat {data};; esac\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}:{os.environ['PATH']}")
    return tmp_path


def test_the_failure_mail_shows_the_runs_last_lines_by_the_same_rule(
    fake_journalctl: Path,
) -> None:
    output = mail.journal_output("process-control-a.service", RUN, START, "a")
    assert output.problem is None
    assert output.lines == ("first", "last, untagged", "the next run's, untagged")
    asked = (fake_journalctl / "args").read_text().splitlines()[-1].split()
    assert "_SYSTEMD_UNIT=process-control-a.service" in asked
    assert f"--since=@{START // 1_000_000}" in asked
    assert f"--lines={mail.JOURNAL_ENTRIES}" in asked
    # from the end: with --since, journalctl's --lines counts from the first entry
    assert "--reverse" in asked


def test_a_journalctl_that_hangs_costs_the_mail_its_lines_only(
    fake_journalctl: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    (fake_journalctl / "hang").touch()
    monkeypatch.setattr(mail, "JOURNAL_TIMEOUT", 0.2)
    output = mail.journal_output("process-control-a.service", RUN, START, "a")
    assert output.lines == ()
    assert output.problem == "journalctl: timed out after 0.2 s"


# -- waiting for journald to store a run's output -----------------------------------


@pytest.fixture
def streams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """journald's directory of the streams it reads, here empty; settle
    looks every 10 ms."""
    path = tmp_path / "streams"
    path.mkdir()
    monkeypatch.setattr(journal, "STREAMS", str(path))
    monkeypatch.setattr(journal, "SETTLE_POLL", 0.01)
    return path


def test_settle_waits_while_a_stream_of_the_runs_time_is_open(
    streams: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    cursors = (f"c{i}" for i in range(1_000_000))
    monkeypatch.setattr(journal, "_newest", lambda unit, timeout: "same")
    run_start, run_end = 1_700_000_000.0, 1_700_000_010.0
    # another unit's stream, begun after the run: not waited for
    other = streams / "9:2"
    other.touch()
    os.utime(other, (run_end + 60, run_end + 60))
    assert journal.settle("u.service", int(run_start * 1e6), int(run_end * 1e6), bound=5,
                          quiet=0.05)
    # the run's stream still open: waited for, to the bound
    ours = streams / "9:1"
    ours.touch()
    os.utime(ours, (run_start + 0.1, run_start + 0.1))
    assert not journal.settle("u.service", int(run_start * 1e6), int(run_end * 1e6),
                              bound=0.2, quiet=0.05)
    # new lines of the unit keep coming, no stream open: not quiet yet
    ours.unlink()
    monkeypatch.setattr(journal, "_newest", lambda unit, timeout: next(cursors))
    assert not journal.settle("u.service", int(run_start * 1e6), int(run_end * 1e6),
                              bound=0.2, quiet=0.05)


def test_settle_waits_for_the_units_own_streams_where_it_may_read_whose_they_are(
    streams: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(journal, "_newest", lambda unit, timeout: "same")
    run_start, run_end = 1_700_000_000.0, 1_700_000_010.0

    def stream(name: str, text: str) -> None:
        path = streams / name
        path.write_text(f"# This is private data. Do not parse\nPRIORITY=6\n{text}")
        os.utime(path, (run_start + 2, run_start + 2))  # begun during the run

    def settled(bound: float) -> bool:
        return journal.settle("u.service", int(run_start * 1e6), int(run_end * 1e6),
                              bound=bound, quiet=0.02)

    # another job's long run, begun meanwhile: its file names its unit (root reads it)
    stream("9:1", "IDENTIFIER=long\nUNIT=long.service\n")
    assert settled(5)
    # a stream whose unit is not known (others cannot read the files): waited for
    stream("9:2", "IDENTIFIER=x\n")
    assert not settled(0.1)
    (streams / "9:2").unlink()
    # the unit's own
    stream("9:3", "IDENTIFIER=u\nUNIT=u.service\n")
    assert not settled(0.1)


class ScriptedFollower(journal.Follower):
    """A follower whose lines come as ``arrivals`` say (seconds after
    finish() began, line), with no journalctl."""

    def __init__(self, arrivals: list[tuple[float, str]]) -> None:
        self.unit, self.since, self.invocation = "u.service", START, None
        self.cursor: str | None = None
        self._buffer, self._proc = b"", None
        self.arrivals = arrivals
        self.began = 0.0

    def read(self, wait: float) -> list[str]:
        time.sleep(wait)
        now = time.monotonic() - self.began
        due = [line for when, line in self.arrivals if when <= now]
        self.arrivals = [(when, line) for when, line in self.arrivals if when > now]
        if due:
            self.cursor = due[-1]
        return due

    def finish(self, show: Callable[[str], None], bound: float, limit: float) -> bool:
        self.began = time.monotonic()
        return super().finish(show, bound, limit)


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """No journalctl and no sync; the run's stream open until the time
    (seconds after finish began) the returned list holds."""
    closes = [0.0]
    began = time.monotonic()
    monkeypatch.setattr(journal, "_sync", lambda: None)
    monkeypatch.setattr(journal, "entries", lambda *a, **k: iter([]))
    monkeypatch.setattr(journal, "SETTLE_POLL", 0.01)
    monkeypatch.setattr(journal, "FOLLOW_QUIET", 0.02)
    monkeypatch.setattr(journal, "_streams_begun",
                        lambda since, until, unit=None: time.monotonic() - began < closes[0])
    return closes


def test_a_follower_shows_lines_while_journald_stores_them_past_the_bound(
    scripted: list[float],
) -> None:
    # journald stores the rest of a loud run for longer than the bound, a
    # line at a time: the follower waits as long as lines come
    scripted[0] = 0.9
    follower = ScriptedFollower([(0.2 * i, f"line {i}") for i in range(1, 5)])
    shown: list[str] = []
    assert follower.finish(shown.append, bound=0.35, limit=10)
    assert shown == ["line 1", "line 2", "line 3", "line 4"]


def test_a_follower_gives_up_once_no_line_came_for_the_bound_or_at_the_limit(
    scripted: list[float],
) -> None:
    scripted[0] = 60
    follower = ScriptedFollower([(0.1, "one")])
    shown: list[str] = []
    began = time.monotonic()
    assert not follower.finish(shown.append, bound=0.3, limit=10)
    assert shown == ["one"]
    assert 0.35 <= time.monotonic() - began < 5
    follower = ScriptedFollower([(0.1 * i, f"line {i}") for i in range(1, 100)])
    began = time.monotonic()
    assert not follower.finish(lambda line: None, bound=0.3, limit=0.5)
    assert 0.5 <= time.monotonic() - began < 5


def test_a_quiet_runs_follower_waits_only_the_quiet_time(scripted: list[float]) -> None:
    # the run's last line comes after its end: the quiet time is not restarted
    follower = ScriptedFollower([(0.01, "last")])
    shown: list[str] = []
    assert follower.finish(shown.append, bound=5, limit=10)
    assert shown == ["last"]


class GivingUp:
    """A follower whose wait for journald ends at its bound."""

    def __init__(self) -> None:
        self.asked: list[tuple[float, float]] = []

    def finish(self, show: Callable[[str], None], bound: float, limit: float) -> bool:
        self.asked.append((bound, limit))
        show("last line so far")
        return False


def test_run_and_follow_say_in_one_line_when_output_is_still_arriving(site: Site) -> None:
    job = load_job(str(site.job("loud", "name: Loud\ncommand: /bin/true\n")), site.config())
    follower, shown, said = GivingUp(), list[str](), list[str]()
    runner._finish(follower, job, False, True, shown.append, said.append)  # type: ignore[arg-type]
    assert follower.asked == [(runner.SETTLE_BOUND, runner.FOLLOW_LIMIT)]
    assert shown == ["last line so far"]
    assert said == ["-- output still arriving: journald had not stored all of it 0 s after "
                    "the run; run-job logs loud for the rest"]
    # another run began meanwhile: what the unit logs is its, not waited for
    follower, said = GivingUp(), []
    runner._finish(follower, job, True, False, shown.append, said.append)  # type: ignore[arg-type]
    assert follower.asked == [(0.0, runner.FOLLOW_LIMIT)] and said == []


def test_a_run_before_the_namespaces_oldest_entry_lost_its_output(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    oldest = {"__REALTIME_TIMESTAMP": str(START + 10), "__CURSOR": "s=ab;i=1f4;b=cd;x=ef"}
    monkeypatch.setattr(journal, "entries", lambda *a, **k: iter([oldest]))
    run = journal.Run("u.service", RUN, START, START + 20, "success", "exited", 0)
    assert journal.output_deleted(run)
    # the oldest entry is the namespace's first ever: nothing was deleted
    oldest["__CURSOR"] = "s=ab;i=1;b=cd;x=ef"
    assert not journal.output_deleted(run)
    # a run that began after it
    oldest["__CURSOR"] = "s=ab;i=1f4;b=cd;x=ef"
    assert not journal.output_deleted(journal.Run("u.service", RUN, START + 11, None, None,
                                                  None, None))

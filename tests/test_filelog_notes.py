"""What a ``logging: file`` run records about its file, and how it is read
back: the wrapper's and the check's lines run by the real ``/bin/sh`` (a
real full file system for the check: a tmpfs, mounted by root), the
reading with a stand-in ``journalctl`` that prints what the jobs'
namespace would hold (our own logic: which note is whose)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pc_systemd.systemd import filelog, filelog_notes, journal

UNIT = "process-control-x.service"


def check(directory: Path, invocation: str | None = "abc") -> str:
    """The check unit's command on ``directory`` (its parent the output
    directory), started for the failed run ``invocation`` (None: by hand)."""
    env = {"PATH": "/usr/bin:/bin"}
    if invocation is not None:
        env["MONITOR_INVOCATION_ID"] = invocation
    argv = [*filelog.check(str(directory.parent)), directory.name]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True,
                          stdin=subprocess.DEVNULL)
    assert done.stdout == ""
    return done.stderr


@pytest.fixture
def full(tmp_path: Path) -> Iterator[Path]:
    """A file system with no space left: a 64 KiB tmpfs, filled."""
    if os.geteuid() != 0:
        why = "mounting a tmpfs needs root"
        if "CI" in os.environ:
            pytest.fail(f"{why} (CI is set: this test must run, not skip)", pytrace=False)
        pytest.skip(why)
    directory = tmp_path / "full"
    directory.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)],
                   check=True)
    try:
        fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"x" * 4096):
                pass
        except OSError:
            pass  # ENOSPC: full
        finally:
            os.close(fd)
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=True)


def test_the_check_names_the_runs_file_when_its_file_system_is_full(full: Path) -> None:
    (full / ".run-abc").symlink_to("x-20240101-120000.log")
    said = check(full)
    assert said == (f"process-control: cannot write {full}/x-20240101-120000.log: No space left "
                    "on device (its file system was full when the run ended: the file may be "
                    "cut short)\n")
    # no link for this run: the directory
    assert check(full, "other").startswith(f"process-control: cannot write {full}: ")
    assert check(full, None) == ""  # not started by a failed run


def test_the_check_says_nothing_when_there_is_room_or_no_directory(tmp_path: Path) -> None:
    assert check(tmp_path) == ""
    assert check(tmp_path / "missing") == ""


def test_the_wrapper_says_why_it_cannot_make_the_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    directory = tmp_path / "file" / "job"
    done = subprocess.run(filelog.wrapped(str(directory), "job", ["/bin/echo", "never"]),
                          env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == f"process-control: cannot make {directory}: Not a directory\n"


@pytest.fixture
def journal_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, str]]]:
    """A journalctl that prints these entries (as ``-o json`` does), newest
    last, or newest first with --reverse; it records its arguments."""
    entries: list[dict[str, str]] = []
    script = tmp_path / "journalctl"
    data = tmp_path / "entries.json"
    script.write_text(
        "#!/usr/bin/python3\nimport json, sys\n"
        f"entries = json.load(open({str(data)!r}))\n"
        f"open({str(tmp_path / 'args')!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
        "if '--reverse' in sys.argv: entries.reverse()\n"
        "for e in entries: print(json.dumps(e))\n")
    script.chmod(0o755)
    monkeypatch.setattr(journal, "JOURNALCTL", str(script))
    yield entries
    assert data.exists()


def hold(tmp_path: Path, entries: list[dict[str, str]], *more: dict[str, str]) -> None:
    entries.extend(more)
    (tmp_path / "entries.json").write_text(json.dumps(entries))


def entry(at: int, text: str, invocation: str | None = None, unit: str = UNIT) -> dict[str, str]:
    out = {"__REALTIME_TIMESTAMP": str(at), "MESSAGE": text, "_SYSTEMD_UNIT": unit}
    if invocation is not None:
        out["_SYSTEMD_INVOCATION_ID"] = invocation
    return out


def test_only_our_lines_of_the_time_asked_are_notes(
        tmp_path: Path, journal_holds: list[dict[str, str]]) -> None:
    hold(tmp_path, journal_holds,
         entry(1_000, "process-control: too early"),
         entry(5_000_000, "a job's own syslog line"),
         entry(6_000_000, "process-control: cannot write /l/x.log: Permission denied", "r1"),
         entry(7_000_000, "process-control: two\nlines", None))
    notes = filelog_notes.read([UNIT], 2_000_000)
    assert [(n.at, n.invocation, n.text) for n in notes] == [
        (6_000_000, "r1", "process-control: cannot write /l/x.log: Permission denied"),
        (7_000_000, None, "process-control: two")]
    args = json.loads((tmp_path / "args").read_text())
    assert f"_SYSTEMD_UNIT={UNIT}" in args and "--since=@2" in args
    assert f"--namespace={journal.NAMESPACE}" in args
    # the newest only, oldest first
    assert [n.text for n in filelog_notes.read([UNIT], 0, last=2)] == [
        "process-control: cannot write /l/x.log: Permission denied", "process-control: two"]


def test_a_note_is_the_runs_that_began_before_it() -> None:
    check = "process-control-filecheck@x.service"
    notes = [filelog_notes.Note(UNIT, 10, "r1", "first"),
             filelog_notes.Note(check, 20, "c1", "the check's"),
             filelog_notes.Note(UNIT, 30, None, "untagged"),
             filelog_notes.Note("other.service", 40, None, "not this job's")]
    units = {UNIT, check}
    assert filelog_notes.of_run(notes, units, 15) == ["the check's", "untagged"]
    assert filelog_notes.of_run(notes, units, 5, end=25) == ["first", "the check's"]
    assert filelog_notes.of_run(notes, {UNIT}, 5) == ["first", "untagged"]
    assert filelog_notes.of_run(notes, units, 45) == []

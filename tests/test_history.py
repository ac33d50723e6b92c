"""Run history: the original's file, kept to 20 entries, counted failures,
and never left corrupt by concurrent writers or a crash."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from pc_systemd import history as hist
from pc_systemd.history import Entry, History

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def run(n: int, status: str = "completed", pid: int = 100) -> tuple[Entry, Entry]:
    start = T0 + dt.timedelta(minutes=n)
    end = start + dt.timedelta(seconds=30)
    began = Entry("started", start, start=start, pid=pid)
    code = {"completed": 0, "failed": 1}.get(status)
    return began, Entry(status, end, start=start, end=end, pid=pid, code=code)


def record(path: Path, n: int, status: str = "completed") -> History:
    began, ended = run(n, status)
    hist.update(str(path), lambda h: h.started(began), pytest.fail)
    return hist.update(str(path), lambda h: h.finished(ended), pytest.fail)


def test_a_run_is_one_entry_started_then_finished(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    began, ended = run(1)
    after_start = hist.update(str(path), lambda h: h.started(began), pytest.fail)
    assert [e.status for e in after_start.entries] == ["started"]
    assert after_start.last_completion_status == "unknown"
    after_end = hist.update(str(path), lambda h: h.finished(ended), pytest.fail)
    assert after_end.entries == (ended,)
    assert after_end.last_completion_status == "success"
    assert hist.load(str(path)) == after_end
    assert ended.duration == 30.0


def test_the_file_has_the_original_keys_and_times(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    record(path, 1, "failed")
    data = yaml.safe_load(path.read_text())
    assert list(data) == ["history", "last_completion_status", "consecutive_failures"]
    assert data["last_completion_status"] == "failure"
    (entry,) = data["history"]
    # UTC without a zone, as the original's utcnow().isoformat(" ").
    assert entry["time"] == "2024-05-01 12:01:30"
    assert entry["start"] == "2024-05-01 12:01:00"
    assert entry["status"] == "failed" and entry["code"] == 1 and entry["pid"] == 100


def test_only_the_last_20_entries_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    for n in range(3):
        record(path, n)

    def more_runs(h: History) -> History:
        for n in range(3, 25):
            began, ended = run(n)
            h = h.started(began).finished(ended)
        return h

    hist.update(str(path), more_runs, pytest.fail)
    kept = hist.load(str(path)).entries
    assert len(kept) == hist.MAX_ENTRIES == 20
    assert [e.start for e in kept] == [T0 + dt.timedelta(minutes=n) for n in range(5, 25)]
    assert {e.status for e in kept} == {"completed"}


def test_last_completion_status_and_consecutive_failures(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    seen = []
    for n, status in enumerate(["failed", "failed", "skipped", "failed", "completed", "failed"]):
        h = record(path, n, status)
        seen.append((h.last_completion_status, h.consecutive_failures))
    assert seen == [
        ("failure", 1),
        ("failure", 2),
        ("skipped", 2),  # a skipped run neither breaks nor extends the streak
        ("failure", 3),
        ("success", 0),
        ("failure", 1),
    ]


def test_a_run_finishing_after_others_replaces_its_own_entry(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    began, ended = run(1, pid=7)
    hist.update(str(path), lambda h: h.started(began), pytest.fail)
    _, skipped = run(2, "skipped", pid=8)
    hist.update(str(path), lambda h: h.finished(skipped), pytest.fail)
    final = hist.update(str(path), lambda h: h.finished(ended), pytest.fail)
    assert final.entries == (ended, skipped)
    assert final.last_completion_status == "success"


def test_the_originals_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            history:
            - status: started
              time: '2017-03-01 10:00:00.123456'
            - status: completed
              time: '2017-03-01 10:00:05.000001'
            - status: started
              time: '2017-03-01 11:00:00'
            - status: failed
              time: '2017-03-01 11:00:01'
            - status: started
              time: 2017-03-01 12:00:00
            - status: failed
              time: 2017-03-01 12:00:01
            last_completion_status: failure
            """
        )
    )
    loaded = hist.load(str(path))
    assert loaded.last_completion_status == "failure"
    assert loaded.consecutive_failures == 2  # counted from the entries
    assert loaded.entries[0].time == dt.datetime(2017, 3, 1, 10, 0, 0, 123456, tzinfo=dt.UTC)
    assert loaded.entries[-1].time == dt.datetime(2017, 3, 1, 12, 0, 1, tzinfo=dt.UTC)
    assert hist.parse(hist.dump(loaded)) == loaded


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("history: [\n", "not valid YAML"),
        ("", "expected a mapping"),
        ("history: 5\nlast_completion_status: success\n", "history: expected a list"),
        ("history:\n- status: lost\n  time: '2024-01-01 00:00:00'\n", "history[0].status"),
        ("history:\n- status: failed\n  time: yesterday\n", "history[0].time: not a time"),
        ("history: []\nlast_completion_status: great\n", "unknown status 'great'"),
        ("history: []\nconsecutive_failures: -1\n", "consecutive_failures"),
    ],
)
def test_a_corrupt_file_is_reported_kept_aside_and_replaced(
    tmp_path: Path, text: str, why: str
) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    with pytest.raises(hist.HistoryError, match=re.escape(why)):
        hist.load(str(path))
    warnings: list[str] = []
    began, _ = run(1)
    new = hist.update(str(path), lambda h: h.started(began), warnings.append)
    (warning,) = warnings
    assert warning.startswith(f"{path}: unreadable run history (")
    assert warning.endswith("); starting a new one")
    assert why in warning
    assert new.entries == (began,)
    assert hist.load(str(path)) == new
    assert (tmp_path / "job.yaml.corrupt").read_text() == text


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    for n in range(3):
        record(path, n)
    assert sorted(os.listdir(tmp_path)) == ["job.yaml", "job.yaml.lock"]


WRITER = textwrap.dedent(
    """
    import datetime as dt, os, sys
    from pc_systemd import history as hist
    path, count = sys.argv[1], int(sys.argv[2])
    print(flush=True)
    for n in range(count):
        now = dt.datetime.now(dt.UTC)
        entry = hist.Entry("failed", now, start=now, end=now, pid=os.getpid(), reason="x" * 500)
        hist.update(path, lambda h: h.finished(entry), print)
    """
)


def test_concurrent_writers_lose_no_update(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), "6"]) for _ in range(5)
    ]
    assert [w.wait(60) for w in writers] == [0] * 5
    final = hist.load(str(path))
    # Every one of the 30 failures counted: no write was based on a stale read.
    assert final.consecutive_failures == 30
    assert len(final.entries) == 20


def test_a_writer_killed_at_any_moment_leaves_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    for delay in (0.05, 0.13, 0.21, 0.29):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), "100000"], stdout=subprocess.PIPE
        )
        assert writer.stdout is not None
        writer.stdout.readline()
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        loaded = hist.load(str(path))  # raises if the file were half-written
        assert loaded.consecutive_failures > 0

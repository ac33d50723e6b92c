"""Run history: the original's file, kept to 20 entries, counted failures,
and never left corrupt by concurrent writers or a crash."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from pc_systemd.cron import history as hist
from pc_systemd.cron.history import Entry, History
from tests.conftest import within

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


# Malformed histories a job can write (see the corrupt-file test below).
ENTRY = "history:\n- status: failed\n  time: {time}\n"
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"b{i}: &b{i} [{', '.join([f'*{p}'] * 9)}]\n"
    for i, p in enumerate(["a"] + [f"b{n}" for n in range(19)])
) + "history: [*b19]\n"


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
        # What a job could write to break recording for good, or crash a reader.
        (ENTRY.format(time="0000-01-01 00:00:00"), "year 0 is out of range"),
        (ENTRY.format(time="'0000-01-01 00:00:00'"), "history[0].time: not a time"),
        (ENTRY.format(time="2024-13-01 00:00:00"), "month must be in 1..12"),
        (ENTRY.format(time="2024-01-01 00:00:00+99:00"), "unusable value: offset"),
        (ENTRY.format(time="'2024-01-01 00:00:00+99:00'"), "history[0].time: not a time"),
        (ENTRY.format(time="'0001-01-01 00:00:00+05:00'"), "history[0].time: time out of range"),
        (ENTRY.format(time="9999-12-31 23:59:59"), "history[0].time: time out of range"),
        (ENTRY.format(time="5"), "history[0].time: expected a time, got int"),
        (ENTRY.format(time="2024-01-01 00:00:00") + "  pid: " + "9" * 5000 + "\n",
         "unusable value: Exceeds the limit"),
        (ENTRY.format(time="2024-01-01 00:00:00") + "  pid: 99999999999\n",
         "history[0].pid: out of range"),
        (ENTRY.format(time="2024-01-01 00:00:00") + "  code: " + "9" * 40 + "\n",
         "history[0].code: out of range"),
        (ENTRY.format(time="2024-01-01 00:00:00") + "  reason: " + "x" * 5000 + "\n",
         "history[0].reason: longer than 4096 characters"),
        (ENTRY.format(time="2024-01-01 00:00:00") + "  pid: '1'\n",
         "history[0].pid: expected int, got str"),
        (ENTRY.format(time="2024-01-01 00:00:00") + "  pid: [1]\n", "nested too deeply"),
        ("history: []\nconsecutive_failures: " + "9" * 30 + "\n", "consecutive_failures"),
        ("history: {a: 1}\n", "history: expected a list"),
        ("history:\n- [a, b]\n", "history[0]: expected a mapping"),
        ("- 1\n- 2\n", "expected a mapping"),
        (BOMB, "YAML alias"),
        ("history: " + "[" * 500 + "]" * 500 + "\n", "nested too deeply"),
        ("history: " + "[" * 5000 + "]" * 5000 + "\n", "not valid YAML"),
        ("history:\n" + "- {status: failed, time: '2024-01-01 00:00:00'}\n" * 1001,
         "more than 1000 entries"),
    ],
)
def test_a_corrupt_file_is_reported_kept_aside_and_replaced(
    tmp_path: Path, text: str, why: str
) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(text)
    with pytest.raises(hist.HistoryError, match=re.escape(why)):
        within(5, lambda: hist.load(str(path)))
    warnings: list[str] = []
    began, _ = run(1)
    new = within(5, lambda: hist.update(str(path), lambda h: h.started(began), warnings.append))
    (warning,) = warnings
    assert warning.startswith(f"{path}: unreadable run history (")
    assert warning.endswith("); kept as .corrupt, starting a new one")
    assert why in warning
    assert new.entries == (began,)
    assert "\n" not in warning
    assert hist.load(str(path)) == new
    corrupt = tmp_path / "job.yaml.corrupt"
    assert corrupt.read_text() == text
    assert stat.S_IMODE(corrupt.stat().st_mode) == 0o600


def test_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    for n in range(3):
        record(path, n)
    assert sorted(os.listdir(tmp_path)) == ["job.yaml", "job.yaml.lock"]


WRITER = textwrap.dedent(
    """
    import datetime as dt, os, sys
    from pc_systemd.cron import history as hist
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


# -- hostile files: every job can write them, root reads them --------------------


def test_bytes_that_are_not_utf8_are_a_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_bytes(b"history: []\nlast_completion_status: \xff\xfe\n")
    with pytest.raises(hist.HistoryError, match=r"not valid UTF-8 \(byte 36\)"):
        hist.load(str(path))


def test_a_huge_file_is_refused_after_reading_a_bounded_part(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    with path.open("wb") as handle:  # sparse: 1 GiB that costs nothing to make
        handle.truncate(1 << 30)
    started = time.monotonic()
    with pytest.raises(hist.HistoryError, match=r"larger than 1048576 bytes"):
        hist.load(str(path))
    assert time.monotonic() - started < 1.0  # 1 GiB read whole takes seconds
    warnings: list[str] = []
    hist.update(str(path), lambda h: h, warnings.append)
    assert len(warnings) == 1 and (tmp_path / "job.yaml.corrupt").exists()


def test_a_symlink_is_refused_and_replaced_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(hist.dump(History(last_completion_status="success")))
    path = tmp_path / "job.yaml"
    path.symlink_to(secret)
    with pytest.raises(hist.HistoryError, match="is a symlink"):
        hist.load(str(path))
    warnings: list[str] = []
    began, _ = run(1)
    hist.update(str(path), lambda h: h.started(began), warnings.append)
    assert warnings == [f"{path}: unreadable run history (is a symlink); starting a new one"]
    assert not path.is_symlink() and hist.load(str(path)).entries == (began,)
    assert not (tmp_path / "job.yaml.corrupt").exists()  # not ours to keep
    assert "success" in secret.read_text()


def test_a_fifo_is_refused_without_waiting(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    os.mkfifo(path)
    with pytest.raises(hist.HistoryError, match="not a regular file"):
        within(5, lambda: hist.load(str(path)))
    warnings: list[str] = []
    within(5, lambda: hist.update(str(path), lambda h: h, warnings.append))
    assert len(warnings) == 1 and path.is_file()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_a_file_of_another_user_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    record(path, 1)
    os.chown(path, 65534, 65534)
    with pytest.raises(hist.HistoryError, match="owned by uid 65534, not by uid 0"):
        hist.load(str(path))
    assert hist.load(str(path), owner=65534).last_completion_status == "success"
    with pytest.raises(hist.HistoryError, match="owned by uid 65534, not by the service user"):
        hist.load(str(path), owner=None)  # no such service user: nobody's file is read
    warnings: list[str] = []
    hist.update(str(path), lambda h: h, warnings.append)
    assert len(warnings) == 1 and path.stat().st_uid == 0
    assert not (tmp_path / "job.yaml.corrupt").exists()


def test_files_are_not_for_other_users(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(hist.dump(History()))
    path.chmod(0o644)  # as older versions wrote it
    record(path, 1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "job.yaml.lock").stat().st_mode) == 0o600

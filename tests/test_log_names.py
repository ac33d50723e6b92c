"""A run's log file has one name, ``<slug>-YYYYmmdd-HHMMSS[-N].log``, whoever
writes it: the systemd path's inline ``/bin/sh`` wrapper (date(1)), the
direct runner (Python), and whoever looks for it (``--logs``, the failure mail)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from pc_systemd.cron.runlog import RunLog, log_names
from pc_systemd.model.job import LOG_STAMP, log_name, log_name_pattern
from pc_systemd.systemd import filelog, filelog_notes

WHEN = 1_700_000_000  # 2023-11-14 22:13:20 UTC


def run_wrapper(directory: Path, slug: str, bin_dir: Path) -> None:
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "TZ": "UTC"}
    argv = filelog.wrapped(str(directory / slug), slug, ["/bin/echo", "hello"])
    subprocess.run(argv, env=env, check=True, stdin=subprocess.DEVNULL)


def test_the_wrappers_files_are_named_as_the_python_side_reads_them(tmp_path: Path) -> None:
    # date(1) at a fixed moment, with the format the script itself passes
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    real_date = next(p for p in ("/usr/bin/date", "/bin/date") if os.path.exists(p))
    (bin_dir / "date").write_text(f'#!/bin/sh\nexec {real_date} -d @{WHEN} "$@"\n')
    (bin_dir / "date").chmod(0o755)
    out = tmp_path / "out"
    out.mkdir()
    for _ in range(2):  # the second run of the same second gets -1
        run_wrapper(out, "nightly-job", bin_dir)
    stamp = time.strftime(LOG_STAMP, time.gmtime(WHEN))
    expected = [log_name("nightly-job", stamp), log_name("nightly-job", stamp, 1)]
    assert sorted(os.listdir(out / "nightly-job")) == sorted(expected)
    fd, names = log_names(str(out), "nightly-job")
    os.close(fd)
    assert names == expected
    assert (out / "nightly-job" / expected[0]).read_text() == "hello\n"


def test_the_direct_runners_files_match_the_pattern(tmp_path: Path) -> None:
    logs = [RunLog.create(str(tmp_path), "job", WHEN) for _ in range(2)]
    for log in logs:
        log.close()
    found = [log_name_pattern("job").match(os.path.basename(log.path)) for log in logs]
    assert [m.groups() if m else None for m in found] == [
        (time.strftime(LOG_STAMP, time.localtime(WHEN)), None),
        (time.strftime(LOG_STAMP, time.localtime(WHEN)), "1"),
    ]


def test_the_pattern_takes_only_the_jobs_own_names() -> None:
    pattern = log_name_pattern("a.b")
    assert pattern.match(log_name("a.b", "20240101-120000", 12))
    for name in ("axb-20240101-120000.log", "a.b-20240101-120000.log.x",
                 "a.b-2024010-120000.log", "a.b-20240101-120000-.log", "../a.b-20240101-120000.log",
                 "a.b-c-20240101-120000.log"):
        assert not pattern.match(name), name


def test_a_name_gives_back_the_time_it_was_made() -> None:
    stamp = time.strftime(LOG_STAMP, time.localtime(WHEN))
    for n in (0, 3):
        assert filelog_notes.stamp_time(log_name("a.b", stamp, n), "a.b") == WHEN * 1_000_000
    assert filelog_notes.stamp_time("a.b-2023.log", "a.b") is None
    assert filelog_notes.stamp_time(log_name("x", stamp, 0), "a.b") is None

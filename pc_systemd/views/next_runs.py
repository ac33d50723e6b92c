"""``run-job --next JOB``: when the job's timer will fire, and its schedule
in words.

The times come from systemd's own calendar code, ``systemd-analyze
calendar --iterations=N`` on the job's ``OnCalendar=`` lines (exactly what
the timer will use, time zones and DST included; it needs no running
systemd). Several lines are ORed by systemd, so their times are merged.
The words come from the ``cron-descriptor`` library.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from dataclasses import dataclass

from pc_systemd.model.job import Job

SYSTEMD_ANALYZE = "systemd-analyze"
# "    Next elapse: Sat 2026-11-28 13:30:00 UTC", "       Iter. #2: ...",
# "       (in UTC): Sat 2026-11-28 12:30:00 UTC" (printed when local time is not UTC).
_LINE = re.compile(
    r"^\s*(?P<what>Next elapse|Iter\. #\d+|\(in UTC\)):\s+\w+ "
    r"(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?P<zone>\S+)\s*$"
)


class NextError(Exception):
    """The next runs cannot be computed; one line."""


@dataclass(frozen=True)
class NextRuns:
    schedule: str
    words: str
    times: tuple[dt.datetime, ...]  # UTC


def describe(expr: str) -> str:
    """The schedule in plain English, by cron-descriptor.

    Optional: Debian 12 does not package it, so the Debian package runs
    without it and ``--next`` then gives the times alone."""
    try:  # here: an optional package, and only --next uses it
        from cron_descriptor import Options, get_description
    except ImportError:
        return "no description: cron-descriptor is not installed"

    options = Options()
    options.use_24hour_time_format = True
    try:
        return str(get_description(expr, options))
    except Exception:  # the library's own errors have no common base; the times still tell
        return "(no description)"


def parse_calendar(text: str) -> list[dt.datetime]:
    """Elapse times (UTC) from ``systemd-analyze calendar`` output."""
    times: list[dt.datetime] = []
    pending: str | None = None  # a local time waiting for its "(in UTC)" line
    for line in text.splitlines():
        found = _LINE.match(line)
        if found is None:
            continue
        stamp = dt.datetime.strptime(found["time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
        if found["what"] == "(in UTC)":
            times.append(stamp)
            pending = None
        elif found["zone"] == "UTC":
            times.append(stamp)
        else:
            if pending is not None:
                raise NextError(f"{SYSTEMD_ANALYZE} gave no UTC time for {pending}")
            pending = found["time"]
    return times


def next_runs(job: Job, count: int) -> NextRuns:
    if job.schedule is None:
        raise NextError(f"{job.slug}: the job has no schedule (it runs only by hand)")
    calendars = job.schedule.on_calendar(job.timezone)
    try:
        done = subprocess.run(
            [SYSTEMD_ANALYZE, "calendar", f"--iterations={count}", *calendars],
            capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
            env={**os.environ, "SYSTEMD_COLORS": "0", "LC_ALL": "C.UTF-8"},
        )
    except OSError as err:
        raise NextError(f"cannot run {SYSTEMD_ANALYZE}: {err.strerror}") from None
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise NextError(f"{SYSTEMD_ANALYZE} calendar: {why}")
    times = sorted(set(parse_calendar(done.stdout)))[:count]
    words = describe(job.schedule.expr)
    if not job.schedule.days_ored:
        # cron-descriptor always ORs the two day fields; Debian cron ANDs
        # them when either starts with '*' (docs/schedules.md).
        words = words.replace(", or on ", ", and on ")
    if job.timezone:
        words += f" ({job.timezone} time)"
    return NextRuns(job.schedule.expr, words, tuple(times))

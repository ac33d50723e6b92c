"""Under load, with the package installed on a real systemd 252: 200 jobs
every minute, each printing 2,000 lines, for two scheduled minutes. Every
run happens, every run succeeds, and every line of every run is in the
journal (the jobs' namespace has no rate limit, journald restarts when it
dies: tests/test_journal_systemd.py)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import install_package
from tests.systemd_box import SystemdBox, require_systemd_box

pytestmark = pytest.mark.systemd

JOBS = 200
LINES = 2_000
MINUTES = 2
SUCCEEDED = "7ad2d189f7e94e70a38c781354912448"  # systemd's "Deactivated successfully"
STARTING = "7d4958e842da4a758f6c1cdc7b36dcc5"
JOB_FILES = {f"load-{n:03}": (f"name: Load {n}\ncommand: /usr/bin/seq 1 {LINES}\n"
                              "schedule: '* * * * *'\n") for n in range(JOBS)}


@pytest.fixture(scope="module")
def box(built: Path) -> Iterator[SystemdBox]:
    require_systemd_box()
    with SystemdBox() as booted:
        install_package(booted, built, JOB_FILES)
        yield booted


def records(box: SystemdBox, message_id: str, since: float) -> list[dict[str, str]]:
    out = box.run(["journalctl", "-o", "json", "--output-fields=UNIT,INVOCATION_ID",
                   f"--since=@{since:.0f}", "_PID=1", f"MESSAGE_ID={message_id}"],
                  timeout=120).stdout
    return [json.loads(line) for line in out.splitlines()
            if json.loads(line).get("UNIT", "").startswith("process-control-load-")]


def test_200_every_minute_jobs_run_every_minute_and_keep_every_line(box: SystemdBox) -> None:
    timers = box.run(["systemctl", "list-timers", "--all", "--no-legend",
                      "process-control-load-*"]).stdout
    assert len(timers.splitlines()) == JOBS
    # from the next whole minute on, for MINUTES minutes
    first = (int(time.time()) // 60 + 1) * 60
    last = first + (MINUTES - 1) * 60
    time.sleep(max(0.0, last + 40 - time.time()))
    box.wait_until(lambda: not box.run(["systemctl", "list-units", "--state=activating",
                                        "--no-legend", "process-control-load-*"]).stdout,
                   timeout=120, interval=1, what="the last minute's runs over")
    window = (first - 1) * 1_000_000, (last + 60) * 1_000_000
    started = [r for r in records(box, STARTING, first - 1)
               if int(r["__REALTIME_TIMESTAMP"]) < window[1]]
    runs = {r["INVOCATION_ID"]: r["UNIT"] for r in started}
    per_job = Counter(runs.values())
    assert len(per_job) == JOBS and set(per_job.values()) == {MINUTES}, per_job
    ended = {r["INVOCATION_ID"] for r in records(box, SUCCEEDED, first - 1)}
    assert set(runs) <= ended, sorted(set(runs) - ended)[:5]

    def short_jobs() -> list[str]:
        """Jobs without every line of their runs: journald may still be
        storing them. Under this load journald stores most lines after the
        job's process is gone, without _SYSTEMD_INVOCATION_ID (it reads that
        from the cgroup; _SYSTEMD_UNIT it has from the stream): a job's lines
        are those of its unit in the two minutes, as `run-job logs` takes
        them (pc_systemd.systemd.journal.of_run), less another run's."""
        out = box.run(["journalctl", "--namespace=process-control", "-o", "json",
                       "--output-fields=_SYSTEMD_INVOCATION_ID,_SYSTEMD_UNIT",
                       f"--since=@{first - 1}"], timeout=300).stdout
        lines: Counter[str] = Counter()
        for line in out.splitlines():
            entry = json.loads(line)
            tag = entry.get("_SYSTEMD_INVOCATION_ID")
            if (window[0] <= int(entry["__REALTIME_TIMESTAMP"]) < window[1]
                    and (not tag or tag in runs)):
                lines[entry.get("_SYSTEMD_UNIT", "")] += 1
        short = [f"{unit}: {lines[unit]}" for unit in sorted(per_job)
                 if lines[unit] != LINES * MINUTES]
        if short:
            short.append(f"lines of no unit: {lines['']}")
        return short

    try:
        box.wait_until(lambda: not short_jobs(), timeout=180, interval=5,
                       what="every line of every run stored")
    except TimeoutError:
        short = short_jobs()
        raise AssertionError(f"{len(short) - 1} of {JOBS} jobs short: "
                             f"{short[:10]}, {short[-1]}") from None

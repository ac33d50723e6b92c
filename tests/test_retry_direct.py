"""The ``retry`` job key on the direct runner (cron hosts), with real
processes: attempts within the run's lock, delays growing by ``backoff``,
one history entry and one failure (mail, cron's output) per run, every
attempt in the run's log file."""

from __future__ import annotations

import itertools
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import Site
from tests.direct_runs import (  # noqa: F401  (fixtures)
    cron_site,
    history,
    log_lines,
    make_job,
    run,
    start_runner,
    wait_for,
)
from tests.mail_server import FROM, TO, Inbox, mailing_site, smtp  # noqa: F401  (fixtures)
from tests.mail_server import make_job as make_mail_job
from tests.mail_server import run as run_mailing


def counting(site: Site, succeed_at: int, code: int = 3) -> str:
    """A command that notes when each attempt starts and fails (exit
    ``code``) until attempt ``succeed_at``."""
    times = site.root / "times"
    return (f"/bin/sh -c 'date +%s.%N >> {times}; n=$(wc -l < {times}); echo attempt $n;"
            f" [ $n -ge {succeed_at} ] || exit {code}'")


def starts(site: Site) -> list[float]:
    return [float(line) for line in (site.root / "times").read_text().split()]


def gaps(values: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(values)]


def test_a_run_retried_to_success_prints_nothing_and_is_one_completed_run(
    cron_site: Site,
) -> None:
    retry = {"attempts": 3, "delay": 0.005, "backoff": 2}  # 0.3 s, then 0.6 s
    job = make_job(cron_site, command=counting(cron_site, 3), retry=retry)
    assert run(cron_site, job) == (0, "")  # cron mails nothing
    waits = gaps(starts(cron_site))
    assert len(waits) == 2
    assert 0.3 <= waits[0] < 0.3 + 0.5 and 0.6 <= waits[1] < 0.6 + 0.5, waits
    (entry,) = history(cron_site).entries
    assert (entry.status, entry.reason, entry.code) == ("completed", None, 0)
    assert history(cron_site).consecutive_failures == 0
    lines = [text for _level, text in log_lines(entry.log or "")]
    assert "attempt 1" in lines and "attempt 3" in lines
    marks = [text for text in lines if text.startswith("----------- attempt")]
    assert marks == [
        "----------- attempt 1 of 4 failed: Job failed with code 3; attempt 2 in 0.3 s",
        "----------- attempt 2 of 4",
        "----------- attempt 2 of 4 failed: Job failed with code 3; attempt 3 in 0.6 s",
        "----------- attempt 3 of 4",
    ]


def test_a_run_whose_attempts_all_fail_is_one_failed_run(cron_site: Site) -> None:
    job = make_job(cron_site, command=counting(cron_site, 99, 4),
                   retry={"attempts": 2, "delay": 0.002})
    assert run(cron_site, job) == (1, "Job failed with code 4\n")  # said once
    assert len(starts(cron_site)) == 3
    assert all(0.12 <= gap < 0.12 + 0.5 for gap in gaps(starts(cron_site)))
    (entry,) = history(cron_site).entries
    assert (entry.status, entry.code) == ("failed", 4)
    assert history(cron_site).consecutive_failures == 1
    assert run(cron_site, job)[0] == 1
    assert len(starts(cron_site)) == 6
    assert [e.status for e in history(cron_site).entries] == ["failed", "failed"]
    assert history(cron_site).consecutive_failures == 2  # runs, not attempts


def test_a_timeout_is_a_failure_and_is_retried(cron_site: Site) -> None:
    job = make_job(cron_site, command="sleep 30", timeout=0.005,
                   retry={"attempts": 1, "delay": 0.001})
    began = time.monotonic()
    assert run(cron_site, job, kill_grace=0.3) == (1, "Job timed out after 0.005 minutes\n")
    took = time.monotonic() - began
    assert 2 * 0.3 + 0.06 <= took < 3  # two attempts of 0.3 s and the delay
    (entry,) = history(cron_site).entries
    marks = [t for _l, t in log_lines(entry.log or "") if t.startswith("----------- attempt")]
    assert marks[0].startswith("----------- attempt 1 of 2 failed: Job timed out after")


def test_only_the_last_attempt_fails_the_run_for_mail(
    mailing_site: Site, smtp: tuple[Inbox, int],
) -> None:
    inbox, _port = smtp
    job = make_mail_job(mailing_site, "flaky", command=counting(mailing_site, 2),
                        retry={"attempts": 1, "delay": 0.001},
                        failmail={"from_address": FROM, "to_address": TO})
    assert run_mailing(mailing_site, job) == (0, [])
    assert inbox.received == []
    job = make_mail_job(mailing_site, "down", command="/bin/sh -c 'echo no; exit 6'",
                        retry={"attempts": 2, "delay": 0.001},
                        failmail={"from_address": FROM, "to_address": TO})
    assert run_mailing(mailing_site, job) == (1, ["Down failed with code 6"])
    (got,) = inbox.received
    assert "Failed:  1 run(s) in a row" in got.body
    # the mail's output is the run's log: every attempt
    assert len([line for line in got.body.splitlines() if line.endswith("\tno")]) == 3, got.body


def wait_for_mark(site: Site, text: str) -> Path:
    def found() -> Path | None:
        for log in (site.root / "log").rglob("*.log"):
            if text in log.read_text():
                return log
        return None

    found_log: Path = wait_for(found)
    return found_log


def test_the_lock_is_held_between_attempts_and_sigterm_ends_the_wait(
    cron_site: Site, start_runner: Callable[[], subprocess.Popen[str]],
) -> None:
    job = make_job(cron_site, command="/bin/false", retry={"attempts": 1, "delay": 0.5})
    runner = start_runner()
    wait_for_mark(cron_site, "attempt 1 of 2 failed")
    # a second run meanwhile is refused: the first still holds the lock
    status, out = run(cron_site, job)
    assert status == 1 and "not started: the previous run" in out
    runner.send_signal(signal.SIGTERM)
    out, err = runner.communicate(timeout=10)  # not the 30 s delay
    assert (runner.returncode, out, err) == (128 + signal.SIGTERM,
                                             "Job was terminated by SIGTERM\n", "")
    entries = [(e.status, e.reason) for e in history(cron_site).entries]
    assert ("failed", "Job was terminated by SIGTERM") in entries


def test_the_delay_of_each_attempt_is_delay_times_backoff_to_the_power(
    cron_site: Site,
) -> None:
    job = make_job(cron_site, command="true", retry={"attempts": 4, "delay": 2, "backoff": 1.5})
    assert job.retry is not None
    assert [job.retry.wait(n) for n in range(1, 5)] == [120.0, 180.0, 270.0, 405.0]

"""The ``retry`` job key: a failed run is tried again, up to ``attempts``
more times, ``delay`` minutes after each failed attempt (times ``backoff``
to the power of the attempts already retried); the run is failed only when
its last attempt fails.

Both backends carry it out (the direct runner in :mod:`pc_systemd.cron.direct`,
systemd through ``Restart=on-failure``); what systemd 252 cannot do with a
job's one service is refused here, one line per reason
(:func:`systemd_refusals`), so the generator and ``run-job --validate``
say the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pc_systemd.model import fields as f
from pc_systemd.model.nodes import Entry
from pc_systemd.model.schedule import CronSchedule, shortest_gap

MAX_ATTEMPTS = 100
# The longest a stopped attempt takes to end on systemd: TimeoutStopSec=5s
# (then SIGKILL), plus the set-up of the next attempt.
STOP_SLACK = 10.0
DAY = 86400.0


@dataclass(frozen=True)
class Retry:
    attempts: int  # retries after the first attempt
    delay: float  # minutes before the first retry
    backoff: float = 1.0  # each later delay is the one before times this

    def wait(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1 = the first retry)."""
        return self.delay * 60 * self.backoff ** (retry - 1)


def retry(entry: Entry) -> Retry:
    sub = f.sub_entries(entry, ("attempts", "delay", "backoff"), required=("attempts", "delay"))
    attempts = f.positive_int(sub["attempts"])
    if attempts > MAX_ATTEMPTS:
        raise sub["attempts"].problem(f"must be at most {MAX_ATTEMPTS}, got {attempts}")
    delay = f.minutes(sub["delay"])
    backoff = f.positive_number(sub["backoff"]) if "backoff" in sub else 1.0
    if backoff < 1:
        raise sub["backoff"].problem(f"must be a number >= 1, got {backoff}")
    value = Retry(attempts, delay, backoff)
    try:
        longest = value.wait(attempts)
    except OverflowError:
        longest = math.inf
    if longest > 10 * 365 * DAY:
        raise entry.problem("the last delay (delay * backoff ** (attempts - 1)) is longer "
                            "than ten years")
    return value


@dataclass(frozen=True)
class StartLimit:
    """What bounds the attempts on systemd 252, which has no setting for
    a number of restarts: its start limit. Every start counts (the first
    attempt and each restart); the ``burst + 1``-th start within
    ``interval`` seconds of the first is refused, which ends the retries.
    A run that ends in success clears the count; one whose attempts all
    failed leaves it full, so a start within the window is refused: the
    timer's next run must come after it (:func:`systemd_refusals`), and
    ``run-job run`` clears it first (measured in tests/test_retry_systemd.py)."""

    burst: int
    interval: float  # seconds


def start_limit(value: Retry, timeout_minutes: float) -> StartLimit:
    """The window must outlast every attempt of a run (each at most the
    timeout, its stop and its delay) so the refused start falls inside it."""
    per_attempt = timeout_minutes * 60 + value.delay * 60 + STOP_SLACK
    return StartLimit(value.attempts + 1, math.ceil((value.attempts + 1) * per_attempt))


def systemd_refusals(
    value: Retry, timeout_minutes: float, schedule: CronSchedule | None,
) -> list[str]:
    """Why systemd 252 cannot carry out ``value`` for this job (empty: it can)."""
    problems = []
    if value.backoff != 1:
        problems.append("backoff is not possible on systemd 252: a service has one RestartSec= "
                        "(growing delays, RestartSteps=, came in systemd 254); use backoff: 1")
    if timeout_minutes == 0:
        problems.append("needs a timeout on systemd: the start limit that ends the attempts "
                        "must outlast them all")
        return problems
    limit = start_limit(value, timeout_minutes)
    gap = shortest_gap(schedule) if schedule is not None else None
    if gap is not None and gap <= limit.interval:
        problems.append(
            f"the attempts of one run may take {_span(limit.interval)}, and the schedule "
            f"starts runs {_span(gap)} apart: systemd's start limit would refuse the next run "
            "(shorten timeout, delay or attempts)")
    return problems


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:g} s"
    return f"{seconds / 60:.4g} min"

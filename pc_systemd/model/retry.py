"""The ``retry`` job key: a failed run is tried again, up to ``attempts``
more times, ``delay`` minutes after each failed attempt (times ``backoff``
to the power of the attempts already retried); the run is failed only when
its last attempt fails.

Both backends carry it out (the direct runner in :mod:`pc_systemd.cron.direct`,
systemd through ``Restart=on-failure``, with ``RestartSteps=`` for a
backoff: :func:`restart_steps`); what the systemd that runs cannot do with a
job's one service is refused here, one line per reason
(:func:`systemd_refusals`, given its version), so the generator and
``run-job --validate`` say the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pc_systemd.model import fields as f
from pc_systemd.model.nodes import Entry
from pc_systemd.model.schedule import CronSchedule, shortest_gap
from pc_systemd.model.systemd_version import BACKOFF_SINCE

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
class Steps:
    """Growing delays on systemd >= 254: ``RestartSteps=`` steps from
    ``RestartSec=`` (the first delay) to ``RestartMaxDelaySec=``."""

    steps: int
    max_delay: float  # seconds


def restart_steps(value: Retry) -> Steps | None:
    """systemd's growing delays for ``value`` (None: its delays do not grow).

    systemd (src/core/service.c, service_restart_usec_next) waits
    ``RestartSec * (RestartMaxDelaySec / RestartSec) ** ((i - 1) / RestartSteps)``
    before restart ``i`` (1 = the first) while ``i <= RestartSteps``, and
    ``RestartMaxDelaySec`` after. With ``attempts - 1`` steps up to the last
    wait, that is ``delay * backoff ** (i - 1)`` for every attempt: what the
    direct runner waits (:meth:`Retry.wait`; measured on systemd 257 in
    tests/test_retry_systemd.py). The restart after the last attempt, which
    the start limit refuses, comes ``RestartMaxDelaySec`` after it."""
    if value.backoff == 1 or value.attempts < 2 or value.delay == 0:
        return None
    return Steps(value.attempts - 1, value.wait(value.attempts))


@dataclass(frozen=True)
class StartLimit:
    """What bounds the attempts on systemd, which has no setting for
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
    timeout and its stop) and every delay (the one before the refused
    start included: the last delay again) so the refused start falls
    inside it."""
    per_attempt = timeout_minutes * 60 + STOP_SLACK
    if value.backoff == 1:
        delays = (value.attempts + 1) * value.delay * 60
    else:
        delays = sum(value.wait(i) for i in range(1, value.attempts + 1))
        delays += value.wait(value.attempts)
    return StartLimit(value.attempts + 1, math.ceil((value.attempts + 1) * per_attempt + delays))


def systemd_refusals(
    value: Retry, timeout_minutes: float, schedule: CronSchedule | None, version: int | None,
) -> list[str]:
    """Why systemd ``version`` (None: no systemd found here) cannot carry
    out ``value`` for this job (empty: it can)."""
    problems = []
    if value.backoff != 1 and (version is None or version < BACKOFF_SINCE):
        if version is None:
            problems.append(f"backoff needs systemd {BACKOFF_SINCE} or later (growing delays, "
                            "RestartSteps=), and no systemd was found here; on older ones use "
                            "backoff: 1")
        else:
            problems.append(f"backoff is not possible on systemd {version}: a service has one "
                            f"RestartSec= (growing delays, RestartSteps=, came in systemd "
                            f"{BACKOFF_SINCE}); use backoff: 1")
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

"""The ``retry`` key's own logic: its parser, the start limit that bounds
the attempts on systemd, the shortest gap between two runs of a schedule,
what systemd cannot do, by its version (refused by the generator and by
``run-job --validate`` on systemd hosts, a warning elsewhere), and the
growing delays of systemd >= 254 worked out as systemd does. What systemd
does with the settings is measured in tests/test_retry_systemd.py."""

from __future__ import annotations

import math

import pytest
import yaml

from pc_systemd.model import systemd_version
from pc_systemd.model.errors import PcError
from pc_systemd.model.jobset import find_job
from pc_systemd.model.retry import Retry, restart_steps, start_limit, systemd_refusals
from pc_systemd.model.schedule import parse_schedule, shortest_gap
from pc_systemd.model.validate import validate
from tests.conftest import Site


def load(site: Site, text: str) -> object:
    site.job("job", "name: Job\ncommand: /bin/true\n" + text)
    return find_job(site.config(), "job")


def problem(site: Site, text: str) -> str:
    with pytest.raises(PcError) as err:
        load(site, text)
    (found,) = err.value.problems
    assert str(found).startswith(f"{site.jobs}/job.yaml:{found.line}: {found.key}: ")
    return f"{found.line}: {found.key}: {found.message}"


def test_a_retry_is_parsed(site: Site) -> None:
    job = load(site, "retry: {attempts: 3, delay: 0.5, backoff: 2}\n")
    assert job.retry == Retry(3, 0.5, 2.0)  # type: ignore[attr-defined]
    job = load(site, "retry:\n  attempts: 1\n  delay: 0\n")
    assert job.retry == Retry(1, 0.0, 1.0)  # type: ignore[attr-defined]
    assert load(site, "").retry is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(("text", "expected"), [
    ("retry: 3\n", "3: retry: expected a mapping, got an integer"),
    ("retry: {attempts: 3}\n", "3: retry: delay is missing"),
    ("retry:\n  delay: 1\n", "4: retry: attempts is missing"),  # where the mapping starts
    ("retry:\n  delay: 1\n  attempts: 0\n", "5: retry.attempts: must be a whole number >= 1, got 0"),
    ("retry:\n  attempts: 101\n  delay: 1\n", "4: retry.attempts: must be at most 100, got 101"),
    ("retry:\n  attempts: 1\n  delay: -1\n",
     "5: retry.delay: must be a number of minutes >= 0, got -1"),
    ("retry:\n  attempts: 1\n  delay: 1\n  backoff: 0.5\n",
     "6: retry.backoff: must be a number >= 1, got 0.5"),
    ("retry:\n  attempts: 1\n  delay: 1\n  tries: 2\n",
     "6: retry.tries: unknown key (expected attempts, backoff, delay)"),
    ("retry: {attempts: 40, delay: 1, backoff: 2}\n",
     "3: retry: the last delay (delay * backoff ** (attempts - 1)) is longer than ten years"),
])
def test_a_bad_retry_is_one_line_naming_the_key(site: Site, text: str, expected: str) -> None:
    assert problem(site, text) == expected


def test_the_start_limit_outlasts_every_attempt() -> None:
    # each attempt: the timeout, then at most 10 s to stop, then the delay
    assert start_limit(Retry(2, 0.5), 1) == start_limit(Retry(2, 0.5, 1.0), 1)
    limit = start_limit(Retry(2, 0.5), 1)
    assert (limit.burst, limit.interval) == (3, 3 * (60 + 30 + 10))
    assert start_limit(Retry(1, 0.001), 0.001).interval == 21  # 2 * 10.12 s, rounded up


@pytest.mark.parametrize(("expr", "gap"), [
    ("* * * * *", 60),
    ("*/5 * * * *", 300),
    ("0 * * * *", 3600),
    ("0 3 * * *", 86400 - 3600),  # fixed time: an hour less for a DST change
    ("0 3,4 * * *", 3600 - 3600),
    ("0 3 * * mon", 7 * 86400 - 3600),
    ("0 0 1 * *", 28 * 86400 - 3600),  # February
    ("30 23 * * mon,tue", 86400 - 3600),
    ("0 0 29 2 *", 4 * 365 * 86400 + 86400 - 3600),  # only in leap years
])
def test_the_shortest_gap_between_two_runs(expr: str, gap: float) -> None:
    assert shortest_gap(parse_schedule(expr)) == gap


@pytest.mark.parametrize("version", [252, 257, None])
def test_what_systemd_cannot_do(version: int | None) -> None:
    assert systemd_refusals(Retry(2, 1), 5, parse_schedule("0 3 * * *"), version) == []
    assert systemd_refusals(Retry(2, 1), 5, None, version) == []
    (no_timeout,) = systemd_refusals(Retry(2, 1), 0, None, version)
    assert no_timeout.startswith("needs a timeout on systemd")
    # 3 * (5 + 1 min + 10 s) = 18.5 min > the 15 min between runs
    (often,) = systemd_refusals(Retry(2, 1), 5, parse_schedule("*/15 * * * *"), version)
    assert often.startswith("the attempts of one run may take 18.5 min, and the schedule "
                            "starts runs 15 min apart")
    assert systemd_refusals(Retry(2, 1), 5, parse_schedule("*/20 * * * *"), version) == []


def test_backoff_needs_systemd_254() -> None:
    (old,) = systemd_refusals(Retry(2, 1, 2), 5, None, 252)
    assert old == ("backoff is not possible on systemd 252: a service has one RestartSec= "
                   "(growing delays, RestartSteps=, came in systemd 254); use backoff: 1")
    (unknown,) = systemd_refusals(Retry(2, 1, 2), 5, None, None)
    assert unknown.startswith("backoff needs systemd 254 or later")
    assert systemd_refusals(Retry(2, 1, 2), 5, None, 254) == []
    assert systemd_refusals(Retry(2, 1, 2), 5, None, 257) == []


def systemds_delay(steps: int, first: float, last: float, restart: int) -> float:
    """What systemd >= 254 waits before restart number ``restart`` (1 = the
    first): src/core/service.c, service_restart_usec_next, restated."""
    if restart <= 1 or steps == 0 or first == 0 or first >= last:
        return first
    if restart > steps:
        return last
    return first * (last / first) ** ((restart - 1) / steps)


@pytest.mark.parametrize("value", [
    Retry(3, 0.01, 2), Retry(4, 2, 1.5), Retry(2, 1, 3), Retry(10, 0.5, 1.1), Retry(5, 1, 10),
])
def test_systemds_growing_delays_are_the_direct_runners(value: Retry) -> None:
    steps = restart_steps(value)
    assert steps is not None and steps.steps == value.attempts - 1
    first = value.delay * 60
    for restart in range(1, value.attempts + 1):
        assert math.isclose(systemds_delay(steps.steps, first, steps.max_delay, restart),
                            value.wait(restart), rel_tol=1e-9), restart
    # the start the start limit refuses comes the last delay after the last attempt
    assert systemds_delay(steps.steps, first, steps.max_delay,
                          value.attempts + 1) == value.wait(value.attempts)


def test_no_steps_where_delays_do_not_grow() -> None:
    assert restart_steps(Retry(3, 1)) is None  # backoff 1
    assert restart_steps(Retry(1, 1, 2)) is None  # one delay only
    assert restart_steps(Retry(3, 0, 2)) is None  # every delay 0


def test_the_start_limit_outlasts_growing_delays() -> None:
    # 3 attempts of at most 60 s + 10 s; delays 60, 120, then 240 before the
    # start that is refused... of the last attempt: 60 + 120 + 120
    limit = start_limit(Retry(2, 1, 2), 1)
    assert limit.burst == 3
    assert limit.interval == 3 * 70 + 60 + 120 + 120
    assert start_limit(Retry(2, 1), 1).interval == 3 * 70 + 3 * 60


@pytest.mark.parametrize("backend", ["systemd", "direct"])
def test_validate_refuses_on_systemd_and_warns_elsewhere(
    site: Site, backend: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(systemd_version, "manager", lambda: 252)
    site.configure(f"backend: {backend}\n")
    site.job("job", yaml.safe_dump({"name": "Job", "command": "/bin/true", "timeout": 5,
                                    "retry": {"attempts": 1, "delay": 1, "backoff": 3}}))
    report = validate(site.config())
    problems = report.errors if backend == "systemd" else report.warnings
    (found,) = [p for p in problems if p.key == "retry"]
    prefix = "" if backend == "systemd" else "on systemd hosts: "
    assert found.message.startswith(prefix + "backoff is not possible")
    assert report.failed(strict=False) == (backend == "systemd")


@pytest.mark.parametrize("backend", ["systemd", "direct"])
def test_validate_takes_backoff_on_systemd_254_and_later(
    site: Site, backend: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(systemd_version, "manager", lambda: 257)
    site.configure(f"backend: {backend}\n")
    site.job("job", yaml.safe_dump({"name": "Job", "command": "/bin/true", "timeout": 5,
                                    "retry": {"attempts": 3, "delay": 1, "backoff": 2}}))
    report = validate(site.config())
    assert [p for p in (*report.errors, *report.warnings) if p.key == "retry"] == []

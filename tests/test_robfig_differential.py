"""The translation for Kubernetes against the real robfig/cron v3.

tests/robfig_next/main.go is built once per session, offline, from Debian's
golang-go and golang-github-robfig-cron-dev (dev.sh installs both); without
them these tests fail, they never skip. Every expression goes through one Go
process, which prints each one's next fire times as ParseStandard (what the
CronJob controller uses) computes them; they must be Debian cron's, as
pc_systemd.model.schedule.next_fire computes them.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pc_systemd.model.robfig import cronjob_schedules
from pc_systemd.model.schedule import CronSchedule, ScheduleError, next_fire, parse_schedule
from tests.conftest import ROOT

GOPATH = Path("/usr/share/gocode")  # where Debian's golang-*-dev packages put their source
FIRES = 40
WANTED = 2000  # translated expressions compared
UTC = ZoneInfo("UTC")


@pytest.fixture(scope="module")
def robfig_next(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None or not (GOPATH / "src/github.com/robfig/cron/spec.go").is_file():
        pytest.fail("needs Debian's golang-go and golang-github-robfig-cron-dev (./dev.sh)")
    out = tmp_path_factory.mktemp("robfig_next")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(out),
        "GO111MODULE": "off", "GOPATH": str(GOPATH), "GOCACHE": str(out / "cache"),
        "GOFLAGS": "", "GOPROXY": "off", "CGO_ENABLED": "0",
    }
    subprocess.run(
        [go, "build", "-o", str(out / "robfig_next"), "."],
        cwd=ROOT / "tests/robfig_next", env=env, check=True, timeout=300,
    )
    return out / "robfig_next"


def robfig(
    binary: Path, cases: Sequence[tuple[dt.datetime, str]], zone: str = "", count: int = FIRES
) -> list[list[dt.datetime] | str]:
    """Each expression's next fire times after its base time per robfig,
    or its parse error ("error: ..."); one Go process for all of them."""
    run = subprocess.run(
        [str(binary), "-n", str(count), "-tz", zone],
        input="".join(f"{int(after.timestamp())} {expr}\n" for after, expr in cases),
        capture_output=True, text=True, check=True, timeout=300,
    )
    lines = run.stdout.split("\n")
    assert len(lines) == len(cases) + 1 and lines[-1] == "", run.stdout[-200:]
    return [
        line if line.startswith("error:")
        else [dt.datetime.fromtimestamp(int(t), dt.UTC) for t in line.split()]
        for line in lines[:-1]
    ]


def debian(schedule: CronSchedule, after: dt.datetime, zone: dt.tzinfo = UTC) -> list[dt.datetime]:
    times: list[dt.datetime] = []
    at: dt.datetime | None = after
    while at is not None and len(times) < FIRES:
        at = next_fire(schedule, at, zone)
        if at is not None:
            times.append(at)
    return times


def random_expression(rng: random.Random) -> str:
    """Five fields of numbers, names, ranges, steps, lists; day-of-week 0-7
    (names, 7, and ranges ending at 7 among them); day fields often both
    restricted, one or both starting with '*'."""
    months = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    weekdays = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

    def value(low: int, high: int, names: Sequence[str]) -> tuple[int, str]:
        number = rng.randint(low, high)
        if names and number - low < len(names) and rng.random() < 0.4:
            name = names[number - low]
            return number, rng.choice([name, name.upper(), name.title()])
        return number, str(number)

    def item(low: int, high: int, names: Sequence[str]) -> str:
        (_, a_text), (_, b_text) = sorted(value(low, high, names) for _ in range(2))
        step = rng.choice([1, 2, 2, 3, 5, 7, rng.randint(1, high + 1)])
        return rng.choice([
            "*", f"*/{step}", a_text, a_text, f"{a_text}-{b_text}", f"{a_text}-{b_text}/{step}",
        ])

    def field(low: int, high: int, names: Sequence[str] = (), star: float = 0.3) -> str:
        if rng.random() < star:
            return "*"
        return ",".join(item(low, high, names) for _ in range(rng.choice([1, 1, 1, 2, 3])))

    return " ".join([
        field(0, 59, star=0.1), field(0, 23, star=0.3), field(1, 31, star=0.35),
        field(1, 12, months, star=0.5), field(0, 7, weekdays, star=0.35),
    ])


def compare(expected: list[dt.datetime], got: list[dt.datetime]) -> str | None:
    """Why robfig's times are not Debian cron's, or None. robfig gives up
    (the zero time) when nothing fires by the end of the fifth year after
    the time it starts from: that is the only way its list may be shorter."""
    if got != expected[: len(got)]:
        return "different fire times"
    if len(got) < len(expected):
        start = got[-1] if got else None
        if start is None or expected[len(got)].year <= start.year + 5:
            return "robfig stopped early"
    return None


def test_two_thousand_random_schedules_fire_as_debian_cron(robfig_next: Path) -> None:
    rng = random.Random(1818)
    cases: list[tuple[dt.datetime, str, CronSchedule]] = []
    refused: list[str] = []
    while len(cases) < WANTED:
        expr = random_expression(rng)
        try:
            schedule = parse_schedule(expr)
        except ScheduleError:
            continue  # reversed ranges and the like: Debian cron refuses them too
        try:
            (translated,) = cronjob_schedules(schedule)
        except ScheduleError:
            refused.append(expr)
            continue
        after = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
            seconds=rng.randrange(20 * 366 * 86400)
        )
        cases.append((after, translated, schedule))

    results = robfig(robfig_next, [(after, translated) for after, translated, _ in cases])
    failures = []
    fires = 0
    for (after, translated, schedule), got in zip(cases, results, strict=True):
        assert not isinstance(got, str), f"{schedule.expr!r} -> {translated!r}: {got}"
        expected = debian(schedule, after)
        why = compare(expected, got)
        if why:
            failures.append(f"{schedule.expr!r} -> {translated!r} after {after}: {why}")
        fires += len(got)
    assert not failures, f"{len(failures)} of {len(cases)}:\n" + "\n".join(failures[:20])
    # The corpus does cover what it claims to: checked, so it cannot shrink unseen.
    exprs = [schedule.expr for _, _, schedule in cases]
    assert sum(any(c.isalpha() for c in e.split()[4]) for e in exprs) > 100  # weekday names
    assert sum(any(c.isalpha() for c in e.split()[3]) for e in exprs) > 100  # month names
    assert sum("7" in e.split()[4] for e in exprs) > 100
    assert sum(s.days_ored for _, _, s in cases) > 300
    assert sum(e.split()[2].startswith("*/") for e in exprs) > 100
    assert sum(e.split()[4].startswith("*/") for e in exprs) > 100
    assert fires > 0.9 * FIRES * WANTED
    assert len(refused) > 100  # the shape robfig cannot say is reached, and refused
    print(f"compared {len(cases)} schedules, {fires} fire times; refused {len(refused)}")


def test_a_refused_schedule_is_one_robfig_would_misread(robfig_next: Path) -> None:
    """The refused shape copied verbatim: robfig ORs the day fields that cron
    ANDs (issue #18's example)."""
    after = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    schedule = parse_schedule("0 0 */2 * mon")
    with pytest.raises(ScheduleError):
        cronjob_schedules(schedule)
    (got,) = robfig(robfig_next, [(after, schedule.expr)], count=5)
    assert isinstance(got, list)
    assert [t.day for t in got] == [3, 5, 7, 9, 11]  # odd days or Mondays (Jan 12)
    assert [t.day for t in debian(schedule, after)[:3]] == [5, 19, 9]  # odd Mondays only


def test_verbatim_copies_are_often_wrong_or_refused(robfig_next: Path) -> None:
    """Why translating matters, measured: the same random schedules given to
    robfig verbatim, as a CronJob would get them without translation."""
    rng = random.Random(1818)
    cases: list[tuple[dt.datetime, str, CronSchedule]] = []
    while len(cases) < WANTED:
        expr = random_expression(rng)
        try:
            cases.append((dt.datetime(2026, 1, 1, tzinfo=dt.UTC), expr, parse_schedule(expr)))
        except ScheduleError:
            continue
    results = robfig(robfig_next, [(after, expr) for after, expr, _ in cases])
    rejected = sum(isinstance(got, str) for got in results)
    wrong = sum(
        not isinstance(got, str) and compare(debian(schedule, after), got) is not None
        for (after, _, schedule), got in zip(cases, results, strict=True)
    )
    print(f"verbatim: {rejected} of {len(cases)} rejected, {wrong} fire at other times")
    assert rejected > 100 and wrong > 100


@pytest.mark.parametrize(
    ("expr", "after", "fires"),
    [
        # Leap days: 2100 is no leap year, and robfig gives up after 2096's
        # (nothing by the end of 2101), where cron goes on to 2104.
        ("0 0 29 2 *", dt.datetime(2090, 1, 1, tzinfo=dt.UTC), 2),
        ("0 0 29 feb mon", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), FIRES),
        ("59 23 31 * *", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), FIRES),
        # Never: both give no time at all.
        ("0 0 30 2 *", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 0),
        ("0 0 31 4,6,9,11 */2", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 0),
        ("0 0 30 2 sun", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), FIRES),
        ("0 12 1-29 2 */3", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), FIRES),
    ],
)
def test_rare_and_impossible_days(robfig_next: Path, expr: str, after: dt.datetime, fires: int) -> None:
    schedule = parse_schedule(expr)
    (got,) = robfig(robfig_next, [(after, cronjob_schedules(schedule)[0])])
    assert isinstance(got, list)
    assert len(got) == fires
    assert compare(debian(schedule, after), got) is None




# --- DST: a CronJob's timeZone --------------------------------------------------------------------
BERLIN = "Europe/Berlin"  # 2026: 02:00 -> 03:00 on March 29, 03:00 -> 02:00 on October 25
SPRING = dt.datetime(2026, 3, 28, 12, tzinfo=dt.UTC)
AUTUMN = dt.datetime(2026, 10, 24, 12, tzinfo=dt.UTC)


def local_days(times: Sequence[dt.datetime], zone: str) -> list[str]:
    return [t.astimezone(ZoneInfo(zone)).strftime("%m-%d %H:%M %Z") for t in times]


@pytest.mark.parametrize("expr", ["*/30 2 * * *", "30 * * * *", "0 3 * * *", "15 1 * * *"])
@pytest.mark.parametrize("after", [SPRING, AUTUMN])
def test_in_a_dst_zone_wildcard_and_unaffected_jobs_agree(
    robfig_next: Path, expr: str, after: dt.datetime
) -> None:
    schedule = parse_schedule(expr)
    (got,) = robfig(robfig_next, [(after, cronjob_schedules(schedule)[0])], zone=BERLIN)
    assert got == debian(schedule, after, ZoneInfo(BERLIN))


def test_in_a_dst_zone_robfig_misses_or_repeats_a_fixed_time_in_the_changed_hour(
    robfig_next: Path,
) -> None:
    """Measured, and stated in the README: Debian cron runs a fixed-time job
    due in the skipped hour at the first minute after it, and once in the
    repeated hour; robfig skips the first and runs the second twice. No
    robfig expression names one day of one year, so no split repairs it."""
    schedule = parse_schedule("30 2 * * *")
    spring, autumn = robfig(
        robfig_next, [(SPRING, "30 2 * * *"), (AUTUMN, "30 2 * * *")], zone=BERLIN, count=2
    )
    assert isinstance(spring, list) and isinstance(autumn, list)
    assert local_days(spring, BERLIN) == ["03-30 02:30 CEST", "03-31 02:30 CEST"]
    assert local_days(debian(schedule, SPRING, ZoneInfo(BERLIN))[:2], BERLIN) == [
        "03-29 03:00 CEST", "03-30 02:30 CEST",
    ]
    assert local_days(autumn, BERLIN) == ["10-25 02:30 CEST", "10-25 02:30 CET"]
    assert local_days(debian(schedule, AUTUMN, ZoneInfo(BERLIN))[:2], BERLIN) == [
        "10-25 02:30 CEST", "10-26 02:30 CET",
    ]

"""Differential tests of cron schedules against the real tools.

* Translation: for thousands of random schedules, the fire times that the real
  systemd computes for our OnCalendar= lines are the ones cronsim computes
  for the cron expression. cronsim (pinned in constraints.txt; 2.9 or
  later reads "a-a/n" as Debian cron does) follows Debian cron's day rule;
  where it accepts what Debian cron refuses ("N/step") the test says so
  (see docs/schedules.md).
* Parsing: Debian's own `crontab -n` accepts every schedule we accept; where
  we refuse one it accepts, the reason is one of a few named ones.

Neither test skips: a missing systemd-analyze or crontab is a failure.
"""

from __future__ import annotations

import operator
import os
import random
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import islice, takewhile
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim, CronSimError

from pc_systemd.model.schedule import (
    ScheduleError,
    _changes,
    dst_extras,
    next_fire,
    parse_schedule,
)

SEED = 20240229
RANDOM_SCHEDULES = 2400
ITERATIONS = 40
# Each schedule is checked from one of these, so that runs cross month ends,
# leap days and year ends.
BASE_TIMES = (
    datetime(2025, 1, 1, 0, 0, tzinfo=UTC),
    datetime(2025, 1, 31, 23, 30, tzinfo=UTC),
    datetime(2027, 12, 30, 22, 45, tzinfo=UTC),
    datetime(2027, 12, 31, 20, 0, tzinfo=UTC),
    datetime(2028, 2, 27, 12, 30, tzinfo=UTC),
)
# systemd 252 computes no elapse after the year 2199; cronsim goes on.
HORIZON = datetime(2200, 1, 1, tzinfo=UTC)
# Expressions per systemd-analyze call: one process start for many schedules.
BATCH = 250

EDGE_CASES = (
    "0 0 29 2 *",
    "0 0 31 * *",
    "*/2 * 13 * 5",
    "0 12 1-7 * mon",
    "0 0 * * 7",
    "0 0 * jan-mar sun-tue",
    "0 0 * * 0",
    "0 0 * * 0,7",
    "0 0 * * 5-7",
    "0 0 * * 0-7",
    "0 0 * * 1-7/2",
    "0 0 * * */2",
    "0 0 * * */7",
    "0 0 */2 * */3",
    "0 0 13 * */2",
    "0 0 */10 * fri",
    "0 0 1,* * mon",
    "0 0 *,1 * mon",
    "0 0 1-31 * mon",
    "0 0 31 2 mon",
    "0 0 29 2 mon",
    "0 0 29 2 */7",
    "0 0 31 4,6,7 *",
    "0 0 30 2 *",
    "0 0 31 4,6 *",
    "59 23 31 12 *",
    "0 0 1 1 *",
    "30 4 1,15 * 5",
    "*/15 9-17 * * mon-fri",
    "5-35/15 */7 * * *",
    "0 0 * * SUN-TUE",
    "0 0 * Jan,JUL,oct Sat",
    # Steps that do not divide their field: systemd 252 mishandles open-ended
    # repetitions ("00/7") across day, month and year ends.
    "*/7 * * * *",
    "*/11 */5 * * *",
    "0 */7 * * *",
    "0 0 */13 * *",
    "0 0 */3 * *",
    "0 0 1 */5 *",
    "3-3/2 5-5/7 * jan-jan/3 sun-sun/4",
)


# --- random schedules -------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    low: int
    high: int
    names: tuple[str, ...] = ()


MINUTE = Spec(0, 59)
HOUR = Spec(0, 23)
DOM = Spec(1, 31)
MONTH = Spec(
    1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
)
DOW = Spec(0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat"))


def value(rng: random.Random, spec: Spec, number: int) -> str:
    """number as cron text: plain, zero-padded, or a name in random case."""
    if spec.names and number - spec.low < len(spec.names) and rng.random() < 0.4:
        name = spec.names[number - spec.low]
        return "".join(c.upper() if rng.random() < 0.5 else c for c in name)
    return f"0{number}" if rng.random() < 0.1 else str(number)


def pick(rng: random.Random, spec: Spec) -> int:
    # Day-of-month leans to the month ends, where months differ.
    if spec is DOM and rng.random() < 0.3:
        return rng.randint(28, 31)
    return rng.randint(spec.low, spec.high)


def item(rng: random.Random, spec: Spec, *, allow_star: bool = True) -> str:
    kind = rng.choice(
        ("value", "value", "range", "stepped", "star-step" if allow_star else "value")
    )
    if kind == "value":
        return value(rng, spec, pick(rng, spec))
    if kind == "star-step":
        return f"*/{rng.randint(1, spec.high - spec.low + 2)}"
    first, last = sorted((pick(rng, spec), pick(rng, spec)))
    text = f"{value(rng, spec, first)}-{value(rng, spec, last)}"
    if kind == "stepped":
        text += f"/{rng.randint(1, max(1, last - first + 1))}"
    return text


def restricted(rng: random.Random, spec: Spec, count: int) -> str:
    return ",".join(item(rng, spec, allow_star=False) for _ in range(count))


def time_field(rng: random.Random, spec: Spec) -> str:
    # Mostly few values, so that 40 fire times span days, months and years.
    roll = rng.random()
    if roll < 0.45:
        return value(rng, spec, pick(rng, spec))
    if roll < 0.7:
        return ",".join(value(rng, spec, pick(rng, spec)) for _ in range(rng.randint(2, 3)))
    if roll < 0.8:
        return "*"
    return ",".join(item(rng, spec) for _ in range(rng.randint(1, 2)))


def month_field(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.5:
        return "*"
    if roll < 0.6:
        return f"*/{rng.randint(1, 12)}"
    return restricted(rng, MONTH, rng.randint(1, 3))


def day_field(rng: random.Random, spec: Spec, kind: str) -> str:
    """A day field of the given kind: "*", "*/n" (still '*' for cron's day rule), restricted."""
    if kind == "star":
        return "*"
    if kind == "star-step":
        step = f"*/{rng.randint(2, spec.high - spec.low + 1)}"
        # '*,x' still starts with '*', 'x,*' does not: cron's rule looks at the first character.
        return f"{step},{restricted(rng, spec, 1)}" if rng.random() < 0.1 else step
    text = restricted(rng, spec, rng.randint(1, 3))
    if spec is DOW and rng.random() < 0.2:
        # Sunday as 7, also at the end of a range.
        first = value(rng, DOW, rng.randint(0, 7))
        text += rng.choice((",7", ",0", f",{first}-7", f",{first}-7/{rng.randint(1, 3)}"))
    return f"{text},*" if rng.random() < 0.03 else text


DAY_KINDS = ("star", "star-step", "restricted")


def random_schedules(rng: random.Random, count: int) -> Iterator[str]:
    """Schedules that parse, every DOM/DOW kind combination equally often."""
    made = 0
    while made < count:
        dom_kind = DAY_KINDS[made % 3]
        dow_kind = DAY_KINDS[(made // 3) % 3]
        expr = " ".join(
            (
                time_field(rng, MINUTE),
                time_field(rng, HOUR),
                day_field(rng, DOM, dom_kind),
                month_field(rng),
                day_field(rng, DOW, dow_kind),
            )
        )
        try:
            parse_schedule(expr)
        except ScheduleError:
            # e.g. a hand-made "5-7" turned into a reversed range; draw again.
            continue
        made += 1
        yield expr


# --- systemd ----------------------------------------------------------------------------------


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: this test must run, never skip", pytrace=False)
    return path


_ELAPSE = re.compile(r"^\s*(?:Next elapse|Iter\. #\d+): \w{3} (\S+ \S+) UTC$")


def systemd_fire_times(
    lines: Sequence[str], base: datetime
) -> dict[str, tuple[str, list[datetime]]]:
    """For each OnCalendar= line: systemd's normalized form and first fire times."""
    analyze = tool("systemd-analyze")
    result: dict[str, tuple[str, list[datetime]]] = {}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC", "LC_ALL": "C"}
    for start in range(0, len(lines), BATCH):
        batch = lines[start : start + BATCH]
        run = subprocess.run(
            [
                analyze,
                "calendar",
                f"--iterations={ITERATIONS}",
                f"--base-time={base:%Y-%m-%d %H:%M:%S} UTC",
                *batch,
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        blocks: list[tuple[str, list[datetime]]] = []
        for text_line in run.stdout.splitlines():
            if text_line.startswith("Normalized form: "):
                blocks.append((text_line.removeprefix("Normalized form: "), []))
            elif match := _ELAPSE.match(text_line):
                when = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
                blocks[-1][1].append(when)
        assert len(blocks) == len(batch), run.stdout
        result.update(zip(batch, blocks, strict=True))
    return result


def cronsim_fire_times(expr: str, base: datetime) -> list[datetime]:
    try:
        times = CronSim(expr, base)
    except CronSimError:
        # cronsim refuses schedules that can never fire ("0 0 30 2 *").
        return []
    # cronsim stops by itself after 50 years without a match.
    return [t for t in islice(times, ITERATIONS) if t < HORIZON]


def first_fire_times(times: Sequence[datetime]) -> list[datetime]:
    return sorted(t for t in set(times) if t < HORIZON)[:ITERATIONS]


def compare_with_systemd(exprs: Sequence[str]) -> list[str]:
    """Differences between systemd on our lines and cronsim on the cron text."""
    by_base: dict[datetime, list[str]] = {base: [] for base in BASE_TIMES}
    for n, expr in enumerate(exprs):
        by_base[BASE_TIMES[n % len(BASE_TIMES)]].append(expr)
    problems: list[str] = []
    for base, group in by_base.items():
        translations = {expr: parse_schedule(expr).on_calendar() for expr in group}
        lines = sorted({line for lines in translations.values() for line in lines})
        systemd = systemd_fire_times(lines, base)
        for expr, ours in translations.items():
            schedule = parse_schedule(expr)
            if not 1 <= len(ours) <= 2:
                problems.append(f"{expr!r}: {len(ours)} OnCalendar= lines {ours}")
            for line in ours:
                if systemd[line][0] != line:
                    problems.append(f"{expr!r}: {line!r} is normalized to {systemd[line][0]!r}")
            got = first_fire_times([t for line in ours for t in systemd[line][1]])
            want = cronsim_fire_times(expr, base)
            if got != want:
                first = next(
                    (f"{g} vs {w}" for g, w in zip(got, want, strict=False) if g != w),
                    f"{len(got)} vs {len(want)} times",
                )
                problems.append(f"{expr!r} from {base}: systemd {ours} vs cronsim: {first}")
            if schedule.can_fire() != bool(want):
                problems.append(f"{expr!r}: can_fire() is {schedule.can_fire()}")
    return problems


def test_edge_cases_fire_as_cron_does() -> None:
    problems = compare_with_systemd(EDGE_CASES)
    assert not problems, "\n".join(problems)


def test_random_schedules_fire_as_cron_does() -> None:
    rng = random.Random(SEED)
    exprs = list(random_schedules(rng, RANDOM_SCHEDULES))
    assert len(set(exprs)) >= 2000
    problems = compare_with_systemd(exprs)
    assert not problems, f"{len(problems)} differences:\n" + "\n".join(problems[:30])


def test_random_schedules_cover_every_day_rule_combination() -> None:
    rng = random.Random(SEED)
    seen: dict[tuple[bool, bool, bool, bool], int] = {}
    for expr in random_schedules(rng, RANDOM_SCHEDULES):
        s = parse_schedule(expr)
        dom, dow = expr.split()[2], expr.split()[4]
        key = (s.dom_star, dom != "*", s.dow_star, dow != "*")
        seen[key] = seen.get(key, 0) + 1
    # (starts with '*', is more than '*') for each day field: 3 x 3 kinds.
    assert len(seen) == 9 and min(seen.values()) >= 200, seen


def test_a_one_value_range_with_a_step_is_that_one_value() -> None:
    # Debian cron's set_range() makes "5-5/2" the single value 5, in every
    # field and with names; the edge cases above hold systemd's times for
    # such lines to the reference's.
    assert parse_schedule("5-5/2 * * * *").minutes == {5}
    parsed = parse_schedule("5-5/2 0-0/1,1-2/1 * JAN-1/3 sun-7/2,7-7/1")
    assert (parsed.minutes, parsed.hours, parsed.months) == ({5}, {0, 1, 2}, {1})
    assert parsed.days_of_week == {0, 2, 4, 6}  # 7-7/1 is 7, Sunday
    assert "3-3/2 5-5/7 * jan-jan/3 sun-sun/4" in EDGE_CASES


def test_n_step_is_refused_where_cronsim_reads_it_as_a_range() -> None:
    # cronsim reads "5/15" as "5-59/15"; Debian cron refuses the line, so do we.
    rng = random.Random(SEED + 1)
    specs = (MINUTE, HOUR, DOM, MONTH, DOW)
    names = ("minute", "hour", "day-of-month", "month", "day-of-week")
    for _ in range(300):
        fields = ["0", "0", "*", "*", "*"]
        index = rng.randrange(5)
        spec = specs[index]
        fields[index] = f"{value(rng, spec, pick(rng, spec))}/{rng.randint(1, 10)}"
        expr = " ".join(fields)
        with pytest.raises(ScheduleError, match="Debian cron rejects N/step") as caught:
            parse_schedule(expr)
        assert caught.value.field == names[index]
        next(CronSim(expr, BASE_TIMES[0]))


# --- Debian's crontab -------------------------------------------------------------------------

# Where we refuse what Debian's crontab accepts, the message says which of
# these it is (docs/schedules.md explains each).
STRICTER = (
    "is reversed",  # Debian accepts "5-1" and never runs it
    # Debian stops reading an item at the first character that does not fit
    # and ignores the rest of the field: "5#3" is 5 (every Friday), "1.5" is
    # 1, "*-5" is *, "1-3-5" is 1-3.
    "unexpected character",
    "non-standard cron extension",
    "'*' can only be followed by one /step",
    "is not a value, a range",
    "seconds and year fields",  # Debian reads a sixth field as the command
    "@ aliases",
)

JUNK = (
    "5/15", "*-5", "1-3-5", "*/2/3", "5-1", "fri-sun", "7-sun", "8", "60", "24", "32", "13",
    "0", "L", "15W", "5#3", "?", "Monday", "jan", "mon", "1,", ",1", "*/0", "-5", "5-", "*/",
    "mon/2", "7", "0-7", "sun-7", "*,1", "1,*", "00", "*/100", "1-5/0", "x", "**", "1-5/2x",
    "+1", "1.5", "JAN-mar", "SUN", "0x1", "*/05", "1-1",
)  # fmt: skip


def mutated_schedules(rng: random.Random, count: int) -> Iterator[str]:
    """Valid schedules with one or two fields replaced by doubtful text."""
    valid = random_schedules(rng, count)
    for expr in valid:
        fields = expr.split()
        for _ in range(rng.randint(1, 2)):
            fields[rng.randrange(5)] = rng.choice(JUNK)
        if rng.random() < 0.05:
            fields.append(rng.choice(("*", "2030", "0")))
        if rng.random() < 0.03:
            fields = [rng.choice(("@daily", "@hourly", "@weekly"))]
        yield " ".join(fields)


def debian_accepts(crontab: str, expr: str) -> bool:
    run = subprocess.run(
        [crontab, "-n", "-"],
        input=f"{expr} true\n",
        capture_output=True,
        text=True,
        check=False,
    )
    return run.returncode == 0


def our_error(expr: str) -> str | None:
    try:
        parse_schedule(expr)
    except ScheduleError as err:
        return str(err)
    return None


def test_parser_agrees_with_debian_crontab() -> None:
    crontab = tool("crontab")
    rng = random.Random(SEED + 2)
    exprs = [*EDGE_CASES, *mutated_schedules(rng, 700)]
    problems: list[str] = []
    outcomes: dict[tuple[bool, bool], int] = {}
    for expr in exprs:
        error = our_error(expr)
        debian = debian_accepts(crontab, expr)
        outcomes[error is None, debian] = outcomes.get((error is None, debian), 0) + 1
        if error is None and not debian:
            problems.append(f"{expr!r}: we accept it, Debian's crontab refuses it")
        elif error is not None and debian and not any(r in error for r in STRICTER):
            problems.append(f"{expr!r}: Debian's crontab accepts it, we say {error!r}")
    assert not problems, "\n".join(problems)
    # The mutations reach every side: both accept, both refuse, only Debian accepts.
    assert min(outcomes.get(key, 0) for key in ((True, True), (False, False), (False, True))) >= 50


# --- DST changes: regular lines plus the generator's extra instants ---------------------------
# Around each 2027 and 2028 change of these zones, the instants the real
# systemd computes for a job's OnCalendar= lines (each line on its own, the
# instants merged) are cron's. The reference is cronsim, except where it is
# known to differ from Debian cron: in Australia/Lord_Howe (a 30-minute
# change) it differs around both changes for "0 */3 * * *" and "* 2 * * *"
# (it skips 03:00 after the repeated half hour); there next_fire
# (tests/test_schedule.py, by hand) is.

DST_ZONES = ("Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe",
             "America/Santiago")
DST_EXPRS = (
    "30 2 * * *", "0 2 * * *", "45 1 * * *", "59 1 * * *", "0 3 * * *", "30 0 * * *",
    "0 0 * * *", "15 23 * * *", "0,30 2 * * *", "30 1,2 * * *", "* 2 * * *", "* * * * *",
    "*/15 * * * *", "0 * * * *", "30 1-3 * * *", "15,45 2-3 * * *", "*/7 1-3 * * *",
    "10 2-4/2 * * *", "0 */3 * * *", "5-55/10 1-2 * * *", "*/10 23,0 * * *",
    "*/30 0-3 * * sun", "0 2 1-7 * sun", "0 1 * * 0", "45 23 * * sat", "0 0 13 * fri",
    "5 4 * * sun", "0 12 1-7 * mon", "59 23 31 * *", "*/20 9-17 * * mon-fri",
)
DST_BEFORE = timedelta(hours=3)  # the base: before any wall time a change touches
DST_AFTER = timedelta(hours=5)  # compared up to here: past every time a change touches
# Few iterations first; a line not past the window by then is asked again
# with more than "* * * * *" fires in the window.
DST_ITERATIONS = (40, 500)


def _calendar_times(
    lines: Sequence[str], base: datetime, end: datetime
) -> dict[str, list[datetime]]:
    times = _calendar_run(lines, base, DST_ITERATIONS[0])
    short = [line for line, found in times.items()
             if len(found) == DST_ITERATIONS[0] and found[-1] <= end]
    if short:
        times |= _calendar_run(short, base, DST_ITERATIONS[1])
    return times


def _calendar_run(
    lines: Sequence[str], base: datetime, iterations: int
) -> dict[str, list[datetime]]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC", "LC_ALL": "C"}
    run = subprocess.run(
        [tool("systemd-analyze"), "calendar", f"--iterations={iterations}",
         f"--base-time={base:%Y-%m-%d %H:%M:%S} UTC", *lines],
        capture_output=True, text=True, env=env, check=False,
    )
    assert run.returncode == 0, run.stderr
    blocks: list[list[datetime]] = []
    after_original = False
    for text_line in run.stdout.splitlines():
        label = text_line.strip()
        # a block per line: "Original form:" when it differs, then "Normalized form:"
        if label.startswith("Original form: ") or (
            label.startswith("Normalized form: ") and not after_original
        ):
            blocks.append([])
        after_original = label.startswith("Original form: ")
        if match := _ELAPSE.match(text_line):
            blocks[-1].append(
                datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC))
    return dict(zip(lines, blocks, strict=True))


def _next_fire_times(expr: str, zone: str, base: datetime, end: datetime) -> list[datetime]:
    parsed, tz, out, at = parse_schedule(expr), ZoneInfo(zone), [], base
    while (found := next_fire(parsed, at, tz)) is not None and found <= end:
        out.append(found)
        at = found
    return out


@pytest.mark.parametrize("zone", DST_ZONES)
def test_dst_changes_fire_at_cron_s_instants_on_the_real_systemd(zone: str) -> None:
    changes = _changes(zone, 2027, 2)
    assert len(changes) == 4
    mismatches: list[str] = []
    cronsim_wrong: list[str] = []
    for at, _old, _new in changes:
        change = datetime.fromtimestamp(at, UTC)
        base, end = change - DST_BEFORE, change + DST_AFTER
        ours = {expr: parse_schedule(expr).on_calendar(zone)
                + dst_extras(parse_schedule(expr), zone, 2027, 2) for expr in DST_EXPRS}
        lines = sorted({line for group in ours.values() for line in group})
        times = _calendar_times(lines, base, end)
        for expr, group in ours.items():
            for line in group:
                # a repeating line's instants must reach past the window
                assert len(times[line]) < DST_ITERATIONS[1] or times[line][-1] > end, line
            systemd = sorted({t for line in group for t in times[line] if t <= end})
            cron = [t.astimezone(UTC) for t in takewhile(
                partial(operator.ge, end), CronSim(expr, base.astimezone(ZoneInfo(zone))))]
            if systemd == cron:
                continue
            if zone == "Australia/Lord_Howe" and systemd == _next_fire_times(
                    expr, zone, base, end):
                cronsim_wrong.append(expr)
                continue
            mismatches.append(f"{expr} {change}: systemd-only {sorted(set(systemd) - set(cron))}"
                              f" cron-only {sorted(set(cron) - set(systemd))}")
    assert mismatches == []
    if zone != "Australia/Lord_Howe":
        assert cronsim_wrong == []


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Australia/Lord_Howe"])
def test_dst_a_timer_s_lines_share_one_base(zone: str) -> None:
    """A real timer computes every line's next elapse from its last trigger:
    once an extra instant in the repeated hour has fired, the regular line
    is read from the second pass. Stepping as the timer does (all lines,
    one elapse, from the previous one) still gives cron's instants."""
    for at, old, new in _changes(zone, 2027, 1):
        if new > old:
            continue
        change = datetime.fromtimestamp(at, UTC)
        base, end = change - timedelta(hours=1), change + timedelta(hours=2)
        for expr in ("*/15 * * * *", "* 2 * * *", "*/7 1-3 * * *", "0 * * * *",
                     "15,45 2-3 * * *", "45 2 * * *", "0 */3 * * *"):
            parsed = parse_schedule(expr)
            lines = parsed.on_calendar(zone) + dst_extras(parsed, zone, 2027, 1)
            fired, at_time = [], base
            while True:
                following = [found[0] for found in _calendar_run(lines, at_time, 1).values()
                             if found]
                at_time = min(following)
                if at_time > end:
                    break
                fired.append(at_time)
            assert fired == _next_fire_times(expr, zone, base, end), expr

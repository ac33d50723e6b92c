"""Cron schedules: what is accepted, what is refused and how, and the OnCalendar= lines.

Fast, in-process tests. tests/test_schedule_systemd.py checks the translation
against a real systemd and the parser against Debian's own crontab.
"""

from __future__ import annotations

import ast
import datetime as dt
import random
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim

from pc_systemd.model import schedule
from pc_systemd.model.schedule import CronSchedule, ScheduleError, parse_schedule

ALL_MINUTES = frozenset(range(60))
ALL_HOURS = frozenset(range(24))
ALL_DAYS = frozenset(range(1, 32))
ALL_MONTHS = frozenset(range(1, 13))
ALL_WEEKDAYS = frozenset(range(7))


def fields(expr: str) -> tuple[frozenset[int], ...]:
    s = parse_schedule(expr)
    return (s.minutes, s.hours, s.days_of_month, s.months, s.days_of_week)


# --- accepted forms -------------------------------------------------------------------------


def test_every_minute() -> None:
    s = parse_schedule("* * * * *")
    assert s == CronSchedule(
        expr="* * * * *",
        minutes=ALL_MINUTES,
        hours=ALL_HOURS,
        days_of_month=ALL_DAYS,
        months=ALL_MONTHS,
        days_of_week=ALL_WEEKDAYS,
        dom_star=True,
        dow_star=True,
    )


@pytest.mark.parametrize(
    ("expr", "index", "expected"),
    [
        # numbers, with or without leading zeros
        ("5 * * * *", 0, {5}),
        ("05 * * * *", 0, {5}),
        ("59 23 31 12 7", 0, {59}),
        # lists, ranges and steps
        ("1,15,30 * * * *", 0, {1, 15, 30}),
        ("* 9-17 * * *", 1, set(range(9, 18))),
        ("* 1-1 * * *", 1, {1}),
        ("*/15 * * * *", 0, {0, 15, 30, 45}),
        ("*/7 * * * *", 0, set(range(0, 60, 7))),
        ("10-30/10 * * * *", 0, {10, 20, 30}),
        ("1-5/2,40 * * * *", 0, {1, 3, 5, 40}),
        ("* * */10 * *", 2, {1, 11, 21, 31}),
        ("* * * */5 *", 3, {1, 6, 11}),
        # a step longer than the field leaves only its first value, as in Debian cron
        ("*/100 * * * *", 0, {0}),
        ("* * * * 0-6/100", 4, {0}),
        # '*' may appear inside a list
        ("1,* * * * *", 0, set(ALL_MINUTES)),
        # month names, any case, also in ranges, lists and mixed with numbers
        ("* * * jan *", 3, {1}),
        ("* * * DEC *", 3, {12}),
        ("* * * Jan-Mar *", 3, {1, 2, 3}),
        ("* * * jan,JUL,oct *", 3, {1, 7, 10}),
        ("* * * feb-4 *", 3, {2, 3, 4}),
        ("* * * jan-dec/3 *", 3, {1, 4, 7, 10}),
        # weekday names; 0 and 7 are both Sunday, also inside ranges and steps
        ("* * * * mon", 4, {1}),
        ("* * * * SUN", 4, {0}),
        ("* * * * sun-tue", 4, {0, 1, 2}),
        ("* * * * Mon-Fri", 4, {1, 2, 3, 4, 5}),
        ("* * * * mon,wed,FRI", 4, {1, 3, 5}),
        ("* * * * 7", 4, {0}),
        ("* * * * 0,7", 4, {0}),
        ("* * * * 5-7", 4, {5, 6, 0}),
        ("* * * * fri-7", 4, {5, 6, 0}),
        ("* * * * 0-7", 4, set(ALL_WEEKDAYS)),
        ("* * * * 1-7/2", 4, {1, 3, 5, 0}),
        ("* * * * */2", 4, {0, 2, 4, 6}),
        ("* * * * */7", 4, {0}),
        ("* * * * mon-fri/2", 4, {1, 3, 5}),
    ],
)
def test_accepted_field_values(expr: str, index: int, expected: set[int]) -> None:
    assert fields(expr)[index] == frozenset(expected)


def test_spaces_and_tabs_separate_fields() -> None:
    assert fields("  0\t12 \t 1  *   mon ") == fields("0 12 1 * mon")
    assert parse_schedule(" 0 12 1 * mon ").expr == " 0 12 1 * mon "


@pytest.mark.parametrize(
    ("expr", "dom_star", "dow_star"),
    [
        ("0 0 * * *", True, True),
        ("0 0 */2 * 1", True, False),
        ("0 0 *,3 * 1", True, False),
        ("0 0 13 * */2", False, True),
        ("0 0 13 * 5", False, False),
        # covers every day, yet does not start with '*': cron ORs the day fields
        ("0 0 1-31 * 5", False, False),
        ("0 0 1,* * 5", False, False),
    ],
)
def test_star_flags_follow_the_first_character(expr: str, dom_star: bool, dow_star: bool) -> None:
    s = parse_schedule(expr)
    assert (s.dom_star, s.dow_star) == (dom_star, dow_star)
    assert s.days_ored == (not dom_star and not dow_star)


# --- refused forms --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "field", "message"),
    [
        # out of range
        ("60 * * * *", "minute", "minute: 60 is out of range 0-59"),
        ("* 24 * * *", "hour", "hour: 24 is out of range 0-23"),
        ("* * 0 * *", "day-of-month", "day-of-month: 0 is out of range 1-31"),
        ("* * 32 * *", "day-of-month", "day-of-month: 32 is out of range 1-31"),
        ("* * * 0 *", "month", "month: 0 is out of range 1-12"),
        ("* * * 13 *", "month", "month: 13 is out of range 1-12"),
        ("* * * * 8", "day-of-week", "day-of-week: 8 is out of range 0-7"),
        ("1-60 * * * *", "minute", "minute: 60 is out of range 0-59"),
        ("1,2,99 * * * *", "minute", "minute: 99 is out of range 0-59"),
        (
            "123456789012345678901234567890 * * * *",
            "minute",
            "minute: 123456789012... is out of range 0-59",
        ),
        # reversed ranges (Debian cron accepts them and never runs the job)
        ("5-1 * * * *", "minute", "minute: range '5-1' is reversed (5 > 1)"),
        ("* * * dec-jan *", "month", "month: range 'dec-jan' is reversed (12 > 1)"),
        (
            "* * * * fri-sun",
            "day-of-week",
            "day-of-week: range 'fri-sun' is reversed (5 > 0);"
            " to end a range on Sunday write it as 7, e.g. 5-7",
        ),
        # steps
        ("*/0 * * * *", "minute", "minute: step must be at least 1, got 0 in '*/0'"),
        ("* * * * 1-5/0", "day-of-week", "day-of-week: step must be at least 1, got 0 in '1-5/0'"),
        ("*/ * * * *", "minute", "minute: missing step after '/' in '*/'"),
        ("*/x * * * *", "minute", "minute: step 'x' in '*/x' is not a number"),
        ("* * * */feb *", "month", "month: step 'feb' in '*/feb' is not a number"),
        # N/step: Debian cron rejects it
        (
            "5/15 * * * *",
            "minute",
            "minute: '5/15': a step needs a range or '*' (Debian cron rejects N/step);"
            " for every 15 from 5 write 5-59/15",
        ),
        (
            "* * * * mon/2",
            "day-of-week",
            "day-of-week: 'mon/2': a step needs a range or '*' (Debian cron rejects N/step);"
            " for every 2 from 1 write 1-7/2",
        ),
        # names where they do not belong, or that are not names
        (
            "* jan * * *",
            "hour",
            "hour: 'jan' is not a number 0-23 (names are allowed only in month and day-of-week)",
        ),
        (
            "* * mon * *",
            "day-of-month",
            "day-of-month: 'mon' is not a number 1-31"
            " (names are allowed only in month and day-of-week)",
        ),
        (
            "* * * mon *",
            "month",
            "month: 'mon' is not a number 1-12 or a three-letter month name (jan..dec)",
        ),
        (
            "* * * * jan",
            "day-of-week",
            "day-of-week: 'jan' is not a number 0-7 or a three-letter weekday name (sun..sat)",
        ),
        (
            "* * * * Monday",
            "day-of-week",
            "day-of-week: 'Monday' is not a number 0-7 or a three-letter weekday name (sun..sat)",
        ),
        (
            "* * * January *",
            "month",
            "month: 'January' is not a number 1-12 or a three-letter month name (jan..dec)",
        ),
        # non-cron extensions
        (
            "* * L * *",
            "day-of-month",
            "day-of-month: 'L': 'L'/'W' (last day, nearest weekday) are non-standard cron"
            " extensions, not supported",
        ),
        (
            "* * 15W * *",
            "day-of-month",
            "day-of-month: '15W': 'L'/'W' (last day, nearest weekday) are non-standard cron"
            " extensions, not supported",
        ),
        (
            "* * LW * *",
            "day-of-month",
            "day-of-month: 'LW': 'L'/'W' (last day, nearest weekday) are non-standard cron"
            " extensions, not supported",
        ),
        (
            "* * * * 5L",
            "day-of-week",
            "day-of-week: '5L': 'L'/'W' (last day, nearest weekday) are non-standard cron"
            " extensions, not supported",
        ),
        (
            "* * * * 5#3",
            "day-of-week",
            "day-of-week: '#' (nth weekday of the month) is a non-standard cron extension,"
            " not supported",
        ),
        (
            "0 0 ? * mon",
            "day-of-month",
            "day-of-month: '?' (no specific value) is a non-standard cron extension, not supported",
        ),
        # empty list items
        ("* * 1, * *", "day-of-month", "day-of-month: empty item in list '1,'"),
        ("* * ,1 * *", "day-of-month", "day-of-month: empty item in list ',1'"),
        ("1,,2 * * * *", "minute", "minute: empty item in list '1,,2'"),
        # malformed items
        ("*-5 * * * *", "minute", "minute: '*' can only be followed by one /step, got '*-5'"),
        ("**/2 * * * *", "minute", "minute: '*' can only be followed by one /step, got '**/2'"),
        (
            "1-3-5 * * * *",
            "minute",
            "minute: '1-3-5' is not a value, a range (a-b) or a stepped range (a-b/n or */n)",
        ),
        (
            "*/2/3 * * * *",
            "minute",
            "minute: '*' can only be followed by one /step, got '*/2/3'",
        ),
        (
            "-5 * * * *",
            "minute",
            "minute: '-5' is not a value, a range (a-b) or a stepped range (a-b/n or */n)",
        ),
        ("+5 * * * *", "minute", "minute: unexpected character '+' in '+5'"),
        ("5.0 * * * *", "minute", "minute: unexpected character '.' in '5.0'"),
        ("\uff15 * * * *", "minute", "minute: unexpected character '\uff15' in '\uff15'"),
        # '=' anywhere
        (
            "0 0 * * mon=1",
            "day-of-week",
            "day-of-week: '=' is not allowed"
            " (crontab would read the line as a variable assignment)",
        ),
    ],
)
def test_refused_with_field_named(expr: str, field: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(expr)
    assert str(caught.value) == message
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "schedule is empty"),
        (" \t ", "schedule is empty"),
        ("@daily", "'@daily': @ aliases are not supported; write '0 0 * * *' instead"),
        ("@hourly", "'@hourly': @ aliases are not supported; write '0 * * * *' instead"),
        ("@reboot", "'@reboot': @ aliases are not supported"),
        (
            "PATH=/bin",
            "'=' is not allowed (crontab would read the line as a variable assignment)",
        ),
        (
            "0 0 * * * FOO=1",
            "'=' is not allowed (crontab would read the line as a variable assignment)",
        ),
        ("0 0 * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
        ("0", "expected 5 fields (minute hour day-of-month month day-of-week), got 1"),
        (
            "0 0 0 * * *",
            "expected 5 fields (minute hour day-of-month month day-of-week), got 6;"
            " seconds and year fields are not supported",
        ),
        (
            "0 0 * * * 2030",
            "expected 5 fields (minute hour day-of-month month day-of-week), got 6;"
            " seconds and year fields are not supported",
        ),
        (
            "0 0 0 * * ? 2030",
            "expected 5 fields (minute hour day-of-month month day-of-week), got 7;"
            " seconds and year fields are not supported",
        ),
        (
            "0 0 * * *\n",
            "schedule contains a control or non-printable character (U+000A);"
            " it must be a single line",
        ),
        (
            "0 0 * * *\r",
            "schedule contains a control or non-printable character (U+000D);"
            " it must be a single line",
        ),
        (
            "0 0 * *\n* * * * * /bin/evil",
            "schedule contains a control or non-printable character (U+000A);"
            " it must be a single line",
        ),
        (
            "0 0 \x00* * *",
            "schedule contains a control or non-printable character (U+0000);"
            " it must be a single line",
        ),
        (
            "0 0 * * \x7f",
            "schedule contains a control or non-printable character (U+007F);"
            " it must be a single line",
        ),
        (
            "0 0 * *\u2028*",
            "schedule contains a control or non-printable character (U+2028);"
            " it must be a single line",
        ),
        (
            "0 0 * *\xa0*",
            "schedule contains a control or non-printable character (U+00A0);"
            " it must be a single line",
        ),
    ],
)
def test_refused_as_a_whole(expr: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(expr)
    assert str(caught.value) == message
    assert caught.value.field is None


def test_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="minute: 60 is out of range 0-59"):
        parse_schedule("60 * * * *")


def test_the_first_bad_field_is_reported() -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule("0 24 32 13 8")
    assert caught.value.field == "hour"


# --- OnCalendar= ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("* * * * *", ("*-*-* *:*:00",)),
        ("*/5 * * * *", ("*-*-* *:00..55/5:00",)),
        ("*/7 * * * *", ("*-*-* *:00..56/7:00",)),
        ("0 0 * * *", ("*-*-* 00:00:00",)),
        ("30 2 * * *", ("*-*-* 02:30:00",)),
        ("0,30 9-17 * * mon-fri", ("Mon..Fri *-*-* 09..17:00,30:00",)),
        ("0 0 1,15 * *", ("*-*-01,15 00:00:00",)),
        ("15 3 1 jan *", ("*-01-01 03:15:00",)),
        ("0 */6 * * *", ("*-*-* 00..18/6:00:00",)),
        ("5-59/15 * * * *", ("*-*-* *:05..50/15:00",)),
        ("5-35/15 * * * *", ("*-*-* *:05..35/15:00",)),
        ("0 0 * * 7", ("Sun *-*-* 00:00:00",)),
        ("0 0 * * 0,7", ("Sun *-*-* 00:00:00",)),
        ("0 0 * * 5-7", ("Fri..Sun *-*-* 00:00:00",)),
        ("0 0 * * sat,sun", ("Sat,Sun *-*-* 00:00:00",)),
        ("0 0 * jan-mar sun-tue", ("Mon,Tue,Sun *-01..03-* 00:00:00",)),
        ("0 0 29 2 *", ("*-02-29 00:00:00",)),
        ("0 0 31 * *", ("*-*-31 00:00:00",)),
        # '*'-led day-of-month: the day fields are ANDed, one line
        ("0 0 */2 * mon", ("Mon *-*-01..31/2 00:00:00",)),
        ("0 0 13 * */2", ("Tue,Thu,Sat,Sun *-*-13 00:00:00",)),
        # both restricted: cron ORs them, systemd needs one line for each
        ("0 12 1-7 * mon", ("*-*-01..07 12:00:00", "Mon *-*-* 12:00:00")),
        ("*/2 * 13 * 5", ("*-*-13 *:00..58/2:00", "Fri *-*-* *:00..58/2:00")),
        # ORed with a field that covers every day: every day
        ("0 0 1-31 * mon", ("*-*-* 00:00:00",)),
        ("0 0 13 * 0-7", ("*-*-* 00:00:00",)),
        # ORed with a day-of-month no selected month has: the weekday line alone
        ("0 0 31 2 mon", ("Mon *-02-* 00:00:00",)),
        # cannot fire: the literal translation, which never elapses
        ("0 0 30 2 *", ("*-02-30 00:00:00",)),
        # lists become runs: ranges, steps to the end of the field, stepped ranges
        ("1,2,3,5,10,15,20 * * * *", ("*-*-* *:01..03,05..20/5:00",)),
        ("0 0 1 */3 *", ("*-01..10/3-01 00:00:00",)),
        ("0,1 * * * *", ("*-*-* *:00,01:00",)),
        ("0-59 0-23 1-31 1-12 *", ("*-*-* *:*:00",)),
    ],
)
def test_on_calendar(expr: str, expected: tuple[str, ...]) -> None:
    assert parse_schedule(expr).on_calendar() == expected


def test_on_calendar_appends_the_timezone() -> None:
    s = parse_schedule("0 12 1 * mon")
    assert s.on_calendar("Europe/Berlin") == (
        "*-*-01 12:00:00 Europe/Berlin",
        "Mon *-*-* 12:00:00 Europe/Berlin",
    )
    assert s.on_calendar(None) == s.on_calendar()


def test_on_calendar_is_compact_for_large_sets() -> None:
    every_other = ",".join(str(m) for m in range(0, 60, 2))
    assert parse_schedule(f"{every_other} * * * *").on_calendar() == ("*-*-* *:00..58/2:00",)
    most = ",".join(str(m) for m in range(60) if m != 17)
    assert parse_schedule(f"{most} * * * *").on_calendar() == ("*-*-* *:00..16,18..59:00",)


@pytest.mark.parametrize(
    ("expr", "fires"),
    [
        ("* * * * *", True),
        ("0 0 29 2 *", True),
        ("0 0 31 * *", True),
        ("0 0 31 1-12/2 *", True),
        ("0 0 30 2 *", False),
        ("0 0 30,31 2 *", False),
        ("0 0 31 4,6 *", False),
        ("0 0 31 apr,jun,sep,nov *", False),
        ("0 0 31 2,4 */2", False),
        # a weekday may rescue an impossible date (OR), or not (AND)
        ("0 0 30 2 mon", True),
        ("0 0 31 2 *,mon", False),
        ("0 0 31 4 */3", False),
    ],
)
def test_can_fire(expr: str, fires: bool) -> None:
    assert parse_schedule(expr).can_fire() is fires


def test_runs_cover_exactly_the_values() -> None:
    rng = random.Random(1)
    for _ in range(2000):
        high = rng.choice((7, 12, 23, 31, 59))
        values = frozenset(v for v in range(high + 1) if rng.random() < rng.random())
        if not values:
            continue
        covered: set[int] = set()
        for first, last, step in schedule.runs_covering(values, high):
            assert first in values and last in values
            covered.update(range(first, last + 1, step))
        assert covered == values


def test_imports_only_the_standard_library() -> None:
    # The systemd generator imports this module and must start fast.
    tree = ast.parse(Path(schedule.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


# --- the next fire time (``--status`` on cron hosts) -----------------------------------------
# Debian cron's own times, from cronsim (a test dependency only): random
# expressions over a year, and every 2027 DST change of zones on both
# hemispheres, fixed-time jobs and wildcard ones alike.

NEXT_ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney",
              "America/Santiago", "Asia/Kolkata")
NEXT_EXPRS = (
    "30 2 * * *", "0 2 * * *", "45 1 * * *", "* 2 * * *", "*/15 * * * *", "0 * * * *",
    "30 1-3 * * *", "15,45 2-3 * * *", "*/7 1-3 * * *", "10 2-4/2 * * *", "0 */3 * * *",
    "0 0 13 * fri", "5 4 * * sun", "0 0 29 2 *", "59 23 31 * *", "0 12 1-7 * mon",
    "0 0 1 jan *", "*/20 9-17 * * mon-fri",
)


def _random_expr(rng: random.Random) -> str:
    def field(low: int, high: int) -> str:
        kind = rng.randrange(5)
        if kind == 0:
            return "*"
        if kind == 1:
            return f"*/{rng.randint(2, max(2, (high - low) // 2))}"
        first = rng.randint(low, high)
        if kind == 2:
            return str(first)
        last = rng.randint(first, high)
        if kind == 3:
            return f"{first}-{last}"
        return ",".join(str(rng.randint(low, high)) for _ in range(3))

    return " ".join((field(0, 59), field(0, 23), field(1, 28), field(1, 12), field(0, 6)))


def _cron_times(expr: str, start: dt.datetime, zone: str, count: int) -> list[dt.datetime]:
    times = CronSim(expr, start.astimezone(ZoneInfo(zone)))
    return [next(times).astimezone(dt.UTC) for _ in range(count)]


def _our_times(expr: str, start: dt.datetime, zone: str, count: int) -> list[dt.datetime]:
    parsed, tz, out = parse_schedule(expr), ZoneInfo(zone), []
    for _ in range(count):
        found = schedule.next_fire(parsed, start, tz)
        assert found is not None
        out.append(found)
        start = found
    return out


def test_next_fire_is_cron_s_over_random_expressions_and_a_year() -> None:
    rng = random.Random(5)
    for _ in range(400):
        expr, zone = _random_expr(rng), rng.choice(NEXT_ZONES)
        start = dt.datetime(2027, 1, 1, tzinfo=dt.UTC) + dt.timedelta(
            seconds=rng.randrange(366 * 86400))
        assert _our_times(expr, start, zone, 5) == _cron_times(expr, start, zone, 5), (expr, zone)


def _changes(zone: str, year: int) -> list[dt.datetime]:
    tz, at, out = ZoneInfo(zone), dt.datetime(year, 1, 1, tzinfo=dt.UTC), []
    offset = at.astimezone(tz).utcoffset()
    while at.year == year:
        if at.astimezone(tz).utcoffset() != offset:
            out.append(at)
            offset = at.astimezone(tz).utcoffset()
        at += dt.timedelta(minutes=30)
    return out


@pytest.mark.parametrize("zone", [z for z in NEXT_ZONES if z not in ("UTC", "Asia/Kolkata")])
def test_next_fire_follows_cron_through_dst_changes(zone: str) -> None:
    changes = _changes(zone, 2027)
    assert len(changes) == 2
    for change in changes:
        for expr in NEXT_EXPRS:
            start = change - dt.timedelta(hours=26)
            assert _our_times(expr, start, zone, 40) == _cron_times(expr, start, zone, 40), expr


def test_next_fire_dst_rules_by_hand() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    utc = dt.UTC
    spring = dt.datetime(2027, 3, 27, 12, tzinfo=utc)  # the change: 2027-03-28 01:00 UTC
    # A fixed-time job in the skipped hour runs at its end (03:00 CEST).
    assert schedule.next_fire(parse_schedule("30 2 * * *"), spring, berlin) == \
        dt.datetime(2027, 3, 28, 1, 0, tzinfo=utc)
    autumn = dt.datetime(2027, 10, 31, 0, 20, tzinfo=utc)  # 02:20 CEST, first pass
    quarter = parse_schedule("*/15 * * * *")
    fixed = parse_schedule("45 2 * * *")
    # A wildcard job runs through the repeated hour; a fixed-time one once.
    assert schedule.next_fire(quarter, dt.datetime(2027, 10, 31, 0, 45, tzinfo=utc), berlin) == \
        dt.datetime(2027, 10, 31, 1, 0, tzinfo=utc)  # 02:00 CET, the second pass
    assert schedule.next_fire(fixed, autumn, berlin) == dt.datetime(2027, 10, 31, 0, 45, tzinfo=utc)
    assert schedule.next_fire(fixed, dt.datetime(2027, 10, 31, 1, 20, tzinfo=utc), berlin) == \
        dt.datetime(2027, 11, 1, 1, 45, tzinfo=utc)
    # A 30-minute change (cronsim skips 03:00 here; Debian cron does not).
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    assert schedule.next_fire(parse_schedule("0 */3 * * *"),
                              dt.datetime(2027, 4, 3, 13, tzinfo=utc), lord_howe) == \
        dt.datetime(2027, 4, 3, 16, 30, tzinfo=utc)  # 03:00 +10:30


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 0 30 2 *", dt.datetime(2027, 1, 1, tzinfo=dt.UTC), None),
        ("0 0 29 2 *", dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
         dt.datetime(2028, 2, 29, tzinfo=dt.UTC)),
        # cron's OR of the day fields: the 13th or a Friday.
        ("0 0 13 * fri", dt.datetime(2027, 1, 2, tzinfo=dt.UTC),
         dt.datetime(2027, 1, 8, tzinfo=dt.UTC)),
        # strictly after: a run due now is the next one's.
        ("30 12 * * *", dt.datetime(2027, 1, 2, 12, 30, tzinfo=dt.UTC),
         dt.datetime(2027, 1, 3, 12, 30, tzinfo=dt.UTC)),
    ],
)
def test_next_fire_cases(expr: str, after: dt.datetime, expected: dt.datetime | None) -> None:
    assert schedule.next_fire(parse_schedule(expr), after, ZoneInfo("UTC")) == expected


# --- extra instants for DST changes (the real systemd: tests/test_schedule_systemd.py) ---------


def test_dst_extras_by_hand() -> None:
    berlin = "Europe/Berlin"
    # Spring 2027: 02:30 does not exist; cron runs the job at 03:00 CEST.
    assert "2027-03-28 01:00:00 UTC" in schedule.dst_extras(parse_schedule("30 2 * * *"),
                                                            berlin, 2027, 1)
    # Autumn 2027: the repeated hour's second pass, 02:00-02:45 CET.
    assert schedule.dst_extras(parse_schedule("*/15 2 * * *"), berlin, 2027, 1) == (
        "2027-10-31 01:00:00 UTC", "2027-10-31 01:15:00 UTC",
        "2027-10-31 01:30:00 UTC", "2027-10-31 01:45:00 UTC")
    # A fixed time that the spec also names right after the gap: systemd fires it.
    assert schedule.dst_extras(parse_schedule("0 2,3 * * *"), berlin, 2027, 1) == ()
    # The changes fall on Sundays: a weekday job needs nothing.
    assert schedule.dst_extras(parse_schedule("30 2 * * mon-fri"), berlin, 2027, 3) == ()
    assert schedule.dst_extras(parse_schedule("30 2 * * *"), "UTC", 2027, 3) == ()
    assert schedule.dst_extras(parse_schedule("30 2 * * *"), "No/Such_Zone", 2027, 3) == ()
    assert schedule.dst_extras(parse_schedule("30 2 * * *"), berlin, 2027, 3)[-1] == \
        "2029-03-25 01:00:00 UTC"


def test_host_zone_is_tz_then_etc_localtime(tmp_path: Path) -> None:
    assert schedule.host_zone({"TZ": "Europe/Berlin"}) == "Europe/Berlin"
    assert schedule.host_zone({"TZ": ":America/New_York"}) == "America/New_York"
    link = tmp_path / "zoneinfo" / "Asia" / "Tokyo"
    link.parent.mkdir(parents=True)
    link.write_bytes(b"")
    assert schedule.host_zone({"TZ": f":{link}"}) == "Asia/Tokyo"
    assert schedule.host_zone({"TZ": f":{tmp_path}/missing"}) == "UTC"

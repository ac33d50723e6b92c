"""Five-field cron schedules with Debian cron's meaning, as systemd OnCalendar=.

The systemd generator imports this module, so it uses the standard library only.
The accepted syntax and every choice made here are described in docs/schedules.md.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import os
import re
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

__all__ = [
    "CronSchedule", "ScheduleError", "dst_extras", "host_zone", "next_fire", "parse_schedule",
]


class ScheduleError(ValueError):
    """A schedule that cron would reject, or that this project refuses.

    The message is one line and starts with the field name when one field is
    at fault, e.g. "day-of-week: 8 is out of range 0-7".
    """

    field: str | None

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    # Three-letter names, lower case, for the values low, low + 1, ...
    names: tuple[str, ...] = ()
    # A word that describes the names in messages ("month", "weekday").
    kind: str = ""


_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DOM = _Field("day-of-month", 1, 31)
_MONTH = _Field(
    "month",
    1,
    12,
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    "month",
)
# cron's day-of-week runs 0-7 because both 0 and 7 are Sunday; "sun" is 0.
_DOW = _Field("day-of-week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat"), "weekday")
_FIELDS = (_MINUTE, _HOUR, _DOM, _MONTH, _DOW)

# The longest each month can be, January first; February 29 exists in leap years.
MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

# systemd's weekday names, Monday first as systemd orders them in ranges.
_SYSTEMD_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_ITEM = re.compile(
    r"(?:(?P<star>\*)|(?P<first>[0-9A-Za-z]+)(?:-(?P<last>[0-9A-Za-z]+))?)"
    r"(?:/(?P<step>[0-9A-Za-z]*))?"
)
_SEPARATOR = re.compile(r"[ \t]+")
# Quartz/cronie-style day extensions: L, 5L, LW, 15W.
_DAY_EXTENSION = re.compile(r"[0-9]*[lL][wW]?|[0-9]+[wW]")
_EXTENSION_CHARS = {
    "#": "'#' (nth weekday of the month)",
    "?": "'?' (no specific value)",
}


@dataclass(frozen=True)
class CronSchedule:
    """A parsed five-field schedule; days_of_week uses 0=Sunday..6, never 7."""

    expr: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]
    # The field began with '*': cron then ANDs the two day fields instead of ORing them.
    dom_star: bool
    dow_star: bool

    @property
    def days_ored(self) -> bool:
        """True when a day matching either day-of-month or day-of-week fires."""
        return not (self.dom_star or self.dow_star)

    def can_fire(self) -> bool:
        """False for schedules that never fire, such as "0 0 30 2 *"."""
        # Every month has every weekday, and over the 400-year Gregorian cycle
        # every possible date (Feb 29 included) falls on every weekday, so only
        # a day-of-month that no selected month has can make a schedule dead.
        return self.days_ored or self._dom_fits_months()

    def on_calendar(self, timezone: str | None = None) -> tuple[str, ...]:
        """OnCalendar= expressions whose union fires exactly when Debian cron would.

        Each expression is in systemd's normalized form, so `systemd-analyze
        calendar` shows it unchanged. A schedule that can never fire still gets
        its literal translation, which systemd accepts and never elapses.
        """
        suffix = f" {timezone}" if timezone else ""
        month = _component(self.months, _MONTH)
        time = f"{_component(self.hours, _HOUR)}:{_component(self.minutes, _MINUTE)}:00"
        every_dom = self.days_of_month == _full(_DOM)
        every_dow = self.days_of_week == frozenset(range(7))

        def line(weekdays: str, dom: str) -> str:
            prefix = f"{weekdays} " if weekdays else ""
            return f"{prefix}*-{month}-{dom} {time}{suffix}"

        dom = _component(self.days_of_month, _DOM)
        weekdays = _weekdays(self.days_of_week)
        if not self.days_ored:
            return (line("" if every_dow else weekdays, dom),)
        if every_dom or every_dow:
            return (line("", "*"),)
        # systemd ANDs the parts of one expression, so cron's OR of the two
        # day fields becomes two expressions; a day-of-month line that no
        # selected month can reach is left out to keep the output short.
        by_weekday = line(weekdays, "*")
        if not self._dom_fits_months():
            return (by_weekday,)
        return (line("", dom), by_weekday)

    @property
    def fixed_time(self) -> bool:
        """Neither the minute nor the hour field starts with ``*``: Debian
        cron's "fixed-time job", which its DST rules treat apart."""
        minute, hour = _SEPARATOR.split(self.expr.strip(" \t"))[:2]
        return not (minute.startswith("*") or hour.startswith("*"))

    def fires_on(self, day: dt.date) -> bool:
        """Debian cron's day rule: both day fields must match, unless both
        are restricted (neither starts with ``*``): then either may."""
        if day.month not in self.months:
            return False
        dom = day.day in self.days_of_month
        dow = (day.weekday() + 1) % 7 in self.days_of_week
        return (dom or dow) if self.days_ored else (dom and dow)

    def _dom_fits_months(self) -> bool:
        return any(
            day <= MONTH_DAYS[month - 1] for month in self.months for day in self.days_of_month
        )


# Memoised (a pure function; errors are not cached): a job set repeats its
# schedules, and the generator parses every job's at each run.
@functools.lru_cache(maxsize=1024)
def parse_schedule(expr: str) -> CronSchedule:
    """Parse "minute hour day-of-month month day-of-week" as Debian cron does.

    Raises ScheduleError for anything Debian cron rejects, and also for forms
    it accepts but that are almost certainly mistakes (see docs/schedules.md).
    """
    for char in expr:
        if char != "\t" and not char.isprintable():
            raise ScheduleError(
                f"schedule contains a control or non-printable character (U+{ord(char):04X});"
                " it must be a single line"
            )
    text = expr.strip(" \t")
    if not text:
        raise ScheduleError("schedule is empty")
    if text.startswith("@"):
        alias = _SEPARATOR.split(text)[0]
        hint = _ALIASES.get(alias.lower())
        instead = f"; write {hint!r} instead" if hint else ""
        raise ScheduleError(f"{alias!r}: @ aliases are not supported{instead}")
    parts = _SEPARATOR.split(text)
    if "=" in text:
        where = next((i for i, part in enumerate(parts) if "=" in part), 0)
        at = _FIELDS[where].name if len(parts) == len(_FIELDS) else None
        raise ScheduleError(
            "'=' is not allowed (crontab would read the line as a variable assignment)", at
        )
    if len(parts) != len(_FIELDS):
        extra = "; seconds and year fields are not supported" if len(parts) in (6, 7) else ""
        raise ScheduleError(
            "expected 5 fields (minute hour day-of-month month day-of-week),"
            f" got {len(parts)}{extra}"
        )

    fields = [_parse_field(part, spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    # Debian cron treats 7 as a second Sunday; fold it so 0..6 is the only form.
    days_of_week = frozenset(day % 7 for day in fields[4])
    return CronSchedule(
        expr=expr,
        minutes=fields[0],
        hours=fields[1],
        days_of_month=fields[2],
        months=fields[3],
        days_of_week=days_of_week,
        dom_star=parts[2].startswith("*"),
        dow_star=parts[4].startswith("*"),
    )


def _parse_field(text: str, spec: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        values.update(_parse_item(item, text, spec))
    return frozenset(values)


def _parse_item(item: str, text: str, spec: _Field) -> range:
    if not item:
        raise ScheduleError(f"empty item in list {text!r}", spec.name)
    for char in item:
        if char in _EXTENSION_CHARS:
            raise ScheduleError(
                f"{_EXTENSION_CHARS[char]} is a non-standard cron extension, not supported",
                spec.name,
            )
        if not (char.isascii() and (char.isalnum() or char in "*/-")):
            raise ScheduleError(f"unexpected character {char!r} in {item!r}", spec.name)
    match = _ITEM.fullmatch(item)
    if match is None:
        if item.startswith("*"):
            raise ScheduleError(f"'*' can only be followed by one /step, got {item!r}", spec.name)
        raise ScheduleError(
            f"{item!r} is not a value, a range (a-b) or a stepped range (a-b/n or */n)", spec.name
        )

    step_text = match["step"]
    step = 1 if step_text is None else _parse_step(step_text, item, spec)
    if match["star"]:
        return range(spec.low, spec.high + 1, step)
    first = _parse_value(match["first"], spec)
    if match["last"] is None:
        if step_text is not None:
            # Vixie cron ignored "/n" here and Debian cron rejects the line;
            # other crons read it as first-max/n. Refusing avoids guessing.
            raise ScheduleError(
                f"{item!r}: a step needs a range or '*' (Debian cron rejects N/step);"
                f" for every {step_text} from {first} write {first}-{spec.high}/{step_text}",
                spec.name,
            )
        return range(first, first + 1)
    last = _parse_value(match["last"], spec)
    if first > last:
        # Debian cron accepts a reversed range and then silently never runs it.
        hint = (
            "; to end a range on Sunday write it as 7, e.g. 5-7"
            if spec is _DOW and last == 0
            else ""
        )
        raise ScheduleError(f"range {item!r} is reversed ({first} > {last}){hint}", spec.name)
    return range(first, last + 1, step)


def _parse_step(text: str, item: str, spec: _Field) -> int:
    if not text:
        raise ScheduleError(f"missing step after '/' in {item!r}", spec.name)
    if not text.isdigit():
        raise ScheduleError(f"step {text!r} in {item!r} is not a number", spec.name)
    step = _number(text)
    if step < 1:
        raise ScheduleError(f"step must be at least 1, got {step} in {item!r}", spec.name)
    # Debian cron accepts steps longer than the field (only the first value
    # remains); any such step means the same, so cap it.
    return min(step, spec.high + 1)


def _parse_value(token: str, spec: _Field) -> int:
    if token.isdigit():
        value = _number(token)
        if not spec.low <= value <= spec.high:
            shown = token if len(token) <= 12 else f"{token[:12]}..."
            raise ScheduleError(f"{shown} is out of range {spec.low}-{spec.high}", spec.name)
        return value
    if token.lower() in spec.names:
        return spec.low + spec.names.index(token.lower())
    if spec in (_DOM, _DOW) and _DAY_EXTENSION.fullmatch(token):
        raise ScheduleError(
            f"{token!r}: 'L'/'W' (last day, nearest weekday) are non-standard cron"
            " extensions, not supported",
            spec.name,
        )
    if spec.names:
        raise ScheduleError(
            f"{token!r} is not a number {spec.low}-{spec.high} or a three-letter {spec.kind} name"
            f" ({spec.names[0]}..{spec.names[-1]})",
            spec.name,
        )
    raise ScheduleError(
        f"{token!r} is not a number {spec.low}-{spec.high} (names are allowed only in"
        " month and day-of-week)",
        spec.name,
    )


def _number(digits: str) -> int:
    # Leading zeros are fine ("05"); a value too long for any field is read
    # as a large number so that int() never sees thousands of digits.
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= 6 else 10**6


def _full(spec: _Field) -> frozenset[int]:
    return frozenset(range(spec.low, spec.high + 1))


def _component(values: frozenset[int], spec: _Field) -> str:
    """One numeric part of an OnCalendar= time, e.g. "*", "00..55/5", "01,15", "09..17"."""
    if values == _full(spec):
        return "*"
    return ",".join(_format_run(run) for run in runs_covering(values, spec.high))


# A pure function of its arguments, memoised: the same field sets (minute 0,
# every 5 minutes, hours 9..17) recur across the jobs of one generator run.
@functools.lru_cache(maxsize=256)
def runs_covering(values: frozenset[int], high: int) -> list[tuple[int, int, int]]:
    """Cover values with few arithmetic runs (first, last, step), sorted by first.

    Plain ranges read best, so they win unless stepped runs need fewer items.
    Runs of two values are left as two values ("01,02"). Exact (every run lies
    inside values) and deterministic.
    """
    plain = _plain_ranges(values)
    if len(plain) <= 2:  # stepped runs cannot do better (a step needs 3 values)
        return plain
    stepped = _stepped_runs(values, high)
    return stepped if len(stepped) < len(plain) else plain


def _plain_ranges(values: frozenset[int]) -> list[tuple[int, int, int]]:
    runs: list[tuple[int, int, int]] = []
    ordered = sorted(values)
    start = 0
    while start < len(ordered):
        end = start
        while end + 1 < len(ordered) and ordered[end + 1] == ordered[end] + 1:
            end += 1
        if end - start >= 2:
            runs.append((ordered[start], ordered[end], 1))
        else:
            runs.extend((value, value, 1) for value in ordered[start : end + 1])
        start = end + 1
    return runs


def _stepped_runs(values: frozenset[int], high: int) -> list[tuple[int, int, int]]:
    # Greedy set cover over the longest run from each value with each step:
    # take the run adding most values, then the one overlapping least, then
    # the smaller step and start. Runs may overlap; systemd ORs list items.
    candidates: list[tuple[int, int, int, int]] = []  # (members bitmask, first, last, step)
    for first in sorted(values):
        candidates.append((1 << first, first, first, 1))
        for step in range(1, high - first + 1):
            last = first
            while last + step in values:
                last += step
            if (last - first) // step >= 2:
                mask = sum(1 << value for value in range(first, last + 1, step))
                candidates.append((mask, first, last, step))
    wanted = sum(1 << value for value in values)
    covered = 0
    runs: list[tuple[int, int, int]] = []
    while covered != wanted:
        mask, first, last, step = max(
            candidates,
            key=lambda c: ((c[0] & ~covered).bit_count(), -c[0].bit_count(), -c[3], -c[1]),
        )
        covered |= mask
        runs.append((first, last, step))
    return sorted(runs)


def _format_run(run: tuple[int, int, int]) -> str:
    # Two digits, as in systemd's normalized form. A step always gets its
    # end ("00..56/7", never "00/7"): systemd 252 skips the first elapse after
    # an open-ended repetition carries over two units, e.g. "*:00/7" at 23:58
    # goes on at 00:07 of the next day, not 00:00 (see docs/schedules.md).
    first, last, step = run
    if first == last:
        return f"{first:02d}"
    if step == 1:
        return f"{first:02d}..{last:02d}"
    return f"{first:02d}..{last:02d}/{step}"


def _weekdays(days: Iterable[int]) -> str:
    """cron weekdays (0=Sunday) as systemd names, e.g. "Mon..Fri,Sun"."""
    # systemd counts Monday as the first day; runs of three or more become ranges.
    monday_first = sorted((day - 1) % 7 for day in days)
    parts: list[str] = []
    start = 0
    while start < len(monday_first):
        end = start
        while end + 1 < len(monday_first) and monday_first[end + 1] == monday_first[end] + 1:
            end += 1
        names = [_SYSTEMD_WEEKDAYS[day] for day in monday_first[start : end + 1]]
        parts.append(f"{names[0]}..{names[-1]}" if len(names) >= 3 else ",".join(names))
        start = end + 1
    return ",".join(parts)


# Far enough for any schedule that can fire at all: February 29 on a given
# weekday recurs within 28 years (the 400-year cycle has gaps of up to 40).
_SEARCH_DAYS = 41 * 366


def next_fire(schedule: CronSchedule, after: dt.datetime, zone: dt.tzinfo) -> dt.datetime | None:
    """When Debian's cron, reading ``schedule`` in ``zone``, next runs the
    job strictly after ``after`` (an aware time), in UTC; None if it never will.

    Cron's rules for the two yearly DST changes hold: a fixed-time job
    (see :attr:`CronSchedule.fixed_time`) whose time falls in the skipped
    hour runs at the first minute after it, and runs once in a repeated
    hour; any other job runs at each real minute whose wall-clock time
    matches, so twice through a repeated hour and never in a skipped one.
    """
    if not schedule.can_fire():
        return None
    after = after.astimezone(dt.UTC)  # compared by instant, never by a zone's wall clock
    start = after.astimezone(zone).date() - dt.timedelta(days=1)  # a repeated hour's first pass
    for offset in range(_SEARCH_DAYS):
        day = start + dt.timedelta(days=offset)
        if not schedule.fires_on(day):
            continue
        if _steady(day, zone):
            found = _first_after(schedule, day, zone, after)
        else:
            found = min((t for t in _day_times(schedule, day, zone) if t > after), default=None)
        if found is not None:
            return found
    return None


def _steady(day: dt.date, zone: dt.tzinfo) -> bool:
    """No DST change on ``day`` in ``zone``: its wall-clock times are all
    real, each once, in the order of their instants."""
    midnights = (dt.datetime(day.year, day.month, day.day),
                 dt.datetime(day.year, day.month, day.day) + dt.timedelta(days=1))
    offsets = {m.replace(tzinfo=zone, fold=fold).utcoffset() for m in midnights for fold in (0, 1)}
    return len(offsets) == 1


def _first_after(
    schedule: CronSchedule, day: dt.date, zone: dt.tzinfo, after: dt.datetime
) -> dt.datetime | None:
    """The first time of a steady day after ``after``, trying few: a whole
    hour is passed over when its last minute is not after ``after``."""
    minutes = sorted(schedule.minutes)
    for hour in sorted(schedule.hours):
        last = dt.datetime(day.year, day.month, day.day, hour, minutes[-1], tzinfo=zone)
        if last <= after:
            continue
        for minute in minutes:
            found = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
            if found > after:
                return found.astimezone(dt.UTC)
    return None


def _day_times(schedule: CronSchedule, day: dt.date, zone: dt.tzinfo) -> Iterator[dt.datetime]:
    """Every time of a day with a DST change, in UTC: in one zone,
    times compare by wall clock, fold ignored."""
    for hour in sorted(schedule.hours):
        for minute in sorted(schedule.minutes):
            wall = dt.datetime(day.year, day.month, day.day, hour, minute)
            if schedule.fixed_time:
                yield _first_real(wall, zone).astimezone(dt.UTC)
                continue
            for fold in (0, 1):
                local = wall.replace(tzinfo=zone, fold=fold)
                if _real(local):
                    yield local.astimezone(dt.UTC)


def _real(local: dt.datetime) -> bool:
    """False for a wall-clock time that a spring-forward change skips."""
    back = local.astimezone(dt.UTC).astimezone(local.tzinfo)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


def _first_real(wall: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """``wall`` in ``zone`` (its first pass if repeated), or, if skipped,
    the first wall-clock minute after it that exists."""
    local = wall.replace(tzinfo=zone, fold=0)
    while not _real(local):
        local += dt.timedelta(minutes=1)
    return local


# --- DST changes on systemd hosts ---------------------------------------------------------------
# systemd reads a calendar spec once per pass of the wall clock: a local time
# that a spring-forward change skips never elapses, and in a repeated hour a
# spec elapses on the first pass only (measured on systemd 252 with
# `systemd-analyze calendar`, tests/test_schedule_systemd.py). Debian cron
# differs on fixed-time jobs in a skipped hour and on wildcard jobs in a
# repeated one (see next_fire); dst_extras lists the instants that make up
# the difference, as absolute OnCalendar= lines.

# How many years of changes, from January 1 of the generation year: the
# generator runs at every boot and daemon-reload, and whole years keep its
# output (and the file cache's entries) the same for a calendar year.
DST_YEARS = 3


def dst_extras(
    schedule: CronSchedule, zone: str, start_year: int, years: int = DST_YEARS
) -> tuple[str, ...]:
    """Absolute ``OnCalendar=`` instants (``2027-03-28 01:00:00 UTC``) where
    Debian cron, reading ``schedule`` in ``zone``, runs the job and systemd's
    calendar spec for it does not, over the DST changes of the ``years``
    years from January 1 of ``start_year``. Empty for a zone without changes
    or one that cannot be loaded (a POSIX TZ string, say)."""
    changes = _changes(zone, start_year, years)
    if not changes or not schedule.can_fire():
        return ()
    return _extras(schedule, changes)


@functools.lru_cache(maxsize=1024)
def _extras(schedule: CronSchedule, changes: tuple[tuple[int, int, int], ...]) -> tuple[str, ...]:
    extras: list[dt.datetime] = []
    for at, old, new in changes:
        change = dt.datetime.fromtimestamp(at, dt.UTC)
        # The wall-clock times that the change skips (forward) or repeats (back).
        wall = (change + dt.timedelta(seconds=min(old, new))).replace(tzinfo=None)
        end = (change + dt.timedelta(seconds=max(old, new))).replace(tzinfo=None)
        wall = wall.replace(second=0) + dt.timedelta(minutes=1 if wall.second else 0)
        if not _may_match(schedule, wall, end):
            continue  # most jobs: no hour or day of theirs near the change
        if new > old:
            # cron runs a fixed-time job due in the gap at the first time after
            # it; systemd's spec elapses then only if the spec names that time.
            if schedule.fixed_time and _any_match(schedule, wall, end) \
                    and not (end.second == 0 and _matches(schedule, end)):
                extras.append(change)
        elif not schedule.fixed_time:
            # cron runs a wildcard job at each matching minute of both passes;
            # systemd only on the first: the second pass's are added.
            while wall < end:
                if _matches(schedule, wall):
                    extras.append((wall - dt.timedelta(seconds=new)).replace(tzinfo=dt.UTC))
                wall += dt.timedelta(minutes=1)
    return tuple(f"{t:%Y-%m-%d %H:%M:%S} UTC" for t in sorted(set(extras)))


def _matches(schedule: CronSchedule, wall: dt.datetime) -> bool:
    return (wall.minute in schedule.minutes and wall.hour in schedule.hours
            and schedule.fires_on(wall.date()))


def _may_match(schedule: CronSchedule, wall: dt.datetime, end: dt.datetime) -> bool:
    """A quick look before minute by minute: some wall-clock hour of
    [wall, end) is the schedule's, on a day of its."""
    last = end - dt.timedelta(minutes=1)
    hours = {(wall + dt.timedelta(hours=n)).hour for n in range(3)} | {last.hour}
    days = {wall.date(), last.date()}
    return bool(hours & schedule.hours) and any(schedule.fires_on(day) for day in days)


def _any_match(schedule: CronSchedule, wall: dt.datetime, end: dt.datetime) -> bool:
    while wall < end:
        if _matches(schedule, wall):
            return True
        wall += dt.timedelta(minutes=1)
    return False


# Once per zone per generator run: most jobs share a zone or two.
@functools.lru_cache(maxsize=64)
def _changes(zone: str, start_year: int, years: int) -> tuple[tuple[int, int, int], ...]:
    """(UTC epoch second, offset before, offset after) of each change of the
    zone's UTC offset in the window, in seconds."""
    try:
        tz = _load_zone(zone)
    except (OSError, ValueError, zoneinfo.ZoneInfoNotFoundError):
        return ()
    start = int(dt.datetime(start_year, 1, 1, tzinfo=dt.UTC).timestamp())
    stop = int(dt.datetime(start_year + years, 1, 1, tzinfo=dt.UTC).timestamp())

    def offset(at: int) -> int:
        delta = dt.datetime.fromtimestamp(at, tz).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    changes: list[tuple[int, int, int]] = []
    # Daily steps: no zone changes its offset twice within a day.
    day, before = start, offset(start)
    while day < stop:
        after = offset(day + 86400)
        if after != before:
            low, high = day, day + 86400  # offset(low) == before, offset(high) == after
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == before else (low, middle)
            if start <= high < stop:
                changes.append((high, before, after))
        day, before = day + 86400, after
    return tuple(changes)


def _load_zone(zone: str) -> dt.tzinfo:
    if zone.startswith("/"):
        with open(zone, "rb") as handle:
            return zoneinfo.ZoneInfo.from_file(handle, key=zone)
    return zoneinfo.ZoneInfo(zone)


def host_zone(environ: Mapping[str, str] | None = None) -> str:
    """The zone systemd reads a spec without a zone in: ``TZ`` if set (a
    name, or a file as ``:/path``), else ``/etc/localtime`` (its zone name
    when it links into a zoneinfo directory, else the file's path); "UTC"
    when there is neither."""
    environ = os.environ if environ is None else environ
    value = environ.get("TZ", "").removeprefix(":")
    path = value if value.startswith("/") else "/etc/localtime"
    if value and not value.startswith("/"):
        return value
    try:
        target = os.path.realpath(path, strict=True)
    except OSError:
        return "UTC"
    _head, marker, name = target.rpartition("/zoneinfo/")
    return name if marker and name else target


@functools.lru_cache(maxsize=1024)
def shortest_gap(schedule: CronSchedule) -> float | None:
    """The shortest time between two runs of ``schedule``, in seconds (None:
    it runs at most once), less an hour for a fixed-time schedule, which a
    daylight-saving change can bring that much closer (cron runs one in the
    skipped hour right after it). Memoised: up to ~3,000 ``fires_on`` calls
    for a monthly schedule, asked per job by retry's and random_delay's checks."""
    times = sorted(h * 60 + m for h in schedule.hours for m in schedule.minutes)
    days = _shortest_day_gap(schedule)
    gaps = [(b - a) * 60.0 for a, b in itertools.pairwise(times)]
    if days is not None:
        gaps.append(days * 86400.0 - (times[-1] - times[0]) * 60.0)
    if not gaps:
        return None
    return min(gaps) - (3600.0 if schedule.fixed_time else 0.0)


# Eight years hold two leap days and every weekday of every date's
# neighbours: enough to see the shortest distance between firing days.
_DAY_SPAN = 8 * 366


def _shortest_day_gap(schedule: CronSchedule) -> int | None:
    day = dt.date(2024, 1, 1)
    last: dt.date | None = None
    shortest: int | None = None
    for _ in range(_DAY_SPAN):
        if schedule.fires_on(day):
            if last is not None:
                gap = (day - last).days
                shortest = gap if shortest is None else min(shortest, gap)
                if shortest == 1:
                    return 1
            last = day
        day += dt.timedelta(days=1)
    return shortest

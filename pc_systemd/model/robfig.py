"""Debian cron schedules as robfig/cron v3 schedules (Kubernetes CronJobs).

Kubernetes' CronJob controller reads ``spec.schedule`` with robfig/cron v3's
``ParseStandard``. Its five fields look like cron's and mostly mean the same,
but not in the day fields: robfig ANDs day-of-month and day-of-week only
when one of them carries its "star bit", which a field gets from a bare
``*`` (or ``?``, or ``*/1``) and loses with any step over 1; otherwise it
ORs them. Debian cron ANDs them whenever either field *starts* with ``*``
(``*/2`` included). Day-of-week 7 is refused by robfig, and ``N/step`` means
``N-max/step`` there where Debian cron refuses it.

So each field is written out from the parsed sets, in numbers, and ``*`` is
written only where robfig's star bit must be set: every expression returned
means in robfig exactly what the schedule means in Debian cron.
"""

from __future__ import annotations

from pc_systemd.model.schedule import MONTH_DAYS, CronSchedule, ScheduleError, runs_covering

__all__ = ["cronjob_schedules"]

# The longest each month can be, January first (February 29 in leap years).
_EVERY_DAY_OF_WEEK = frozenset(range(7))


def cronjob_schedules(schedule: CronSchedule) -> tuple[str, ...]:
    """robfig/cron v3 ``ParseStandard`` expressions whose union of fire times
    is Debian cron's for ``schedule`` (read in one zone, DST aside).

    One expression says every schedule that any union can say: robfig
    takes any list in every field and ORs two listed day fields as cron
    does. Raises ScheduleError (one line) for the one shape no union can
    say: cron ANDs the day fields (one starts with ``*``) while both still
    restrict the day in some selected month, e.g. ``0 0 */2 * mon`` (odd
    days that are Mondays). Each robfig expression's days are a set of
    dates of some months (any weekday), or of weekdays of some months (any
    date), or the union of both; and each month-and-date falls on every
    weekday over the years. So any expression holding one odd Monday also
    holds an odd Tuesday or an even Monday, and no split helps.
    """
    minute = _field(schedule.minutes, 0, 59)
    hour = _field(schedule.hours, 0, 23)
    month = _field(schedule.months, 1, 12)
    dom, dow = _day_fields(schedule)
    return (f"{minute} {hour} {dom} {month} {dow}",)


def _day_fields(schedule: CronSchedule) -> tuple[str, str]:
    """The day-of-month and day-of-week fields, robfig's AND/OR rule in mind."""
    doms = schedule.days_of_month
    dows = schedule.days_of_week
    reachable = _reachable_days(schedule.months)
    # A day-of-month set holding every day the selected months have is the
    # whole field there ("1-30" in April), one holding none of them is none.
    every_dom = reachable <= doms
    no_dom = not (reachable & doms)
    every_dow = dows == _EVERY_DAY_OF_WEEK
    if schedule.days_ored:
        if every_dom or every_dow:
            return "*", "*"
        if no_dom:
            # cron fires on the weekdays alone; "*" ANDs robfig's fields.
            return "*", _numbers(dows, 6)
        # Neither field is "*" here, so robfig ORs them as cron does.
        return _numbers(doms, 31), _numbers(dows, 6)
    if every_dom:
        return "*", "*" if every_dow else _numbers(dows, 6)
    if every_dow:
        return _numbers(doms, 31), "*"
    if no_dom:
        # cron never fires: neither does robfig, given a day-of-month that
        # the months lack and "*" to AND it (a list would OR the weekdays in).
        return _numbers(doms, 31), "*"
    raise ScheduleError(
        f"{schedule.expr.strip()!r}: cron fires only on days matching both day-of-month and"
        " day-of-week (one of them starts with '*'), which robfig/cron (Kubernetes) cannot"
        " express; it ANDs the two fields only when one is a bare '*'"
    )


def _reachable_days(months: frozenset[int]) -> frozenset[int]:
    return frozenset(range(1, max(MONTH_DAYS[m - 1] for m in months) + 1))


def _field(values: frozenset[int], low: int, high: int) -> str:
    """A minute, hour or month field: ``*`` (which sets robfig's star bit,
    harmless outside the day fields) or a list of numbers and runs."""
    if values == frozenset(range(low, high + 1)):
        return "*"
    runs = runs_covering(values, high)
    if len(runs) == 1 and runs[0][0] == low and runs[0][1] + runs[0][2] > high:
        return f"*/{runs[0][2]}"  # as people write it; no day field takes this form
    return _numbers(values, high)


def _numbers(values: frozenset[int], high: int) -> str:
    """A list of values, ranges and stepped ranges, never ``*`` (a day field
    must not get robfig's star bit by accident), each run with both ends
    (robfig reads ``N/step`` as ``N-max/step``; Debian cron refuses it)."""
    return ",".join(_run(run) for run in runs_covering(values, high))


def _run(run: tuple[int, int, int]) -> str:
    first, last, step = run
    if first == last:
        return str(first)
    if step == 1:
        return f"{first}-{last}"
    return f"{first}-{last}/{step}"

"""Debian cron schedules as robfig/cron v3 expressions (Kubernetes CronJobs):
the forms written, and the one shape refused.

Fast, in-process tests of the strings. What robfig does with them is checked
against the real library in tests/test_robfig_differential.py.
"""

from __future__ import annotations

import random
import re

import pytest

from pc_systemd.model.robfig import cronjob_schedules
from pc_systemd.model.schedule import ScheduleError, parse_schedule


def translate(expr: str) -> tuple[str, ...]:
    return cronjob_schedules(parse_schedule(expr))


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # Unchanged where robfig reads it as cron does.
        ("* * * * *", "* * * * *"),
        ("0 3 * * *", "0 3 * * *"),
        ("*/15 9-17 * * 1-5", "*/15 9-17 * * 1-5"),
        # Names become numbers; day-of-week 7 (refused by robfig) becomes 0.
        ("0 0 * jan-mar sun", "0 0 * 1-3 0"),
        ("0 0 * * 7", "0 0 * * 0"),
        ("0 0 * * 5-7", "0 0 * * 0,5,6"),
        ("0 0 * * MON-fri", "0 0 * * 1-5"),
        # A day field's */2 loses the star: written as a range, and the
        # other day field stays "*" so robfig still ANDs.
        ("0 0 */2 * *", "0 0 1-31/2 * *"),
        ("0 0 * * */2", "0 0 * * 0-6/2"),
        ("0 0 */10 * *", "0 0 1-31/10 * *"),
        # Steps elsewhere keep the form people write.
        ("*/7 */5 1 */2 *", "*/7 */5 1 */2 *"),
        ("10-50/20 1-23/11 1 2-12/5 *", "10-50/20 1-23/11 1 2-12/5 *"),
        # Lists come out as compact runs.
        ("3,4,5,7 0 1 1 *", "3-5,7 0 1 1 *"),
        ("0,10,20,30,40 0 1 1 *", "0-40/10 0 1 1 *"),
        # Both day fields restricted: cron ORs them and so does robfig.
        ("0 0 1,15 * mon", "0 0 1,15 * 1"),
        ("0 0 13 * 5", "0 0 13 * 5"),
        # ... unless one covers every day: then every day fires.
        ("5 4 1-31/2 * 1-7", "5 4 * * *"),
        ("0 0 1-31 * mon", "0 0 * * *"),
        ("0 0 1-29 feb mon", "0 0 * 2 *"),
        # ... or a day-of-month no selected month has: the weekdays alone.
        ("0 0 30 2 mon", "0 0 * 2 1"),
        # cron ANDs ("*" first), with a day-of-month covering the months' days.
        ("0 0 1-30 4 */2", "0 0 * 4 0-6/2"),
        ("0 0 1-30 4,6,9,11 */2", "0 0 * 4,6,9,11 0-6/2"),
        ("0 0 */1 * mon", "0 0 * * 1"),
        # Never fires in cron, and never in robfig: "*" keeps the AND.
        ("0 0 30 2 *", "0 0 30 2 *"),
        ("0 0 30 2 */2", "0 0 30 2 *"),
        ("0 0 31 4,6 *", "0 0 31 4,6 *"),
    ],
)
def test_translation(expr: str, expected: str) -> None:
    assert translate(expr) == (expected,)


@pytest.mark.parametrize(
    "expr",
    [
        "0 0 */2 * mon",  # odd days that are Mondays (issue #18's example)
        "0 0 1-7 * */7",  # the first seven days, on Sundays
    ],
)
def test_an_and_of_two_restricted_day_fields_is_refused_in_one_line(expr: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        translate(expr)
    message = str(caught.value)
    assert "\n" not in message
    assert repr(expr) in message
    assert "robfig/cron (Kubernetes) cannot express" in message


def test_a_month_whose_days_are_not_all_covered_still_refuses() -> None:
    # 1-30 covers April's days but not May's: May's 31st is excluded on any weekday.
    assert translate("0 0 1-30 4 */2") == ("0 0 * 4 0-6/2",)
    with pytest.raises(ScheduleError):
        translate("0 0 1-30 4,5 */2")


def _random_expression(rng: random.Random) -> str:
    def item(low: int, high: int) -> str:
        a, b = sorted(rng.randint(low, high) for _ in range(2))
        return rng.choice(
            ["*", f"*/{rng.randint(1, high)}", str(a), f"{a}-{b}", f"{a}-{b}/{rng.randint(1, 9)}"]
        )

    def field(low: int, high: int) -> str:
        return ",".join(item(low, high) for _ in range(rng.randint(1, 3)))

    return " ".join(field(*bounds) for bounds in ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7)))


def test_every_field_is_in_the_form_robfig_reads_as_cron_would() -> None:
    """robfig refuses day-of-week 7; reads N/step as N-max/step; gives a day
    field its star bit from a leading "*": none of these may appear unasked."""
    rng = random.Random(18)
    item = re.compile(r"\d+(-\d+(/\d+)?)?")
    seen = refused = 0
    while seen < 500:
        schedule = parse_schedule(_random_expression(rng))
        try:
            (out,) = cronjob_schedules(schedule)
        except ScheduleError:
            refused += 1
            continue
        seen += 1
        fields = out.split(" ")
        assert len(fields) == 5
        for text in fields[2:5:2]:  # the day fields: "*" alone, or numbers
            assert text == "*" or all(item.fullmatch(part) for part in text.split(","))
        for text in fields[:2] + fields[3:4]:
            assert re.fullmatch(r"\*(/\d+)?|[\d,/-]+", text), out
            assert all(item.fullmatch(p) for p in text.split(",")) or text.startswith("*")
        ends = [part.split("/")[0].split("-") for part in fields[4].split(",")]
        assert fields[4] == "*" or max(int(end) for pair in ends for end in pair) <= 6
    assert refused > 0  # the generator does reach the refused shape

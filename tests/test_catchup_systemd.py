"""catch_up and random_delay on the real systemd 252 (booted in a container).

The schedules used here fire only on 29 February (2028 is the next), so
no run in this module comes from a schedule: every run is a catch-up, and
every next elapse is far enough away to be read, not waited for.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.systemd_box import SystemdBox, checkout_box

pytestmark = pytest.mark.systemd

RUN_JOB = str(Path(sys.prefix) / "bin" / "run-job")
JOBS = "/var/lib/process-control"
USER = "pcuser"
LEAP = "7 3 29 2 *"  # 29 February 03:07: the last was in 2024, the next is in 2028
LEAP_CALENDAR = "*-02-29 03:07:00"
DELAY_MINUTES = 1440  # the largest allowed: a fresh draw almost surely differs
STAMPS = "/var/lib/systemd/timers"
BEFORE_LAST = "2024-01-01 00:00"  # a last run before 29 February 2024: that one was missed
AFTER_LAST = "2025-01-01 00:00"  # a last run after it: nothing was missed since
SETTLE = 3.0  # seconds: a catch-up run starts within one

JOB_FILES = {
    "jitter": f"name: Jitter\ncommand: /bin/true\nschedule: '{LEAP}'\n"
    f"random_delay: {DELAY_MINUTES}\n",
    "catchup": f"name: Catch up\ncommand: /bin/echo caught up\nschedule: '{LEAP}'\n"
    "catch_up: true\n",
    "plain": f"name: Plain\ncommand: /bin/echo ran\nschedule: '{LEAP}'\n",
}
# The same timer as the jitter job's, by hand, without FixedRandomDelay=:
# what systemd 252 does when each reload draws the delay again.
CONTROL_TIMER = f"""\
[Timer]
OnCalendar={LEAP_CALENDAR}
AccuracySec=100ms
RandomizedDelaySec={DELAY_MINUTES}min
Unit=process-control-jitter.service
"""


@pytest.fixture(scope="module")
def box() -> Iterator[SystemdBox]:
    with checkout_box() as booted:
        booted.run(["useradd", "--create-home", USER])
        booted.write_file("/etc/process-control.yaml", f"user: {USER}\njob_directory: {JOBS}\n")
        for slug, text in JOB_FILES.items():
            booted.write_file(f"{JOBS}/{slug}.yaml", text)
        booted.run([RUN_JOB, "--install-generator"])
        booted.write_file("/etc/systemd/system/control-jitter.timer", CONTROL_TIMER)
        booted.systemctl("daemon-reload")
        booted.systemctl("start", "control-jitter.timer")
        yield booted


def usec(box: SystemdBox, unit: str, prop: str) -> int:
    """A timestamp property in microseconds since the epoch (0: unset)."""
    value = box.systemctl("show", "--value", f"--property={prop}", "--timestamp=unix",
                          unit).stdout.strip()
    # '@1764553200' (whole seconds), '' or 'n/a' when unset
    return 0 if not value.startswith("@") else int(value[1:]) * 1_000_000


def raw_usec(box: SystemdBox, unit: str, prop: str) -> int:
    """The property's exact value, in microseconds (D-Bus, not systemctl's text)."""
    out = box.run(["busctl", "get-property", "org.freedesktop.systemd1",
                   unit_path(box, unit), "org.freedesktop.systemd1.Timer", prop]).stdout
    return int(out.split()[1])  # 't 1835235131123456'


def unit_path(box: SystemdBox, unit: str) -> str:
    out = box.run(["busctl", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                   "org.freedesktop.systemd1.Manager", "GetUnit", "s", unit]).stdout
    return out.split()[1].strip('"')  # 'o "/org/freedesktop/systemd1/unit/..."'


def calendar_next(box: SystemdBox) -> int:
    """systemd's own next 29 February 03:07, in microseconds."""
    out = box.run(["systemd-analyze", "calendar", LEAP_CALENDAR]).stdout
    line = next(x for x in out.splitlines() if x.strip().startswith("Next elapse:"))
    stamp = line.split(":", 1)[1].strip()  # 'Tue 2028-02-29 03:07:00 UTC'
    seconds = box.run(["date", "-d", stamp, "+%s"]).stdout.strip()
    return int(seconds) * 1_000_000


def elapses_across_reloads(box: SystemdBox, timer: str, reloads: int) -> list[int]:
    seen = [raw_usec(box, timer, "NextElapseUSecRealtime")]
    for _ in range(reloads):
        box.systemctl("daemon-reload")
        seen.append(raw_usec(box, timer, "NextElapseUSecRealtime"))
    return seen


# -- random_delay ------------------------------------------------------------------


def test_random_delay_is_kept_across_daemon_reloads(box: SystemdBox) -> None:
    timer = "process-control-jitter.timer"
    props = box.show(timer, "RandomizedDelayUSec", "FixedRandomDelay")
    assert props == {"RandomizedDelayUSec": "1d", "FixedRandomDelay": "yes"}
    seen = elapses_across_reloads(box, timer, 4)
    assert len(set(seen)) == 1, seen
    delay = seen[0] - calendar_next(box)
    assert 0 <= delay < DELAY_MINUTES * 60 * 1_000_000, delay


def test_without_fixed_random_delay_a_reload_moves_the_next_run(box: SystemdBox) -> None:
    # What the test above would see if the unit lacked FixedRandomDelay=:
    # systemd 252 draws the delay again at every reload (issue #18678).
    seen = elapses_across_reloads(box, "control-jitter.timer", 4)
    assert len(set(seen)) > 1, seen
    base = calendar_next(box)
    assert all(0 <= s - base < DELAY_MINUTES * 60 * 1_000_000 for s in seen), seen


def test_random_delay_survives_run_job_reload_of_a_changed_job(box: SystemdBox) -> None:
    timer = "process-control-jitter.timer"
    before = raw_usec(box, timer, "NextElapseUSecRealtime")
    # A changed job file: run-job --reload leaves its running timer to daemon-reload.
    box.write_file(f"{JOBS}/jitter.yaml", JOB_FILES["jitter"] + "description: changed\n")
    box.systemctl("stop", "process-control-reload.path")  # this test drives the reload
    try:
        out = box.run([RUN_JOB, "--reload"]).stdout
    finally:
        box.systemctl("start", "process-control-reload.path")
    assert timer not in out
    assert raw_usec(box, timer, "NextElapseUSecRealtime") == before


# -- catch_up --------------------------------------------------------------------


def runs(box: SystemdBox, slug: str) -> int:
    return len(box.invocations(f"process-control-{slug}.service"))


def down_since(box: SystemdBox, slug: str, last_run: str) -> None:
    """Simulate a host that was down since ``last_run``: the timer is
    stopped and its stamp file (where systemd keeps a Persistent= timer's
    last trigger) says the last run was then; then the timer starts, as
    timers.target starts it at boot."""
    timer = f"process-control-{slug}.timer"
    box.systemctl("stop", timer)
    box.run(["touch", "-d", last_run, f"{STAMPS}/stamp-{timer}"])
    box.systemctl("start", timer)


def test_catch_up_timer_keeps_its_last_run_on_disk(box: SystemdBox) -> None:
    props = box.show("process-control-catchup.timer", "Persistent")
    assert props == {"Persistent": "yes"}
    # systemd 252 creates the stamp file when a Persistent= timer first starts.
    box.run(["test", "-f", f"{STAMPS}/stamp-process-control-catchup.timer"])
    assert box.show("process-control-plain.timer", "Persistent") == {"Persistent": "no"}
    absent = box.run(["test", "-e", f"{STAMPS}/stamp-process-control-plain.timer"], check=False)
    assert absent.returncode == 1


def test_catch_up_runs_a_missed_run_once_after_downtime(box: SystemdBox) -> None:
    assert runs(box, "catchup") == 0
    down_since(box, "catchup", BEFORE_LAST)
    service = "process-control-catchup.service"
    box.wait_until(lambda: box.journal(service, manager_messages=False) == ["caught up"],
                   timeout=15, what="the catch-up run's output")
    assert runs(box, "catchup") == 1
    # Once: 2024's run was the only one missed, and the next is in 2028.
    timer = "process-control-catchup.timer"
    assert raw_usec(box, timer, "NextElapseUSecRealtime") == calendar_next(box)
    last = raw_usec(box, timer, "LastTriggerUSec")
    now = int(box.run(["date", "+%s%6N"]).stdout)
    assert 0 < now - last < 60_000_000, (now, last)
    # The trigger was written back to the stamp file, for the next boot.
    mtime = int(box.run(["stat", "-c", "%Y", f"{STAMPS}/stamp-{timer}"]).stdout)
    assert abs(mtime * 1_000_000 - last) < 2_000_000, (mtime, last)
    box.systemctl("restart", timer)  # another "boot": nothing missed since
    assert runs(box, "catchup") == 1


def test_catch_up_does_not_run_when_nothing_was_missed(box: SystemdBox) -> None:
    before = runs(box, "catchup")
    down_since(box, "catchup", AFTER_LAST)
    time.sleep(SETTLE)  # the catch-up run above started within a second
    assert runs(box, "catchup") == before
    # The last trigger is the stamp file's time: read, not triggered.
    last = raw_usec(box, "process-control-catchup.timer", "LastTriggerUSec")
    stamp = int(box.run(["date", "-d", AFTER_LAST, "+%s"]).stdout) * 1_000_000
    assert last == stamp


def test_without_catch_up_a_missed_run_is_not_made_up(box: SystemdBox) -> None:
    # A stamp file as the catch-up job's: systemd ignores it without Persistent=.
    down_since(box, "plain", BEFORE_LAST)
    time.sleep(SETTLE)
    assert runs(box, "plain") == 0
    timer = "process-control-plain.timer"
    assert raw_usec(box, timer, "LastTriggerUSec") == 0
    assert raw_usec(box, timer, "NextElapseUSecRealtime") == calendar_next(box)


# -- a delay longer than the time between two runs ---------------------------------

PERIOD = 10  # seconds between two calendar instants of the timers below
NAMES = [f"gap{n}" for n in range(8)]


def fired(box: SystemdBox, timer: str) -> bool:
    return raw_usec(box, timer, "LastTriggerUSec") > 0


def test_a_delay_past_the_next_run_skips_runs(box: SystemdBox) -> None:
    # What validate warns about (model.validate.delay_warnings): systemd 252
    # computes a timer's next elapse from its last trigger, which came after
    # the delay. Seconds here, so that it shows in one run of each timer;
    # each timer's fixed delay comes from its name.
    for name in NAMES:
        box.write_file(f"/etc/systemd/system/{name}.service",
                       "[Service]\nType=oneshot\nExecStart=/bin/true\n")
        box.write_file(f"/etc/systemd/system/{name}.timer",
                       f"[Timer]\nOnCalendar=*:*:00/{PERIOD}\nAccuracySec=100ms\n"
                       f"RandomizedDelaySec={3 * PERIOD}s\nFixedRandomDelay=yes\n")
    box.systemctl("daemon-reload")
    started = int(box.run(["date", "+%s%6N"]).stdout)
    box.systemctl("start", *[f"{name}.timer" for name in NAMES])
    first_calendar = (started // (PERIOD * 10**6) + 1) * PERIOD * 10**6
    delays = {name: raw_usec(box, f"{name}.timer", "NextElapseUSecRealtime") - first_calendar
              for name in NAMES}
    assert all(0 <= d < 3 * PERIOD * 10**6 for d in delays.values()), delays
    short = min(delays, key=delays.__getitem__)
    long = min((n for n in NAMES if delays[n] > PERIOD * 10**6 + 500_000),
               key=delays.__getitem__)
    assert delays[short] < PERIOD * 10**6 - 500_000, delays
    periods = {}
    for name in (short, long):
        timer = f"{name}.timer"
        box.wait_until(functools.partial(fired, box, timer), timeout=4 * PERIOD,
                       what=f"{timer} to fire")
        periods[name] = (raw_usec(box, timer, "NextElapseUSecRealtime")
                         - raw_usec(box, timer, "LastTriggerUSec"))
    # A delay below the period: every run. Above it: the next calendar
    # instant after the delayed run, plus the delay again.
    assert round(periods[short] / 10**6) == PERIOD, periods
    skipped = -(-delays[long] // (PERIOD * 10**6)) * PERIOD  # whole periods, rounded up
    assert round(periods[long] / 10**6) == skipped > PERIOD, (periods, delays)

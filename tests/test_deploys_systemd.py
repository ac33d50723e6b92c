"""Deploys add no runs, on the real systemd 252 (booted in a container).

systemd 252 fires a restarted timer at once when one of its times passed
since it last started (systemd issues #30510, #31231): a reload that
restarted the timers of changed jobs ran a job due seconds before a second
time. Here a job due at the minute B and five every-minute jobs go through
ten edit-and-reload rounds, four seconds apart, that straddle B: half by
``run-job --reload``, half by the reload path unit alone. systemd's own
records of the runs (the manager's journal entries, one invocation ID per
run) must show each job once per minute.

The box shares the machine's clock, so B is simply the next minute far
enough away; the module takes about a minute.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.systemd_box import SystemdBox, checkout_box
from tests.user_install import RUN_JOB

pytestmark = pytest.mark.systemd

JOBS = "/var/lib/process-control"
USER = "pcuser"
EVERY_MINUTE = tuple(f"minutely{i}" for i in range(5))
FIXED = "fixed"
ROUNDS = 10
SPACING = 4.0  # seconds between the starts of two rounds
FIRST = -14.0  # the first round, in seconds from the minute B
SETTLE = 3.0  # seconds: after the last round, for a late run to show
LEAD = 25.0  # seconds: at least this long from setting up to the first round
RELOAD = "process-control-reload.service"
CRON = "/etc/cron.d/process-control"
ORIGINALS_CRON = f"# Generated from {JOBS}/minutely0.yaml\n* * * * * {USER} /usr/bin/run-job --job minutely0\n"


def job_file(slug: str, schedule: str, round_: int) -> str:
    return (f"name: {slug}\ncommand: /bin/echo {slug} ran\nschedule: '{schedule}'\n"
            f"description: deployed in round {round_}\n")


@dataclass(frozen=True)
class Deploys:
    minute: float  # B, seconds since the epoch
    end: float  # when the last round's reload had finished
    runs: dict[str, list[float]]  # unit -> start of each run (seconds since the epoch)
    reload_out: list[str]  # what run-job --reload printed in the command rounds
    path_rounds: int  # rounds whose reload the path unit ran (seen ending after the edit)
    install_err: str  # what run-job --install-generator said on stderr
    cron_files: list[str]  # /etc/cron.d/process-control* after the install


def run_starts(box: SystemdBox, units: set[str]) -> dict[str, list[float]]:
    """Each run of ``units`` as systemd recorded it: the manager's journal
    entries about a unit carry the run's invocation ID; a run's time is its
    first such entry."""
    box.sync_journal()
    out = box.run(["journalctl", "--quiet", "--no-pager", "--output=json", "_PID=1"],
                  timeout=60).stdout
    first: dict[tuple[str, str], float] = {}
    for line in out.splitlines():
        entry = json.loads(line)
        unit, invocation = entry.get("UNIT"), entry.get("INVOCATION_ID")
        if unit in units and invocation:
            when = int(entry["__REALTIME_TIMESTAMP"]) / 1e6
            first[unit, invocation] = min(when, first.get((unit, invocation), when))
    runs: dict[str, list[float]] = {unit: [] for unit in units}
    for (unit, _invocation), when in first.items():
        runs[unit].append(when)
    return {unit: sorted(times) for unit, times in runs.items()}


def reload_finished_after(box: SystemdBox, since_usec: int) -> bool:
    """The reload service ran (the path unit started it) after ``since_usec``
    (CLOCK_MONOTONIC, which the box shares) and has finished."""
    props = box.show(RELOAD, "ActiveState", "ExecMainStartTimestampMonotonic")
    started = int(props["ExecMainStartTimestampMonotonic"] or 0)
    return started > since_usec and props["ActiveState"] in ("inactive", "failed")


def deploy_rounds(box: SystemdBox, minute: float, schedules: dict[str, str],
                  install_err: str, cron_files: list[str]) -> Deploys:
    reload_out: list[str] = []
    path_rounds = 0
    for round_ in range(ROUNDS):
        time.sleep(max(0.0, minute + FIRST + round_ * SPACING - time.time()))
        by_path = round_ % 2 == 0  # the first round after B (round 4) is the path unit's
        if by_path:  # a reload still running from the last round would swallow this edit
            box.wait_until(lambda: box.show(RELOAD, "ActiveState")["ActiveState"] != "activating",
                           timeout=30, what="the reload service idle")
        edited = int(time.monotonic() * 1e6)
        for slug, schedule in schedules.items():
            box.write_file(f"{JOBS}/{slug}.yaml", job_file(slug, schedule, round_))
        if by_path:
            box.wait_until(functools.partial(reload_finished_after, box, edited), timeout=30,
                           what=f"round {round_}: the path unit's reload")
            path_rounds += 1
        else:
            done = box.run([RUN_JOB, "--reload"], timeout=120)
            reload_out += done.stdout.splitlines()
    end = time.time()
    time.sleep(SETTLE)
    units = {f"process-control-{slug}.service" for slug in schedules}
    return Deploys(minute, end, run_starts(box, units), reload_out, path_rounds, install_err,
                   cron_files)


@pytest.fixture(scope="module")
def deploys() -> Iterator[Deploys]:
    with checkout_box() as box:
        box.run(["useradd", "--create-home", USER])
        box.write_file("/etc/process-control.yaml", f"user: {USER}\njob_directory: {JOBS}\n")
        schedules = dict.fromkeys(EVERY_MINUTE, "* * * * *")
        for slug, schedule in schedules.items():
            box.write_file(f"{JOBS}/{slug}.yaml", job_file(slug, schedule, -1))
        box.write_file(CRON, ORIGINALS_CRON)  # a host that ran the original
        install_err = box.run([RUN_JOB, "--install-generator"], timeout=120).stderr
        cron_files = box.run(["sh", "-c", f"ls -1 {CRON}*"]).stdout.split()
        # B: the first minute far enough away; the fixed job is due then (in
        # the box's own time zone), and deployed before the rounds begin.
        minute = (int(time.time() - FIRST + LEAD) // 60 + 1) * 60
        at = box.run(["date", "-d", f"@{minute}", "+%-M %-H %-d %-m *"]).stdout.strip()
        schedules[FIXED] = at
        box.write_file(f"{JOBS}/{FIXED}.yaml", job_file(FIXED, at, -1))
        box.wait_until(lambda: box.show(f"process-control-{FIXED}.timer", "ActiveState")
                       ["ActiveState"] == "active", timeout=30, what="the fixed job's timer")
        next_elapse = box.run(["sh", "-c", 'date -d "$(systemctl show --value '
                               '--property=NextElapseUSecRealtime "$1")" +%s', "sh",
                               f"process-control-{FIXED}.timer"]).stdout
        assert int(next_elapse) == minute
        assert time.time() < minute + FIRST, "setting up took too long for the rounds"
        yield deploy_rounds(box, minute, schedules, install_err, cron_files)


def minutes(runs: list[float]) -> list[int]:
    return [int(when // 60) * 60 for when in runs]


def test_the_rounds_straddle_the_minute_by_both_ways(deploys: Deploys) -> None:
    assert deploys.path_rounds == ROUNDS // 2
    assert deploys.end > deploys.minute + SPACING * 3  # a few rounds after B, each way
    # nothing was restarted, and no running timer started again
    assert not [line for line in deploys.reload_out if line.startswith("restarted")]
    assert not [line for line in deploys.reload_out if "timer" in line], deploys.reload_out


def test_a_job_due_seconds_before_a_deploy_runs_once(deploys: Deploys) -> None:
    runs = deploys.runs[f"process-control-{FIXED}.service"]
    assert len(runs) == 1, [when - deploys.minute for when in runs]
    assert deploys.minute <= runs[0] < deploys.minute + 10  # at its time (a loaded box: late)


@pytest.mark.parametrize("slug", EVERY_MINUTE)
def test_every_minute_jobs_run_once_a_minute_through_the_deploys(
    deploys: Deploys, slug: str
) -> None:
    runs = deploys.runs[f"process-control-{slug}.service"]
    seen = minutes(runs)
    offsets = [round(when - deploys.minute, 2) for when in runs]
    assert seen.count(int(deploys.minute)) == 1, offsets  # the minute B, after the rounds
    assert len(seen) == len(set(seen)), offsets  # never twice in one minute
    assert all(when % 60 < 10 for when in runs), offsets  # at its minute (a loaded box: late)


def test_installing_the_generator_moves_the_originals_cron_file_aside(deploys: Deploys) -> None:
    # timers run the jobs from then on: cron would run each one a second time
    assert deploys.cron_files == [f"{CRON}.disabled"]
    assert f"process-control: moved {CRON} to {CRON}.disabled: " in deploys.install_err

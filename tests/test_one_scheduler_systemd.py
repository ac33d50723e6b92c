"""One scheduler per host: on a booted systemd 252 with the Debian package
installed, cron never runs a job beside its timer, whatever puts the
original's cron file back.

The original's deployment recipes run ``cron-generate`` after each change
of the job files, and configuration management may put the original's
``/etc/cron.d/process-control`` back at any deploy. Here ``cron-generate``
applies the job directory to systemd instead of writing that file, and
``run-job reload`` and the reload path unit move the file aside whenever it
comes back. The last test runs Debian's cron daemon for three scheduled
minutes while the file is re-deployed each minute; the re-deployed lines
run ``run-job --job`` as root, so that a line cron did run would be a
second run in systemd's records and in the job's output.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from tests.conftest import install_package
from tests.systemd_box import SystemdBox, require_systemd_box

pytestmark = pytest.mark.systemd

JOBS = "/var/lib/process-control"
CRON = "/etc/cron.d/process-control"
RELOAD = "process-control-reload"
TICKS = ("tick1", "tick2")
MINUTES = 3  # scheduled minutes the cron daemon runs beside the timers
REDEPLOY_AT = 20.0  # second of each minute the original's cron file comes back


def tick(slug: str) -> str:
    # the job's own record of each run: one line of output, with the time
    return f"name: {slug}\ncommand: /bin/sh -c 'echo {slug} ran at $(date +%s)'\n" \
           "schedule: '* * * * *'\n"


DAILY = "name: Daily\ncommand: /bin/true\nschedule: '7 3 * * *'\n"
JOB_FILES = {**{slug: tick(slug) for slug in TICKS}, "gone": DAILY}


def originals_cron_file(user: str = "root") -> str:
    """What the original's cron-generate wrote for these jobs."""
    return "".join(f"# Generated from {JOBS}/{slug}.yaml\n"
                   f"* * * * * {user} /usr/bin/run-job --job {slug}\n" for slug in TICKS)


@pytest.fixture(scope="module")
def box(built: Path) -> Iterator[SystemdBox]:
    require_systemd_box()
    with SystemdBox() as booted:
        install_package(booted, built, JOB_FILES)
        yield booted


def active(box: SystemdBox, unit: str) -> str:
    return box.show(unit, "ActiveState")["ActiveState"]


def cron_file_gone(box: SystemdBox) -> bool:
    return box.run(["test", "-e", CRON], check=False).returncode != 0


def moved_copies(box: SystemdBox) -> list[str]:
    out = box.run(["sh", "-c", f"ls -1 {CRON}.disabled* 2>/dev/null || true"]).stdout
    return out.split()


def notes(box: SystemdBox) -> list[str]:
    """What the moves wrote to the journal (syslog identifier process-control)."""
    box.sync_journal()
    return box.run(["journalctl", "--quiet", "--no-pager", "-o", "cat", "-t",
                    "process-control"]).stdout.splitlines()


def test_cron_generate_applies_the_job_directory_and_writes_no_cron_file(
    box: SystemdBox,
) -> None:
    box.systemctl("stop", f"{RELOAD}.path")  # cron-generate alone applies what changes
    box.write_file(CRON, originals_cron_file())
    box.write_file(f"{JOBS}/added.yaml", DAILY)
    box.run(["rm", f"{JOBS}/gone.yaml"])
    done = box.run(["cron-generate"], timeout=120)
    assert cron_file_gone(box)
    assert moved_copies(box) == [f"{CRON}.disabled"]
    assert box.run(["cat", f"{CRON}.disabled"]).stdout == originals_cron_file()
    # cron reads the /etc/cron.d files run-parts would run: none of ours
    listed = box.run(["run-parts", "--list", "/etc/cron.d"], check=False).stdout.split()
    assert not [name for name in listed if "process-control" in name], listed
    said = [line for line in done.stderr.splitlines() if line.startswith("cron-generate:")]
    assert said == ["cron-generate: systemd runs these jobs here: the job directory was "
                    "applied as `run-job reload` would; no cron file written"], done.stderr
    assert f"process-control: moved {CRON} to {CRON}.disabled" in done.stderr
    # the timers reflect the job directory
    assert active(box, "process-control-added.timer") == "active"
    assert active(box, "process-control-gone.timer") == "inactive"
    failed = box.systemctl("list-units", "--failed", "--plain", "--no-legend",
                           "process-control-*").stdout
    assert failed == "", failed  # a removed job's timer is forgotten, not left failed
    assert "started process-control-added.timer" in done.stdout.splitlines()
    assert "stopped process-control-gone.timer" in done.stdout.splitlines()
    assert active(box, f"{RELOAD}.path") == "active"  # wanted, so started again
    assert done.returncode == 0, done.stderr


def test_run_job_reload_moves_the_originals_cron_file_aside(box: SystemdBox) -> None:
    box.systemctl("stop", f"{RELOAD}.path")  # the command alone, not the path unit
    box.write_file(CRON, originals_cron_file())
    done = box.run(["run-job", "reload"], timeout=120)
    assert cron_file_gone(box)
    assert len(moved_copies(box)) == 2  # the first one kept
    assert f"process-control: moved {CRON} to {CRON}.disabled-" in done.stderr
    assert any(line.startswith(f"moved {CRON} to {CRON}.disabled-") and
               "systemd timers run these jobs now" in line for line in notes(box))
    assert active(box, f"{RELOAD}.path") == "active"


def test_the_reload_path_unit_moves_it_aside_at_a_change_of_a_job_file(box: SystemdBox) -> None:
    assert active(box, f"{RELOAD}.path") == "active"
    before = len(moved_copies(box))
    box.write_file(CRON, originals_cron_file())
    box.write_file(f"{JOBS}/added.yaml", DAILY + "description: changed\n")
    box.wait_until(lambda: cron_file_gone(box), timeout=30, what="the cron file moved aside")
    box.wait_until(lambda: len(moved_copies(box)) == before + 1, timeout=10,
                   what="a copy kept")
    lines = box.run(["journalctl", "--quiet", "--no-pager", "-o", "cat", "-u",
                     f"{RELOAD}.service"]).stdout
    assert f"moved {CRON} to {CRON}.disabled-" in lines


def runs_by_minute(box: SystemdBox, unit: str) -> dict[int, int]:
    """systemd's runs of ``unit`` per minute: the manager's journal entries
    about a unit carry the run's invocation ID; a run's time is its first."""
    out = box.run(["journalctl", "--quiet", "--no-pager", "--output=json", "_PID=1",
                   f"UNIT={unit}"], timeout=60).stdout
    first: dict[str, float] = {}
    for line in out.splitlines():
        entry = json.loads(line)
        invocation = entry.get("INVOCATION_ID")
        if invocation:
            when = int(entry["__REALTIME_TIMESTAMP"]) / 1e6
            first[invocation] = min(when, first.get(invocation, when))
    return count_by_minute(first.values())


def outputs_by_minute(box: SystemdBox, slug: str) -> dict[int, int]:
    """The job's own record: each run prints '<slug> ran at <epoch seconds>'."""
    out = box.run(["journalctl", "--namespace=*", "--quiet", "--no-pager", "-o", "cat",
                   f"_SYSTEMD_UNIT=process-control-{slug}.service"], timeout=60).stdout
    times = [float(line.split()[-1]) for line in out.splitlines()
             if line.startswith(f"{slug} ran at ")]
    return count_by_minute(times)


def count_by_minute(times: Iterable[float]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for when in times:
        minute = int(when // 60) * 60
        counts[minute] = counts.get(minute, 0) + 1
    return counts


def test_with_the_cron_file_redeployed_each_minute_each_job_runs_once_a_minute(
    box: SystemdBox,
) -> None:
    box.systemctl("restart", "cron.service")
    assert active(box, "cron.service") == "active"
    copies = len(moved_copies(box))
    # re-deployed in the minute before each watched one, as configuration
    # management may do at any time; cron reads it at the next minute
    first = (int(time.time() - REDEPLOY_AT) // 60 + 2) * 60  # the first whole minute watched
    for minute in range(first - 60, first + (MINUTES - 1) * 60, 60):
        time.sleep(max(0.0, minute + REDEPLOY_AT - time.time()))
        box.write_file(CRON, originals_cron_file())  # nothing else changes
    time.sleep(max(0.0, first + MINUTES * 60 + 5 - time.time()))  # the last minute's runs
    box.sync_journal()
    watched = range(first, first + MINUTES * 60, 60)
    cron_log = box.run(["journalctl", "--quiet", "--no-pager", "-o", "cat", "-u",
                        "cron.service"]).stdout
    for slug in TICKS:
        runs = runs_by_minute(box, f"process-control-{slug}.service")
        outputs = outputs_by_minute(box, slug)
        assert [runs.get(m, 0) for m in watched] == [1] * MINUTES, (slug, runs)
        assert [outputs.get(m, 0) for m in watched] == [1] * MINUTES, (slug, outputs)
    assert "run-job --job" not in cron_log, cron_log  # cron ran none of them
    # the reload path unit moved each re-deployed file aside
    assert cron_file_gone(box)
    assert len(moved_copies(box)) == copies + MINUTES

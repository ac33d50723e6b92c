"""A real Debian cron daemon runs a job through the file cron-generate wrote.

In a throw-away systemd container (tests/systemd_box.py), never on the
host's /etc: write the configuration and a job scheduled every minute, run
``cron-generate``, (re)start ``cron.service``, and wait for the run's
history and log file to appear -- up to a minute, since cron only looks at
minute boundaries.

The cron line calls ``runner_path``, the venv's ``run-job``; the
configuration says ``backend: direct``, since the container (a cron host
here) was booted with systemd.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.systemd_box import SystemdBox, checkout_box
from tests.user_install import CRON_GENERATE, PYTHON, RUN_JOB

pytestmark = pytest.mark.systemd

USER = "pcjob"
JOBS = "/var/lib/process-control"
RUNNER = RUN_JOB  # the world-readable installation: cron runs it as USER
STATE = "/var/cache/process-control"
LOGS = "/var/log/process-control"
DIRECTORIES = (LOGS, "/run/process-control", STATE)

CONFIG = f"""\
user: {USER}
job_directory: {JOBS}
runner_path: {RUNNER}
output_crontab: /etc/cron.d/process-control
output_directory: {LOGS}
run_directory: /run/process-control
state_directory: {STATE}
backend: direct
"""

JOB = """\
name: From cron
command:
  - /bin/sh -c 'echo "ran as $(id -un) with $PC_MARK"'
  - /bin/sh -c 'echo to-stderr >&2'
schedule: '* * * * *'
environment:
  PC_MARK: the job's environment
"""


DELAY = 6.0  # seconds the delayed job waits in the box


@pytest.fixture(scope="module")
def systemd_box() -> Iterator[SystemdBox]:
    with checkout_box() as booted:
        yield booted


def delayed_job(box: SystemdBox) -> tuple[str, float]:
    """A slug, and the random_delay in minutes, that wait DELAY seconds in
    the box: the runner's delay comes from the box's machine ID."""
    script = ("from pc_systemd.cron.direct import fixed_delay, machine_id\n"
              "host = machine_id()\n"
              "print(next(f'delayed{n} {fixed_delay(f\"delayed{n}\", 1.0, host)!r}'"
              " for n in range(1000) if fixed_delay(f'delayed{n}', 1.0, host) > 0.3))\n")
    slug, fraction = box.run([PYTHON, "-I", "-c", script]).stdout.split()
    return slug, DELAY / 60 / float(fraction)


def finished_run(box: SystemdBox, slug: str) -> dict[str, Any] | None:
    result = box.run(["cat", f"{STATE}/{slug}.yaml"], check=False)
    if result.returncode != 0:
        return None
    data: dict[str, Any] = yaml.safe_load(result.stdout)
    # Written at the start too: wait for the run's outcome.
    return data if data["history"][-1]["status"] != "started" else None


def test_cron_runs_the_job_through_the_generated_file(systemd_box: SystemdBox) -> None:
    box = systemd_box
    box.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER])
    for directory in DIRECTORIES:
        box.run(["install", "-d", "-o", USER, "-m", "0755", directory])
    box.write_file("/etc/process-control.yaml", CONFIG)
    box.write_file(f"{JOBS}/fromcron.yaml", JOB)
    slug, minutes = delayed_job(box)
    box.write_file(f"{JOBS}/{slug}.yaml", f"name: Delayed\ncommand: /bin/true\n"
                                          f"schedule: '* * * * *'\nrandom_delay: {minutes!r}\n")

    box.run([CRON_GENERATE, "--config", "/etc/process-control.yaml"])
    crontab = box.run(["cat", "/etc/cron.d/process-control"]).stdout
    assert f"* * * * * {USER} {RUNNER} --job fromcron\n" in crontab
    assert f"* * * * * {USER} {RUNNER} --job {slug} --scheduled\n" in crontab

    # cron starts jobs at minute boundaries; started in a minute's last
    # seconds it may let the next one pass, so start it just after one.
    while time.time() % 60 > 50:
        time.sleep(1)
    box.systemctl("restart", "cron.service")
    assert box.show("cron.service", "ActiveState")["ActiveState"] == "active"

    data = box.wait_until(lambda: finished_run(box, "fromcron"), timeout=75, interval=1,
                          what="a run started by cron")
    assert data is not None
    entries = data["history"]
    assert isinstance(entries, list)
    assert data["last_completion_status"] == "success", data
    run = entries[-1]
    assert run["status"] == "completed" and run["code"] == 0

    log = box.run(["cat", run["log"]]).stdout
    messages = [line.split("\t", 2)[1:] for line in log.splitlines()]
    assert ["INFO", "ran as pcjob with the job's environment"] in messages
    assert ["ERROR", "to-stderr"] in messages
    assert messages[-1] == ["INFO", "----------- end command output"]
    owner = box.run(["stat", "-c", "%U", run["log"], f"{STATE}/fromcron.yaml"]).stdout.split()
    assert owner == [USER, USER]
    # cron mails what a job prints: a successful run prints nothing.
    cron_log = box.run(["journalctl", "-u", "cron.service", "--no-pager", "-o", "cat"]).stdout
    assert f"({USER}) CMD ({RUNNER} --job fromcron)" in cron_log, cron_log
    assert "No MTA installed, discarding output" not in cron_log, cron_log


def test_cron_runs_a_delayed_job_its_fixed_delay_after_the_minute(
    systemd_box: SystemdBox,
) -> None:
    # The job of the test above's cron file with a random_delay: cron starts
    # it on the minute and the runner waits before the run starts.
    box = systemd_box
    slug, _minutes = delayed_job(box)
    data = box.wait_until(lambda: finished_run(box, slug), timeout=75, interval=1,
                          what="a delayed run started by cron")
    assert data is not None
    run = data["history"][-1]
    assert run["status"] == "completed", data
    # The history's start is the run's real start, after the wait; cron
    # starts run-job at second 0, and run-job takes a moment to start.
    start = dt.datetime.fromisoformat(str(run["start"]))
    assert DELAY <= start.second + start.microsecond / 1e6 < DELAY + 3, start
    undelayed = dt.datetime.fromisoformat(str(data_of(box, "fromcron")["history"][0]["start"]))
    assert undelayed.second < 3, undelayed


def data_of(box: SystemdBox, slug: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(box.run(["cat", f"{STATE}/{slug}.yaml"]).stdout)
    return loaded
